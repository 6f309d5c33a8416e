package vlmcs

import (
	"context"
	"fmt"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// TestDelegationsNeverPass: no answer vlmcs passes on (other questions, `_vlmcs._tcp`
// questions of scrub zones and search domains) carries a delegation of a name strictly below a
// zone of vlmcs, its DS, RRSIGs or glue, nor the next plugin's NS set at a zone's apex; a
// referral becomes NODATA with aa; delegations outside the zones pass.
func TestDelegationsNeverPass(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org kms1.example.org 192.0.2.0/24
	static kms1.example.org 1688 0 0 192.0.2.1
	scrub ad.example.org
	probe off
}`)
	for _, tc := range []struct {
		qname    string
		qtype    uint16
		ns       []string
		extra    []string
		referral bool // the delegation must go
	}{
		{"x._tcp.example.org.", dns.TypeA, []string{"_tcp.example.org. 600 IN NS ns._tcp.example.org.", "_tcp.example.org. 600 IN DS 1 8 2 abcd"}, []string{"ns._tcp.example.org. 600 IN A 198.51.100.66"}, true},
		{"_vlmcs._tcp.sub.ad.example.org.", dns.TypeSRV, []string{"sub.ad.example.org. 600 IN NS ns.evil.example.net."}, []string{"ns.evil.example.net. 600 IN A 198.51.100.66"}, true},
		{"_vlmcs._tcp.ad.example.org.", dns.TypeSRV, []string{"_tcp.ad.example.org. 600 IN NS ns.evil.example.net."}, nil, true},
		{"www.sub.ad.example.org.", dns.TypeA, []string{"sub.ad.example.org. 600 IN NS ns.evil.example.net."}, nil, true},
		{"www.example.net.", dns.TypeA, []string{"example.net. 600 IN NS ns.example.net."}, []string{"ns.example.net. 600 IN A 198.51.100.1"}, false},
		// The next plugin's apex NS set (and its glue) leads iterating resolvers past vlmcs.
		{"www.example.org.", dns.TypeTXT, []string{"example.org. 600 IN NS ns1.example.org."}, []string{"ns1.example.org. 600 IN A 192.0.2.53"}, true},
		{"ad.example.org.", dns.TypeNS, []string{"ad.example.org. 600 IN NS dc1.ad.example.org."}, []string{"dc1.ad.example.org. 600 IN A 198.51.100.66"}, true},
	} {
		var asked *dns.Msg
		next := upstreamSections(nil, rrs(t, tc.ns...), rrs(t, tc.extra...))
		v.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			asked = r
			return next.ServeDNS(ctx, w, r)
		})
		r := new(dns.Msg)
		r.SetQuestion(tc.qname, tc.qtype)
		r.RecursionDesired = false // a resolver iterating towards CoreDNS
		rec := newRecorder(&test.ResponseWriter{})
		if _, err := v.ServeDNS(context.Background(), rec, r); err != nil || rec.Msg == nil {
			t.Fatalf("%s: %v", tc.qname, err)
		}
		m := rec.Msg
		if !tc.referral {
			if len(m.Ns) != len(tc.ns) || len(m.Extra) != len(tc.extra) {
				t.Errorf("%s: a delegation outside the zones, or the apex NS, was changed: %v", tc.qname, m)
			}
			continue
		}
		if len(rrStrings(m)) != 0 || !m.Authoritative || m.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: want NODATA with aa, no delegation or glue: %v", tc.qname, m)
		}
		if m.RecursionDesired {
			t.Errorf("%s: reply RD differs from the query's", tc.qname)
		}
		if hasSRVLabel(tc.qname) && !asked.RecursionDesired {
			t.Errorf("%s: the next plugin was asked without RD", tc.qname)
		}
	}
}

// TestAddressesOfTargetsJudged: address records of a name approve admits as a KMS target,
// inside the zones, hold only addresses its networks or binding admit, on the alias chain of
// an address question too; other names and names outside the zones pass.
func TestAddressesOfTargetsJudged(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org kms1.example.org kms.example.net 192.0.2.0/24
	scrub ad.example.org
	probe off
}`)
	for _, tc := range []struct {
		qname  string
		answer []string
		keep   int
	}{
		{"kms1.ad.example.org.", []string{"kms1.ad.example.org. 60 IN A 198.51.100.66", "kms1.ad.example.org. 60 IN A 192.0.2.1"}, 1},
		// An alias chain through a KMS target name must end at addresses approve admits for
		// it, else the chain from that name on goes (the alias too: resolvers chase it).
		{"kms1.ad.example.org.", []string{"kms1.ad.example.org. 60 IN CNAME x.evil.example.net.", "x.evil.example.net. 60 IN A 198.51.100.66"}, 0},
		{"kms1.ad.example.org.", []string{"kms1.ad.example.org. 60 IN CNAME x.example.net.", "x.example.net. 60 IN A 192.0.2.7"}, 2},
		{"lure.example.org.", []string{"lure.example.org. 60 IN CNAME kms1.ad.example.org.", "kms1.ad.example.org. 60 IN CNAME x.evil.example.net.", "x.evil.example.net. 60 IN A 198.51.100.66"}, 1},
		{"lure.example.org.", []string{"lure.example.org. 60 IN CNAME kms1.ad.example.org.", "kms1.ad.example.org. 60 IN CNAME x.evil.example.net."}, 1},
		// An alias of a KMS target name off the question's chain goes too.
		{"www.example.org.", []string{"www.example.org. 60 IN A 192.0.2.9", "kms1.ad.example.org. 60 IN CNAME x.evil.example.net."}, 1},
		{"kms1.ad.example.org.", []string{"kms1.ad.example.org. 60 IN AAAA 2001:db8::66"}, 0},
		{"www.example.org.", []string{"www.example.org. 60 IN A 198.51.100.66"}, 1},
		{"kms.example.net.", []string{"kms.example.net. 60 IN A 198.51.100.66"}, 1},
	} {
		v.Next = upstreamSections(rrs(t, tc.answer...), nil, nil)
		m := query(t, v, tc.qname, dns.TypeA)
		if len(m.Answer) != tc.keep {
			t.Errorf("%s %v: kept %v, want %d records", tc.qname, tc.answer, m.Answer, tc.keep)
		}
	}
}

