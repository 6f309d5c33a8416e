package vlmcs

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

// upstreamSections answers every question with the given sections.
func upstreamSections(answer, ns, extra []dns.RR) plugin.Handler {
	return plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer, m.Ns, m.Extra = answer, ns, extra
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
}

// rrStrings lists the records of all sections, one string each.
func rrStrings(m *dns.Msg) []string {
	var out []string
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype != dns.TypeOPT {
				out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
			}
		}
	}
	return out
}

// TestPassGuard: answers to questions vlmcs passes on never carry records that answer a
// `_vlmcs._tcp` question of its zones (a cache in front would serve them to the next such
// question), nor a DNAME that covers one; everything else passes untouched.
func TestPassGuard(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org kms1.example.org
	static kms1.example.org 1688 0 0 192.0.2.1
	scrub ad.example.org
	probe off
}`)
	v.start()
	defer v.stop()
	const srv = "_vlmcs._tcp.ad.example.org."
	cases := []struct {
		name              string
		qname             string
		qtype             uint16
		answer, ns, extra []string
		cut               []string // records (as in the input) that must not reach the client
		add               []string // records vlmcs puts in their place
	}{
		{name: "lure CNAME to the scrub name, asked as SRV: judged there", qname: "lure.ad.example.org.", qtype: dns.TypeSRV,
			answer: []string{"lure.ad.example.org. 60 IN CNAME " + srv, srv + " 60 IN SRV 0 0 1688 rogue.example.net.",
				srv + " 60 IN SRV 0 0 1688 kms1.ad.example.org.",
				srv + " 60 IN RRSIG SRV 8 4 60 20300101000000 20200101000000 1 ad.example.org. YQ=="},
			extra: []string{"rogue.example.net. 60 IN A 6.6.6.6"},
			cut: []string{srv + " 60 IN SRV 0 0 1688 rogue.example.net.", srv + " 60 IN RRSIG SRV 8 4 60 20300101000000 20200101000000 1 ad.example.org. YQ==",
				"rogue.example.net. 60 IN A 6.6.6.6"}},
		{name: "lure to the publish name: the pool's answer", qname: "lure.example.org.", qtype: dns.TypeSRV,
			answer: []string{"lure.example.org. 60 IN CNAME _vlmcs._tcp.example.org.", "_vlmcs._tcp.example.org. 60 IN SRV 0 0 1688 rogue.example.net."},
			extra:  []string{"rogue.example.net. 60 IN A 6.6.6.6"},
			cut:    []string{"_vlmcs._tcp.example.org. 60 IN SRV 0 0 1688 rogue.example.net.", "rogue.example.net. 60 IN A 6.6.6.6"},
			add:    []string{"_vlmcs._tcp.example.org. 2 IN SRV 0 0 1688 kms1.example.org.", "kms1.example.org. 2 IN A 192.0.2.1"}},
		{name: "lure to a search domain's name, mixed case", qname: "lure.ad.example.org.", qtype: dns.TypeANY,
			answer: []string{"lure.ad.example.org. 60 IN CNAME _VLMCS._TCP.sub.AD.example.org.", "_VLMCS._TCP.sub.AD.example.org. 60 IN SRV 0 0 1688 rogue.example.net."},
			cut:    []string{"_VLMCS._TCP.sub.AD.example.org. 60 IN SRV 0 0 1688 rogue.example.net."}},
		{name: "alias at the scrub name in a chain: flattened, nothing approved at its end", qname: "lure.ad.example.org.", qtype: dns.TypeSRV,
			answer: []string{"lure.ad.example.org. 60 IN CNAME " + srv, srv + " 60 IN CNAME evil.example.net.", "evil.example.net. 60 IN SRV 0 0 1688 rogue.example.net."},
			cut:    []string{srv + " 60 IN CNAME evil.example.net.", "evil.example.net. 60 IN SRV 0 0 1688 rogue.example.net."}},
		{name: "alias at the scrub name in a chain: flattened to the approved target", qname: "lure.ad.example.org.", qtype: dns.TypeSRV,
			answer: []string{"lure.ad.example.org. 60 IN CNAME " + srv, srv + " 30 IN CNAME x.example.net.", "x.example.net. 60 IN SRV 0 0 1688 kms1.ad.example.org."},
			cut:    []string{srv + " 30 IN CNAME x.example.net.", "x.example.net. 60 IN SRV 0 0 1688 kms1.ad.example.org."},
			add:    []string{srv + " 30 IN SRV 0 0 1688 kms1.ad.example.org."}},
		{name: "SRV at the scrub name in the additional section", qname: "_ldap._tcp.ad.example.org.", qtype: dns.TypeSRV,
			answer: []string{"_ldap._tcp.ad.example.org. 60 IN SRV 0 0 389 dc1.ad.example.org."},
			extra:  []string{srv + " 60 IN SRV 0 0 1688 rogue.example.net."},
			cut:    []string{srv + " 60 IN SRV 0 0 1688 rogue.example.net."}},
		{name: "SRV at the scrub name in the authority section", qname: "x.ad.example.org.", qtype: dns.TypeA,
			ns:  []string{srv + " 60 IN SRV 0 0 1688 rogue.example.net."},
			cut: []string{srv + " 60 IN SRV 0 0 1688 rogue.example.net."}},
		{name: "DNAME below the zone over a search domain's name", qname: "x._tcp.sub.ad.example.org.", qtype: dns.TypeA,
			answer: []string{"_tcp.sub.ad.example.org. 60 IN DNAME attacker.test.", "x._tcp.sub.ad.example.org. 60 IN CNAME x.attacker.test."},
			cut:    []string{"_tcp.sub.ad.example.org. 60 IN DNAME attacker.test."}},
		{name: "DNAME at any depth below the zone, in the authority and additional sections", qname: "x.ad.example.org.", qtype: dns.TypeA,
			ns:    []string{"a.b.c.ad.example.org. 60 IN DNAME attacker.test.", "a.b.c.ad.example.org. 60 IN RRSIG DNAME 8 6 60 20300101000000 20200101000000 1 ad.example.org. YQ=="},
			extra: []string{"sub.example.org. 60 IN DNAME attacker.test."},
			cut: []string{"a.b.c.ad.example.org. 60 IN DNAME attacker.test.", "a.b.c.ad.example.org. 60 IN RRSIG DNAME 8 6 60 20300101000000 20200101000000 1 ad.example.org. YQ==",
				"sub.example.org. 60 IN DNAME attacker.test."}},
		{name: "DNAME above the zones", qname: "x.org.", qtype: dns.TypeA,
			answer: []string{"org. 60 IN DNAME attacker.test.", "x.org. 60 IN CNAME x.attacker.test."},
			cut:    []string{"org. 60 IN DNAME attacker.test."}},
		{name: "other names pass", qname: "_ldap._tcp.ad.example.org.", qtype: dns.TypeSRV,
			answer: []string{"_ldap._tcp.ad.example.org. 60 IN SRV 0 0 389 dc1.ad.example.org.", "_vlmcs._tcp.example.net. 60 IN SRV 0 0 1688 x.example.net.",
				"x._vlmcs._tcp.ad.example.org. 60 IN TXT \"below, not the name\"", "y.example.net. 60 IN DNAME attacker.test.", `_vlmcs\._tcp.ad.example.org. 60 IN SRV 0 0 1688 one.label.test.`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans, ns, extra := rrs(t, tc.answer...), rrs(t, tc.ns...), rrs(t, tc.extra...)
			v.Next = upstreamSections(ans, ns, extra)
			r := new(dns.Msg)
			r.SetQuestion(tc.qname, tc.qtype)
			in := new(dns.Msg)
			in.SetReply(r)
			in.Answer, in.Ns, in.Extra = ans, ns, extra
			want := map[string]bool{}
			for _, s := range rrStrings(in) {
				want[s] = true
			}
			for _, c := range tc.cut {
				rr := rrs(t, c)[0]
				s := strings.ReplaceAll(rr.String(), "\t", " ")
				if !want[s] {
					t.Fatalf("cut record %q is not in the input", s)
				}
				delete(want, s)
			}
			for _, a := range tc.add {
				want[strings.ReplaceAll(rrs(t, a)[0].String(), "\t", " ")] = true
			}
			m := query(t, v, tc.qname, tc.qtype)
			got := map[string]bool{}
			for _, s := range rrStrings(m) {
				got[s] = true
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("reply holds\n%v\nwant\n%v", strings.Join(rrStrings(m), "\n"), want)
			}
			if len(tc.cut) == 0 && v.guard(context.Background(), in, true, "") != in {
				t.Errorf("an answer with nothing to remove was copied")
			}
		})
	}
}

// TestTransferRefused: AXFR and IXFR of a zone of vlmcs, of a zone inside one, or of a zone
// holding one are refused; other transfers pass on.
func TestTransferRefused(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org
	scrub ad.example.org
	probe off
}`)
	for _, tc := range []struct {
		name    string
		qt      uint16
		refused bool
	}{
		{"ad.example.org.", dns.TypeAXFR, true},
		{"AD.example.org.", dns.TypeIXFR, true},
		{"example.org.", dns.TypeAXFR, true},
		{"sub.ad.example.org.", dns.TypeAXFR, true},
		{"org.", dns.TypeAXFR, true},
		{".", dns.TypeAXFR, true},
		{"example.net.", dns.TypeAXFR, false},
		{"ad.example.org.", dns.TypeSOA, false},
	} {
		m := query(t, v, tc.name, tc.qt)
		if refused := m.Rcode == dns.RcodeRefused; refused != tc.refused {
			t.Errorf("%s %s: rcode %s, want refused %v", tc.name, dns.TypeToString[tc.qt], dns.RcodeToString[m.Rcode], tc.refused)
		}
		if tc.refused && len(m.Answer) != 0 {
			t.Errorf("%s %s: refusal carries records %v", tc.name, dns.TypeToString[tc.qt], m.Answer)
		}
	}
}

