package discover

import (
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// seen is one query as the test DNS server received it.
type seen struct {
	q   dns.Question
	rd  bool
	net string
}

// dnsServer is a real miekg/dns server on loopback (UDP and TCP on one
// runtime port) answering with answer(query, transport).
type dnsServer struct {
	addr   string
	answer func(q *dns.Msg, network string) *dns.Msg

	mu   sync.Mutex
	seen []seen
}

func startDNS(t *testing.T, answer func(q *dns.Msg, network string) *dns.Msg) *dnsServer {
	t.Helper()
	s := &dnsServer{answer: answer}
	ln, pc := testkit.ListenUDPTCP(t, "127.0.0.1:0")
	s.addr = ln.Addr().String()
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { started <- struct{}{} }},
		{Listener: ln, Handler: s, NotifyStartedFunc: func() { started <- struct{}{} }},
	} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	<-started
	<-started
	return s
}

func (s *dnsServer) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	network := w.LocalAddr().Network()
	s.mu.Lock()
	if len(q.Question) == 1 {
		s.seen = append(s.seen, seen{q: q.Question[0], rd: q.RecursionDesired, net: network})
	}
	s.mu.Unlock()
	if r := s.answer(q, network); r != nil {
		w.WriteMsg(r)
	}
}

func (s *dnsServer) queries() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.seen...)
}

// mustRR parses RRs in zone-file syntax.
func mustRR(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

// zone answers from a fixed table: name (lower case) and type → answer and
// additional RRs; names in nx get NXDOMAIN; everything else NODATA.
type zone struct {
	answers map[string][]dns.RR // key "name TYPE"
	extra   map[string][]dns.RR
	nx      map[string]bool
}

func (z zone) answer(q *dns.Msg, _ string) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	key := strings.ToLower(q.Question[0].Name) + " " + dns.TypeToString[q.Question[0].Qtype]
	if z.nx[strings.ToLower(q.Question[0].Name)] {
		r.Rcode = dns.RcodeNameError
		return r
	}
	r.Answer = z.answers[key]
	r.Extra = z.extra[key]
	return r
}