// TestLongAliasChainThroughTarget: a chain of more than maxChain aliases from a KMS target
// name cannot be judged to its end: SERVFAIL. One of maxChain aliases is judged.
func TestLongAliasChainThroughTarget(t *testing.T) {
	v := newTest(t, `vlmcs ad.example.org {
	approve *.ad.example.org 192.0.2.0/24
	scrub ad.example.org
	probe off
}`)
	chain := func(n int) []dns.RR {
		var out []string
		name := "kms1.ad.example.org."
		for i := range n {
			next := fmt.Sprintf("h%d.example.net.", i)
			out = append(out, name+" 60 IN CNAME "+next)
			name = next
		}
		return rrs(t, append(out, name+" 60 IN A 198.51.100.66")...)
	}
	v.Next = upstreamSections(chain(maxChain+1), nil, nil)
	if m := query(t, v, "kms1.ad.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Errorf("%d aliases: want SERVFAIL, got %v", maxChain+1, m)
	}
	v.Next = upstreamSections(chain(maxChain), nil, nil)
	if m := query(t, v, "kms1.ad.example.org.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("%d aliases to an unapproved address: want NODATA, got %v", maxChain, m)
	}
}

// TestOpcodesOtherThanQuery: NOTIFY (or any opcode but QUERY and UPDATE) for a zone of vlmcs
// is refused without reaching the next plugin; for other zones it passes.
func TestOpcodesOtherThanQuery(t *testing.T) {
	v := newTest(t, `vlmcs ad.example.org {
	approve *.ad.example.org
	scrub ad.example.org
	probe off
}`)
	for _, tc := range []struct {
		name   string
		reach  bool
		opcode int
	}{
		{"ad.example.org.", false, dns.OpcodeNotify},
		{"_vlmcs._tcp.ad.example.org.", false, dns.OpcodeNotify},
		{"sub.ad.example.org.", false, dns.OpcodeStatus},
		{"example.net.", true, dns.OpcodeNotify},
	} {
		reached := false
		v.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			reached = true
			m := new(dns.Msg)
			m.SetReply(r)
			w.WriteMsg(m)
			return dns.RcodeSuccess, nil
		})
		r := new(dns.Msg)
		r.SetQuestion(tc.name, dns.TypeSOA)
		r.Opcode = tc.opcode
		rec := newRecorder(&test.ResponseWriter{})
		v.ServeDNS(context.Background(), rec, r)
		if reached != tc.reach || !tc.reach && (rec.Msg == nil || rec.Msg.Rcode != dns.RcodeRefused) {
			t.Errorf("%s %s: reached next %v, reply %v", dns.OpcodeToString[tc.opcode], tc.name, reached, rec.Msg)
		}
	}
}
