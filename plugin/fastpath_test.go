package vlmcs

import (
	"context"
	"slices"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// pathWriter records whether a reply came as wire bytes (the fast path) or as a message.
type pathWriter struct {
	test.ResponseWriter
	msg  *dns.Msg
	wire bool
}

func (w *pathWriter) WriteMsg(m *dns.Msg) error {
	// Round-trip through the wire, as the server would, so both paths compare alike.
	b, err := m.Pack()
	if err != nil {
		return err
	}
	w.msg = new(dns.Msg)
	return w.msg.Unpack(b)
}

func (w *pathWriter) Write(b []byte) (int, error) {
	w.wire = true
	w.msg = new(dns.Msg)
	return len(b), w.msg.Unpack(b)
}

const fastCorefile = `vlmcs example.test {
	approve *.example.test
	static kms1.example.test 1688 0 0 192.0.2.1
	static kms2.example.test 1688 10 5 192.0.2.2 2001:db8::2
	static kms3.example.test 1689 0 0 192.0.2.3
	probe off
}`

// serve runs r through v on a writer for UDP or TCP.
func serve(t *testing.T, v *Vlmcs, r *dns.Msg, tcp bool) *pathWriter {
	t.Helper()
	w := &pathWriter{ResponseWriter: test.ResponseWriter{TCP: tcp}}
	if _, err := v.ServeDNS(context.Background(), w, r); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if w.msg == nil {
		t.Fatal("no reply written")
	}
	return w
}

// sortedRRs returns the records' presentation forms in order.
func sortedRRs(rrs []dns.RR) []string {
	s := make([]string, len(rrs))
	for i, rr := range rrs {
		s[i] = rr.String()
	}
	slices.Sort(s)
	return s
}

func TestFastPathMatchesSlowPath(t *testing.T) {
	v := newTest(t, fastCorefile)
	tests := []struct {
		name  string
		qname string
		qtype uint16
		class uint16
		id    uint16
		rd    bool
		cd    bool
		edns  bool
		tcp   bool
		fast  bool
	}{
		{name: "lower case", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeSRV, id: 1, fast: true},
		{name: "mixed case", qname: "_VLMCS._TCP.Example.Test.", qtype: dns.TypeSRV, id: 0xbeef, fast: true},
		{name: "rd echoed", qname: "_vlmcs._Tcp.example.TEST.", qtype: dns.TypeSRV, id: 0x1234, rd: true, fast: true},
		{name: "cd echoed", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeSRV, id: 0xffff, cd: true, fast: true},
		{name: "rd and cd", qname: "_VLMCS._tcp.example.test.", qtype: dns.TypeSRV, id: 7, rd: true, cd: true, fast: true},
		{name: "edns", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeSRV, id: 2, edns: true},
		{name: "tcp", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeSRV, id: 3, tcp: true},
		{name: "any", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeANY, id: 4},
		{name: "nodata", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeA, id: 5},
		{name: "class chaos", qname: "_vlmcs._tcp.example.test.", qtype: dns.TypeSRV, class: dns.ClassCHAOS, id: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := new(dns.Msg)
			r.SetQuestion(tc.qname, tc.qtype)
			r.Id, r.RecursionDesired, r.CheckingDisabled = tc.id, tc.rd, tc.cd
			if tc.class != 0 {
				r.Question[0].Qclass = tc.class
			}
			if tc.edns {
				r.SetEdns0(1232, false)
			}
			got := serve(t, v, r, tc.tcp)
			if got.wire != tc.fast {
				t.Fatalf("fast path used: %v, want %v", got.wire, tc.fast)
			}
			// The slow path's reply for the same query: TCP never takes the fast path.
			want := serve(t, v, r, true)
			if want.wire {
				t.Fatal("a TCP query took the fast path")
			}
			g, w := got.msg, want.msg
			if g.MsgHdr != w.MsgHdr {
				t.Errorf("header %+v, want %+v", g.MsgHdr, w.MsgHdr)
			}
			if g.Id != tc.id || g.RecursionDesired != tc.rd || g.CheckingDisabled != tc.cd || !g.Response || !g.Authoritative {
				t.Errorf("header %+v does not echo id %#x rd %v cd %v with QR and AA", g.MsgHdr, tc.id, tc.rd, tc.cd)
			}
			if !slices.Equal(g.Question, w.Question) || g.Question[0].Name != tc.qname {
				t.Errorf("question %v, want %v with name %q as sent", g.Question, w.Question, tc.qname)
			}
			if !slices.Equal(sortedRRs(g.Answer), sortedRRs(w.Answer)) {
				t.Errorf("answer %v, want %v in any order", g.Answer, w.Answer)
			}
			if !slices.Equal(sortedRRs(g.Ns), sortedRRs(w.Ns)) {
				t.Errorf("authority %v, want %v", g.Ns, w.Ns)
			}
			if !slices.Equal(sortedRRs(g.Extra), sortedRRs(w.Extra)) {
				t.Errorf("additional %v, want %v", g.Extra, w.Extra)
			}
			if tc.fast && len(g.Answer) != 3 {
				t.Errorf("fast answer has %d SRV records, want 3", len(g.Answer))
			}
		})
	}
}

