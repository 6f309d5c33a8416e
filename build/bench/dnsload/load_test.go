package main

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestGood(t *testing.T) {
	hdr := func(b2, b3 byte, an uint16) []byte {
		return []byte{0, 1, b2, b3, 0, 1, byte(an >> 8), byte(an), 0, 0, 0, 0}
	}
	tests := []struct {
		name string
		resp []byte
		want bool
	}{
		{"answer", hdr(0x84, 0, 1), true},
		{"short", hdr(0x84, 0, 1)[:11], false},
		{"query not response", hdr(0x04, 0, 1), false},
		{"truncated", hdr(0x86, 0, 1), false},
		{"servfail", hdr(0x84, 2, 1), false},
		{"nodata", hdr(0x84, 0, 0), false},
	}
	for _, tc := range tests {
		if got := good(tc.resp, 1); got != tc.want {
			t.Errorf("%s: good = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSendLoopback runs one sender against a real miekg/dns server on loopback that answers
// every other query, so both answers and timeouts are counted.
func TestSendLoopback(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if n.Add(1)%2 == 0 {
			return // dropped: the client must time out
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1}, Port: 1688, Target: "kms1.example.test."})
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	defer func() { _ = srv.Shutdown() }()

	conn, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("_vlmcs._tcp.example.test.", dns.TypeSRV)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	r := send(conn, wire, 0x100, time.Now().Add(300*time.Millisecond), 20*time.Millisecond, 1)
	if r.ok == 0 || r.timeouts == 0 || r.bad != 0 {
		t.Fatalf("ok=%d timeouts=%d bad=%d, want some answers, some timeouts, none bad", r.ok, r.timeouts, r.bad)
	}
	if r.sent != r.ok+r.timeouts || r.lat.n != r.sent {
		t.Fatalf("sent=%d ok=%d timeouts=%d samples=%d: every query must be accounted once", r.sent, r.ok, r.timeouts, r.lat.n)
	}
}
