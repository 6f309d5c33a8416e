package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// silentHosts listens on 127.0.0.{first..first+n-1}:port (one port found
// free on all) and accepts connections that never get an answer: a host
// that takes every attempt's whole --timeout. It returns the addresses.
func silentHosts(t *testing.T, first, n int) ([]string, uint16) {
	t.Helper()
	for range 20 {
		var lns []net.Listener
		probe, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", first))
		if err != nil {
			t.Skipf("cannot listen on 127.0.0.%d: %v", first, err)
		}
		lns = append(lns, probe)
		port := probe.Addr().(*net.TCPAddr).Port
		ok := true
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", first+i, port))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		if !ok {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		var addrs []string
		for _, ln := range lns {
			addrs = append(addrs, ln.Addr().(*net.TCPAddr).IP.String())
			go func() {
				var held []net.Conn
				defer func() {
					for _, c := range held {
						c.Close()
					}
				}()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					held = append(held, c)
				}
			}()
			t.Cleanup(func() { ln.Close() })
		}
		return addrs, uint16(port)
	}
	t.Skip("no port free on 16 loopback addresses")
	return nil, 0
}

// srvServer is a real DNS server (miekg/dns, UDP and TCP on loopback)
// answering _VLMCS._TCP.<zone> with targets SRV records, each with glue
// for every address.
func srvServer(t *testing.T, zone string, targets int, addrs []string, port uint16) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) == 1 && strings.EqualFold(q.Question[0].Name, "_vlmcs._tcp."+zone) {
			for i := range targets {
				name := fmt.Sprintf("kms%d.%s", i, zone)
				m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
					Priority: 0, Weight: 10, Port: port, Target: name})
				for _, a := range addrs {
					m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(a)})
				}
			}
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncate(dns.MinMsgSize)
		}
		m.Compress = true
		_ = w.WriteMsg(m)
	})
	ln, pc := testkit.ListenUDPTCP(t, "127.0.0.1:0")
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { started <- struct{}{} }},
		{Listener: ln, Handler: h, NotifyStartedFunc: func() { started <- struct{}{} }},
	} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	<-started
	<-started
	return ln.Addr().String()
}

// TestProcessDiscoverBounded: 128 SRV targets x 16 addresses that accept
// and never answer (the case: 104 s at --timeout 50ms before)
// end within the attempt cap by default, and within --total-timeout when
// the cap is lifted; the report says why discovery stopped and exits 1
// with 0xC004F074.
func TestProcessDiscoverBounded(t *testing.T) {
	addrs, port := silentHosts(t, 10, 16)
	dnsAddr := srvServer(t, "corp.example.", 128, addrs, port)
	harness.ProcessBinary(t, "kms-responder") // built before the clock starts
	for _, tc := range []struct {
		name     string
		args     []string
		most     time.Duration
		stopped  string
		attempts int // exact when > 0
	}{
		{"default cap", nil, 15 * time.Second, "attempt cap reached: 16 addresses tried", 16},
		{"cap 3", []string{"--max-attempts", "3"}, 10 * time.Second, "attempt cap reached: 3 addresses tried", 3},
		{"total timeout", []string{"--max-attempts", "0", "--total-timeout", "2s"}, 15 * time.Second, "--total-timeout 2s spent", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"discover", "--dns", dnsAddr, "--domain", "corp.example", "--product", "Windows 10/11 Enterprise",
				"--timeout", "50ms"}, tc.args...)
			start := time.Now()
			stdout, stderr, code := runCLI(t, args...)
			took := time.Since(start)
			t.Logf("%s: exit %d after %s", tc.name, code, took.Round(time.Millisecond))
			if code != exitError || !strings.Contains(stdout, "0xC004F074") || !strings.Contains(stdout, tc.stopped) {
				t.Fatalf("exit %d, want 1 with 0xC004F074 and %q:\n%s%s", code, tc.stopped, stdout, stderr)
			}
			if took > tc.most {
				t.Errorf("took %s, want at most %s", took, tc.most)
			}
			n := strings.Count(stdout, "  attempt:")
			if tc.attempts > 0 && n != tc.attempts {
				t.Errorf("%d attempts listed, want %d", n, tc.attempts)
			}
			if n >= 128*16 {
				t.Errorf("%d attempts: every address was tried", n)
			}
		})
	}
	if _, stderr, code := runCLI(t, "discover", "--dns", dnsAddr, "--domain", "corp.example", "--product", "Windows 10/11 Enterprise", "--max-attempts", "-1"); code != exitUsage {
		t.Errorf("--max-attempts -1: exit %d, want 64:\n%s", code, stderr)
	}
}