func TestFastPathOrderVaries(t *testing.T) {
	v := newTest(t, fastCorefile)
	r := new(dns.Msg)
	r.SetQuestion("_vlmcs._tcp.example.test.", dns.TypeSRV)
	orders := map[string]bool{}
	for range 200 {
		w := serve(t, v, r, false)
		if !w.wire {
			t.Fatal("a plain UDP SRV query took the slow path")
		}
		var o string
		for _, rr := range w.msg.Answer {
			o += rr.(*dns.SRV).Target + " "
		}
		orders[o] = true
	}
	// Three members have six orders; all are pre-packed, so 200 draws see every one.
	if len(orders) != 6 {
		t.Errorf("%d member orders over 200 queries, want 6: %v", len(orders), orders)
	}
}

func TestFastPathRebuiltOnChange(t *testing.T) {
	v := newTest(t, updCorefile)
	r := new(dns.Msg)
	r.SetQuestion("_vlmcs._tcp.example.org.", dns.TypeSRV)
	targets := func() []string {
		t.Helper()
		w := serve(t, v, r, false)
		var s []string
		for _, rr := range w.msg.Answer {
			s = append(s, rr.(*dns.SRV).Target)
		}
		if len(s) > 0 && !w.wire {
			t.Error("a plain UDP SRV query with members took the slow path")
		}
		slices.Sort(s)
		return s
	}
	if got := targets(); len(got) != 0 {
		t.Fatalf("empty pool answered %v", got)
	}
	if m := register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 60); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("register kms1: %v", m)
	}
	if got, want := targets(), []string{"kms1.example.org."}; !slices.Equal(got, want) {
		t.Fatalf("after one registration: %v, want %v", got, want)
	}
	if m := send(t, v, sign(regMsg("example.org.", "kms2.example.org.", "127.0.0.2", 1688, 60), "k2."), "127.0.0.2", false, nil); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("register kms2: %v", m)
	}
	if got, want := targets(), []string{"kms1.example.org.", "kms2.example.org."}; !slices.Equal(got, want) {
		t.Fatalf("after two registrations: %v, want %v", got, want)
	}
}

func TestPackAnswersTooLarge(t *testing.T) {
	var srv, extra []dns.RR
	for i := range 40 {
		target := dns.Fqdn("kms" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".example.test")
		srv = append(srv, &dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: 1688, Target: target})
	}
	if p := packAnswers("_vlmcs._tcp.example.test.", srv, extra); p != nil {
		t.Errorf("an answer over %d bytes was pre-packed (%d variants)", packedMax, len(p))
	}
	if p := packAnswers("_vlmcs._tcp.example.test.", srv[:4], extra); len(p) != packedVariants {
		t.Errorf("four members gave %d variants, want %d", len(p), packedVariants)
	}
}