// TestScrubAuthoritySection: SRV records in the authority section of a scrubbed answer are
// judged like those of the other sections.
func TestScrubAuthoritySection(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve kms1.ad.example.org
	scrub ad.example.org
	probe off
}`)
	const q = "_vlmcs._tcp.ad.example.org."
	v.Next = upstreamSections(nil, rrs(t, q+" 60 IN SRV 0 0 1688 rogue.example.net.", q+" 60 IN SRV 0 0 1688 kms1.ad.example.org.",
		"ad.example.org. 60 IN SOA ns1.ad.example.org. h.ad.example.org. 1 60 60 60 60"),
		rrs(t, "rogue.example.net. 60 IN A 6.6.6.6"))
	m := query(t, v, q, dns.TypeSRV)
	for _, s := range rrStrings(m) {
		if strings.Contains(s, "rogue") || strings.Contains(s, "6.6.6.6") {
			t.Errorf("rogue record %q reached the client: %v", s, m)
		}
	}
	if !strings.Contains(strings.Join(rrStrings(m), "\n"), "kms1.ad.example.org.") || !hasType(m.Ns, dns.TypeSOA) {
		t.Errorf("approved record or SOA lost: %v", m)
	}
}

// TestScrubUnhealthyTableFull: once scrub_unhealthy tracks maxScrubTargets targets, a target
// it cannot track is not kept (no probe could judge it); targets unseen for scrubForget make
// room again.
func TestScrubUnhealthyTableFull(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org
	scrub ad.example.org
	scrub_unhealthy
}`)
	const q = "_vlmcs._tcp.ad.example.org."
	ans := rrs(t, q+" 60 IN SRV 0 0 1688 dead.ad.example.org.")
	extra := rrs(t, "dead.ad.example.org. 60 IN A 192.0.2.66")
	v.Next = upstream(ans, extra)
	now := time.Now()
	for i := range maxScrubTargets {
		k := memberKey{fmt.Sprintf("h%d.ad.example.org.", i), 1688}
		if ok, tracked := v.scrubHC.observe(k, "ad.example.org.", []netip.Addr{netip.MustParseAddr("192.0.2.1")}, now); !ok || !tracked {
			t.Fatalf("target %d of %d not tracked", i, maxScrubTargets)
		}
	}
	if m := query(t, v, q, dns.TypeSRV); len(m.Answer) != 0 || len(m.Extra) != 0 {
		t.Errorf("untracked target kept while the table is full: %v", m)
	}
	// A tracked target is judged as before: pending, so kept.
	v.Next = upstream(rrs(t, q+" 60 IN SRV 0 0 1688 h7.ad.example.org."), nil)
	if m := query(t, v, q, dns.TypeSRV); len(m.Answer) != 1 {
		t.Errorf("tracked pending target dropped: %v", m)
	}
	// Stale targets are forgotten to make room.
	v.scrubHC.mu.Lock()
	for _, st := range v.scrubHC.targets {
		st.seen = now.Add(-scrubForget - time.Minute)
	}
	v.scrubHC.pruned = time.Time{}
	v.scrubHC.mu.Unlock()
	v.Next = upstream(ans, extra)
	if m := query(t, v, q, dns.TypeSRV); len(m.Answer) != 1 {
		t.Errorf("no room made from stale targets: %v", m)
	}
}
