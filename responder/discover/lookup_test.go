package discover

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/responder/kms"
)

const qname = "_vlmcs._tcp.example.test. SRV"

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestLookupGlue(t *testing.T) {
	z := zone{
		answers: map[string][]dns.RR{qname: mustRR(t,
			"_vlmcs._tcp.example.test. 30 IN SRV 0 60 1688 KMS1.example.test.",
			"_vlmcs._tcp.example.test. 30 IN SRV 10 0 1689 kms2.example.test.",
		)},
		extra: map[string][]dns.RR{qname: mustRR(t,
			"kms1.example.test. 30 IN A 127.0.0.2",
			"kms1.example.test. 30 IN AAAA ::1",
			"kms1.example.test. 30 IN A 127.0.0.2", // duplicate glue
			"kms2.example.test. 30 IN A 127.0.0.3",
			"other.example.test. 30 IN A 127.0.0.9",
		)},
	}
	srv := startDNS(t, z.answer)
	got, err := Lookup(context.Background(), srv.addr, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Name: "kms1.example.test.", Port: 1688, Priority: 0, Weight: 60, TTL: 30, Addrs: addrs("127.0.0.2", "::1")},
		{Name: "kms2.example.test.", Port: 1689, Priority: 10, Weight: 0, TTL: 30, Addrs: addrs("127.0.0.3")},
	}
	if !targetsEqual(got, want) {
		t.Errorf("targets\n got %+v\nwant %+v", got, want)
	}
	q := srv.queries()
	if len(q) != 1 || q[0].q.Name != "_VLMCS._TCP.example.test." || q[0].q.Qtype != dns.TypeSRV ||
		q[0].q.Qclass != dns.ClassINET || !q[0].rd || q[0].net != "udp" {
		t.Errorf("queries %+v, want one upper-case _VLMCS._TCP SRV query over UDP with RD", q)
	}
}

func targetsEqual(a, b []Target) bool {
	return slices.EqualFunc(a, b, func(x, y Target) bool {
		return x.Name == y.Name && x.Port == y.Port && x.Priority == y.Priority &&
			x.Weight == y.Weight && x.TTL == y.TTL && slices.Equal(x.Addrs, y.Addrs)
	})
}

func TestLookupResolvesMissingGlue(t *testing.T) {
	z := zone{answers: map[string][]dns.RR{
		qname: mustRR(t,
			"_vlmcs._tcp.example.test. 30 IN SRV 0 0 1688 kms1.example.test.",
			"_vlmcs._tcp.example.test. 30 IN SRV 0 0 1688 kms3.example.test.",
		),
		"kms1.example.test. A":    mustRR(t, "kms1.example.test. 30 IN A 127.0.0.2"),
		"kms1.example.test. AAAA": mustRR(t, "kms1.example.test. 30 IN CNAME v6.example.test.", "v6.example.test. 30 IN AAAA ::1"),
	}}
	srv := startDNS(t, z.answer)
	got, err := Lookup(context.Background(), srv.addr, "example.test.")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[0].Addrs, addrs("127.0.0.2", "::1")) || len(got[1].Addrs) != 0 {
		t.Fatalf("targets %+v, want kms1 with 127.0.0.2 and ::1 (via CNAME), kms3 without addresses", got)
	}
	var asked []string
	for _, q := range srv.queries()[1:] {
		asked = append(asked, q.q.Name+" "+dns.TypeToString[q.q.Qtype])
	}
	slices.Sort(asked) // the targets are resolved in parallel
	want := []string{"kms1.example.test. A", "kms1.example.test. AAAA", "kms3.example.test. A", "kms3.example.test. AAAA"}
	if !slices.Equal(asked, want) {
		t.Errorf("address queries %q, want %q", asked, want)
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct {
		name   string
		z      zone
		rcode  int
		want   kms.HRESULT
		detail string
	}{
		{name: "nxdomain", z: zone{nx: map[string]bool{"_vlmcs._tcp.example.test.": true}}, want: kms.ErrDNSNameNotExist, detail: "NXDOMAIN"},
		{name: "nodata", z: zone{}, want: kms.ErrDNSNoRecords, detail: "NODATA"},
		{name: "other type only", z: zone{answers: map[string][]dns.RR{qname: mustRR(t, "_vlmcs._tcp.example.test. 30 IN TXT x")}}, want: kms.ErrDNSNoRecords, detail: "NODATA"},
		{name: "dot target", z: zone{answers: map[string][]dns.RR{qname: mustRR(t, "_vlmcs._tcp.example.test. 30 IN SRV 0 0 0 .")}}, want: kms.ErrDNSNoRecords, detail: "not available"},
		{name: "servfail", rcode: dns.RcodeServerFailure, want: 0x8007232A, detail: "SERVFAIL"},
		{name: "refused", rcode: dns.RcodeRefused, want: 0x8007232D, detail: "REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t, func(q *dns.Msg, n string) *dns.Msg {
				r := tt.z.answer(q, n)
				if tt.rcode != 0 {
					r.Rcode = tt.rcode
				}
				return r
			})
			_, err := Lookup(context.Background(), srv.addr, "example.test")
			var h kms.HRESULT
			if !errors.As(err, &h) || h != tt.want || !errors.Is(err, tt.want) {
				t.Fatalf("error %v (HRESULT %v), want %v", err, h, tt.want)
			}
			var le *LookupError
			if !errors.As(err, &le) || le.Server != srv.addr || le.Name != "_VLMCS._TCP.example.test." || !strings.Contains(le.Detail, tt.detail) {
				t.Errorf("LookupError %+v, want server %s and detail %q", le, srv.addr, tt.detail)
			}
			if want := "SRV _VLMCS._TCP.example.test. at " + srv.addr + ": " + tt.want.Error(); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error text %q, want it to start %q", err, want)
			}
		})
	}
}

