package vlmcs

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// newTest parses corefile and builds a private (unregistered) handler whose next plugin
// answers every query with a marker TXT record, so fall-through is visible.
func newTest(t testing.TB, corefile string) *Vlmcs {
	t.Helper()
	cfg, err := parse(caddy.NewTestController("dns", corefile))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	v := newVlmcs(cfg, "dns://test", "", nil)
	v.Next = markerHandler()
	return v
}

// markerHandler answers with "next" TXT, standing in for the rest of the chain.
func markerHandler() plugin.Handler {
	return plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"next"}}}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
}

// query runs one query through v and returns the recorded reply.
func query(t testing.TB, v *Vlmcs, name string, qt uint16) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(name, qt)
	rec := newRecorder(&test.ResponseWriter{})
	if _, err := v.ServeDNS(context.Background(), rec, r); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if rec.Msg == nil {
		t.Fatal("no reply written")
	}
	return rec.Msg
}

// listenKMS serves DCE/RPC on a loopback port chosen by the system: a real endpoint the probes
// bind to, standing in for a KMS host.
func listenKMS(t testing.TB) *testkit.KMSHost {
	t.Helper()
	return testkit.StartKMS(t, "127.0.0.1:0")
}

// deadPort returns a loopback port with nothing listening.
func deadPort(t testing.TB) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return p
}

// srvTargets lists "target:port" of the SRV records in m.
func srvTargets(m *dns.Msg) map[string]bool {
	out := map[string]bool{}
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out[s.Target+":"+strconv.Itoa(int(s.Port))] = true
		}
	}
	return out
}

func newController(in string) *caddy.Controller { return caddy.NewTestController("dns", in) }

// listenOn serves DCE/RPC on a given loopback port (after it was found free).
func listenOn(t testing.TB, port uint16) *testkit.KMSHost {
	t.Helper()
	return testkit.StartKMS(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
}

// wireRecorder is a dnstest.Recorder that also records replies written as wire bytes (the
// pre-packed fast path): it unpacks them into Msg.
type wireRecorder struct {
	*dnstest.Recorder
}

func newRecorder(w dns.ResponseWriter) *wireRecorder {
	return &wireRecorder{dnstest.NewRecorder(w)}
}

func (r *wireRecorder) Write(buf []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return 0, err
	}
	r.Rcode, r.Msg = m.Rcode, m
	return r.Recorder.Write(buf)
}

// dirHandler stands in for the directory behind vlmcs (Active Directory): it answers A and
// AAAA for the names in addrs (lower case, fully qualified), NODATA for their other types and
// NXDOMAIN for every other name.
func dirHandler(addrs map[string][]string) plugin.Handler {
	return plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		ips, ok := addrs[dns.CanonicalName(q.Name)]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, ip := range ips {
			p := net.ParseIP(ip)
			switch {
			case p.To4() != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: p})
			case p.To4() == nil && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: p})
			}
		}
		w.WriteMsg(m)
		return m.Rcode, nil
	})
}

// countingHandler counts the queries it passes to next.
func countingHandler(n *int, next plugin.Handler) plugin.Handler {
	return plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		*n++
		return next.ServeDNS(ctx, w, r)
	})
}