func TestLookupTruncatedFallsBackToTCP(t *testing.T) {
	z := zone{
		answers: map[string][]dns.RR{qname: mustRR(t, "_vlmcs._tcp.example.test. 30 IN SRV 0 0 1688 kms1.example.test.")},
		extra:   map[string][]dns.RR{qname: mustRR(t, "kms1.example.test. 30 IN A 127.0.0.2")},
	}
	srv := startDNS(t, func(q *dns.Msg, network string) *dns.Msg {
		r := z.answer(q, network)
		if network == "udp" {
			r.Answer, r.Extra, r.Truncated = nil, nil, true
		}
		return r
	})
	got, err := Lookup(context.Background(), srv.addr, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[0].Addrs, addrs("127.0.0.2")) {
		t.Errorf("targets %+v", got)
	}
	var nets []string
	for _, q := range srv.queries() {
		nets = append(nets, q.net)
	}
	if !slices.Equal(nets, []string{"udp", "tcp"}) {
		t.Errorf("transports %q, want udp then tcp", nets)
	}
}

func TestLookupRejectsBadReplies(t *testing.T) {
	tests := []struct {
		name string
		mod  func(r *dns.Msg)
		want string
	}{
		{name: "other question", mod: func(r *dns.Msg) { r.Question[0].Name = "_vlmcs._tcp.evil.test." }, want: "reply is for another question"},
		{name: "other type", mod: func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeA }, want: "reply is for another question"},
		{name: "no question", mod: func(r *dns.Msg) { r.Question = nil }, want: "NOERROR reply has 0 questions"},
		{name: "opcode", mod: func(r *dns.Msg) { r.Opcode = dns.OpcodeStatus }, want: "reply opcode 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t, func(q *dns.Msg, _ string) *dns.Msg {
				r := new(dns.Msg)
				r.SetReply(q)
				r.Answer = mustRR(t, "_vlmcs._tcp.example.test. 30 IN SRV 0 0 1688 kms1.example.test.")
				tt.mod(r)
				return r
			})
			_, err := Lookup(context.Background(), srv.addr, "example.test")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLookupUnreachable(t *testing.T) {
	srv := startDNS(t, func(*dns.Msg, string) *dns.Msg { return nil }) // never answers
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Lookup(ctx, srv.addr, "example.test")
	var le *LookupError
	if err == nil || errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("error %v, want a timeout, not a DNS answer", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Lookup took %v despite a 300ms context", el)
	}
}

func TestQueryName(t *testing.T) {
	if n, err := QueryName("Corp.Example.Test"); err != nil || n != "_VLMCS._TCP.Corp.Example.Test." {
		t.Errorf("QueryName = %q, %v", n, err)
	}
	for _, bad := range []string{"", ".", "a..b", strings.Repeat("a.", 130)} {
		if _, err := QueryName(bad); err == nil {
			t.Errorf("QueryName(%q) accepted", bad)
		}
	}
}
