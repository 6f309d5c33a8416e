package vlmcs

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// upstream answers `_vlmcs._tcp.ad.example.org` with a fixed response, like a forwarded AD zone.
func upstream(answer, extra []dns.RR) plugin.Handler {
	return plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer, m.Extra = answer, extra
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
}

// upstreamHosts is upstream whose A and AAAA questions are answered from hosts instead: the
// records owned by the question name, following CNAMEs among hosts as a server does.
func upstreamHosts(answer, extra, hosts []dns.RR) plugin.Handler {
	return plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA {
			m.Answer, m.Extra = answer, extra
			w.WriteMsg(m)
			return dns.RcodeSuccess, nil
		}
		name := q.Name
		for range maxChain {
			next := ""
			for _, rr := range hosts {
				if !strings.EqualFold(rr.Header().Name, name) {
					continue
				}
				if c, ok := rr.(*dns.CNAME); ok {
					next = c.Target
					m.Answer = append(m.Answer, rr)
				} else if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
			if next == "" {
				break
			}
			name = next
		}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
}

func TestScrub(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve kms1.ad.example.org 192.0.2.0/24
	scrub ad.example.org
	probe off
}`)
	ans := []dns.RR{
		test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 1688 kms1.ad.example.org."),
		test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 1688 rogue.ad.example.org."),
		test.RRSIG("_vlmcs._tcp.ad.example.org. 600 IN RRSIG SRV 8 4 600 20300101000000 20200101000000 1 ad.example.org. YQ=="),
	}
	extra := []dns.RR{
		test.A("kms1.ad.example.org. 600 IN A 192.0.2.1"),
		test.A("rogue.ad.example.org. 600 IN A 192.0.2.66"),
	}
	v.Next = upstream(ans, extra)
	before := len(ans)
	m := query(t, v, "_VLMCS._tcp.AD.example.org.", dns.TypeSRV)
	tc := test.Case{
		Answer: []dns.RR{test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 1688 kms1.ad.example.org.")},
		Extra:  []dns.RR{test.A("kms1.ad.example.org. 600 IN A 192.0.2.1")},
	}
	if err := test.SortAndCheck(m, tc); err != nil {
		t.Fatal(err)
	}
	if len(ans) != before || ans[1].(*dns.SRV).Target != "rogue.ad.example.org." {
		t.Error("the next plugin's records were modified")
	}

	// An approved name at an unapproved address is rogue too.
	v.Next = upstream(ans[:1], []dns.RR{test.A("kms1.ad.example.org. 600 IN A 198.51.100.1")})
	if m := query(t, v, "_vlmcs._tcp.ad.example.org.", dns.TypeSRV); len(m.Answer) != 0 || len(m.Extra) != 0 {
		t.Errorf("approved name at a foreign address kept: %v", m)
	}
	// Other names in the scrub zone pass untouched.
	v.Next = upstream([]dns.RR{test.A("rogue.ad.example.org. 600 IN A 192.0.2.66")}, nil)
	if m := query(t, v, "rogue.ad.example.org.", dns.TypeA); len(m.Answer) != 1 {
		t.Errorf("A query in scrub zone changed: %v", m)
	}
}

func TestScrubUnhealthy(t *testing.T) {
	up := listenKMS(t)
	dead := deadPort(t)
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org
	scrub ad.example.org
	scrub_unhealthy
	probe 20ms 100ms 1 1
	ports `+up.PortString()+` `+strconv.Itoa(int(dead))+`
}`)
	v.Next = upstream([]dns.RR{
		test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 " + up.PortString() + " kms1.ad.example.org."),
		test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 " + strconv.Itoa(int(dead)) + " kms2.ad.example.org."),
	}, []dns.RR{
		test.A("kms1.ad.example.org. 600 IN A 127.0.0.1"),
		test.A("kms2.ad.example.org. 600 IN A 127.0.0.1"),
	})
	if m := query(t, v, "_vlmcs._tcp.ad.example.org.", dns.TypeSRV); len(m.Answer) != 2 {
		t.Fatalf("unprobed targets dropped: %v", m.Answer)
	}
	v.start()
	defer v.stop()
	testkit.Eventually(t, 2*time.Second, "dead target scrubbed", func() bool {
		m := query(t, v, "_vlmcs._tcp.ad.example.org.", dns.TypeSRV)
		return len(m.Answer) == 1 && strings.HasPrefix(m.Answer[0].(*dns.SRV).Target, "kms1.") && len(m.Extra) == 1
	})
}

func TestScrubGlueFromPool(t *testing.T) {
	v := newTest(t, `vlmcs example.org corp.test {
	approve kms1.example.org kms2.example.org 192.0.2.0/24
	static kms1.example.org 1688 0 0 192.0.2.1
	scrub corp.test
	probe off
	ttl 3
}`)
	cases := []struct {
		name    string
		srv     []string
		extra   []dns.RR
		hosts   []string // the next plugin's address records (and aliases), for look-ups
		want    []string // A records expected in the additional section
		targets []string // SRV targets expected in the answer
	}{
		{"bare approved pool target gets glue", []string{"kms1.example.org."}, nil, nil,
			[]string{"kms1.example.org.=192.0.2.1"}, []string{"kms1.example.org."}},
		{"upstream glue kept, none added", []string{"kms1.example.org."},
			[]dns.RR{test.A("kms1.example.org. 600 IN A 192.0.2.9")}, nil, []string{"kms1.example.org.=192.0.2.9"}, []string{"kms1.example.org."}},
		{"target unknown to the pool is looked up and judged", []string{"kms2.example.org."}, nil,
			[]string{"kms2.example.org. 600 IN A 192.0.2.2"}, []string{"kms2.example.org.=192.0.2.2"}, []string{"kms2.example.org."}},
		{"target whose look-up finds nothing is removed", []string{"kms2.example.org."}, nil, nil, nil, nil},
		{"target that is an alias to an unapproved address is removed", []string{"kms2.example.org."}, nil,
			[]string{"kms2.example.org. 600 IN CNAME evil.example.net.", "evil.example.net. 600 IN A 6.6.6.6"}, nil, nil},
		{"rogue removed, pool glue for the kept one", []string{"kms1.example.org.", "rogue.corp.test."},
			[]dns.RR{test.A("rogue.corp.test. 600 IN A 198.51.100.1")}, nil, []string{"kms1.example.org.=192.0.2.1"}, []string{"kms1.example.org."}},
		{"address records in the answer section are judged too", []string{"kms2.example.org."},
			[]dns.RR{test.A("kms2.example.org. 600 IN A 192.0.2.2")}, []string{"kms2.example.org. 600 IN A 6.6.6.6"}, nil, nil},
	}
	for _, tc := range cases {
		var ans []dns.RR
		for _, target := range tc.srv {
			ans = append(ans, test.SRV("_vlmcs._tcp.corp.test. 600 IN SRV 0 0 1688 "+target))
		}
		hosts := rrs(t, tc.hosts...)
		if tc.name == "address records in the answer section are judged too" {
			ans, hosts = append(ans, hosts...), nil
		}
		v.Next = upstreamHosts(ans, tc.extra, hosts)
		m := query(t, v, "_vlmcs._tcp.corp.test.", dns.TypeSRV)
		var got, targets []string
		for _, rr := range append(m.Answer, m.Extra...) {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.Hdr.Name+"="+a.A.String())
			}
		}
		for _, rr := range m.Answer {
			if s, ok := rr.(*dns.SRV); ok {
				targets = append(targets, s.Target)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: address records %v, want %v", tc.name, got, tc.want)
		}
		if strings.Join(targets, ",") != strings.Join(tc.targets, ",") {
			t.Errorf("%s: targets %v, want %v", tc.name, targets, tc.targets)
		}
	}
}

// rrs parses records in presentation format.
func rrs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	out := make([]dns.RR, 0, len(lines))
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

// TestScrubAliases: what a client gets for a _vlmcs._tcp question the upstream answers through
// an alias chain.
func TestScrubAliases(t *testing.T) {
	aliasHosts := rrs(t, "kms1.ad.example.org. 60 IN A 192.0.2.1", "kms2.ad.example.org. 60 IN A 192.0.2.2", "kms3.ad.example.org. 60 IN A 192.0.2.3")
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org 192.0.2.0/24 kms9.ad.example.org=192.0.2.9
	scrub ad.example.org
	probe off
}`)
	const q = "_vlmcs._tcp.ad.example.org."
	cases := []struct {
		name       string
		qname      string
		qtype      uint16
		answer     []string
		extra      []string
		rcode      int
		wantAnswer []string // flattened SRV records "owner ttl target"
		wantExtra  []string // A records "name=address"
	}{
		{name: "CNAME to rogue SRV", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN CNAME x.ad.example.org.",
			"x.ad.example.org. 300 IN SRV 0 0 1688 rogue.example.net.",
		}, extra: []string{"rogue.example.net. 60 IN A 198.51.100.1"}, rcode: dns.RcodeSuccess},
		{name: "CNAME to approved and rogue: flattened", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN CNAME x.ad.example.org.",
			"x.ad.example.org. 300 IN SRV 0 0 1688 kms1.ad.example.org.",
			"x.ad.example.org. 300 IN SRV 0 0 1688 rogue.ad.example.org.",
		}, extra: []string{"kms1.ad.example.org. 60 IN A 192.0.2.1", "rogue.ad.example.org. 60 IN A 198.51.100.1"},
			rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 300 kms1.ad.example.org."}, wantExtra: []string{"kms1.ad.example.org.=192.0.2.1"}},
		{name: "DNAME above, synthesized CNAME", qname: q, qtype: dns.TypeSRV, answer: []string{
			"_tcp.ad.example.org. 100 IN DNAME evil.example.net.",
			q + " 100 IN CNAME _vlmcs.evil.example.net.",
			"_vlmcs.evil.example.net. 600 IN SRV 0 0 1688 rogue.example.net.",
			"_vlmcs.evil.example.net. 600 IN SRV 0 0 1688 kms2.ad.example.org.",
		}, rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 100 kms2.ad.example.org."}, wantExtra: []string{"kms2.ad.example.org.=192.0.2.2"}},
		{name: "DNAME without the synthesized CNAME", qname: q, qtype: dns.TypeSRV, answer: []string{
			"_TCP.ad.example.org. 100 IN DNAME evil.example.net.",
			"_vlmcs.evil.example.net. 50 IN SRV 0 0 1688 rogue.example.net.",
			"_vlmcs.evil.example.net. 50 IN SRV 0 0 1688 kms3.ad.example.org.",
		}, rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 50 kms3.ad.example.org."}, wantExtra: []string{"kms3.ad.example.org.=192.0.2.3"}},
		{name: "dangling chain leaving the zone: NODATA", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN CNAME _vlmcs._tcp.example.net.",
		}, rcode: dns.RcodeSuccess},
		{name: "chain ending in NXDOMAIN: NODATA", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN CNAME gone.ad.example.org.",
		}, rcode: dns.RcodeSuccess},
		{name: "CNAME question gets no alias", qname: q, qtype: dns.TypeCNAME, answer: []string{
			q + " 600 IN CNAME x.example.net.",
		}, rcode: dns.RcodeSuccess},
		{name: "ANY question through a CNAME", qname: q, qtype: dns.TypeANY, answer: []string{
			q + " 600 IN CNAME x.ad.example.org.",
			"x.ad.example.org. 300 IN SRV 0 0 1688 kms1.ad.example.org.",
		}, rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 300 kms1.ad.example.org."}, wantExtra: []string{"kms1.ad.example.org.=192.0.2.1"}},
		{name: "loop: SERVFAIL", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN CNAME a.ad.example.org.",
			"a.ad.example.org. 600 IN CNAME " + q,
		}, rcode: dns.RcodeServerFailure},
		{name: "DNAME loop: SERVFAIL", qname: q, qtype: dns.TypeSRV, answer: []string{
			"_tcp.ad.example.org. 600 IN DNAME _tcp._tcp.ad.example.org.",
		}, rcode: dns.RcodeServerFailure},
		{name: "long chain: SERVFAIL", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 60 IN CNAME c1.ad.example.org.", "c1.ad.example.org. 60 IN CNAME c2.ad.example.org.",
			"c2.ad.example.org. 60 IN CNAME c3.ad.example.org.", "c3.ad.example.org. 60 IN CNAME c4.ad.example.org.",
			"c4.ad.example.org. 60 IN CNAME c5.ad.example.org.", "c5.ad.example.org. 60 IN CNAME c6.ad.example.org.",
			"c6.ad.example.org. 60 IN CNAME c7.ad.example.org.", "c7.ad.example.org. 60 IN CNAME c8.ad.example.org.",
			"c8.ad.example.org. 60 IN CNAME c9.ad.example.org.", "c9.ad.example.org. 60 IN SRV 0 0 1688 kms1.ad.example.org.",
		}, rcode: dns.RcodeServerFailure},
		{name: "SRV at another owner judged too", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN SRV 0 0 1688 kms1.ad.example.org.",
			"other.ad.example.org. 600 IN SRV 0 0 1688 rogue.example.net.",
		}, extra: []string{"x.ad.example.org. 600 IN SRV 0 0 1688 rogue2.example.net."}, rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 600 kms1.ad.example.org."}, wantExtra: []string{"kms1.ad.example.org.=192.0.2.1"}},
		{name: "escaped dot in the target label is unapproved", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + ` 600 IN SRV 0 0 1688 evil\.kms.ad.example.org.`,
			q + " 600 IN SRV 0 0 1688 kms1.ad.example.org.",
		}, rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 600 kms1.ad.example.org."}, wantExtra: []string{"kms1.ad.example.org.=192.0.2.1"}},
		{name: "bound name: foreign glue is rogue", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN SRV 0 0 1688 kms9.ad.example.org.",
		}, extra: []string{"kms9.ad.example.org. 600 IN A 192.0.2.10"}, rcode: dns.RcodeSuccess},
		{name: "bound name: bare target gets its bound address", qname: q, qtype: dns.TypeSRV, answer: []string{
			q + " 600 IN SRV 0 0 1688 kms9.ad.example.org.",
		}, rcode: dns.RcodeSuccess, wantAnswer: []string{q + " 600 kms9.ad.example.org."}, wantExtra: []string{"kms9.ad.example.org.=192.0.2.9"}},
		{name: "search domain below the scrub zone", qname: "_vlmcs._tcp.sub.ad.example.org.", qtype: dns.TypeSRV, answer: []string{
			"_vlmcs._tcp.sub.ad.example.org. 600 IN SRV 0 0 1688 rogue.example.net.",
			"_vlmcs._tcp.sub.ad.example.org. 600 IN SRV 0 0 1688 kms1.ad.example.org.",
		}, rcode: dns.RcodeSuccess, wantAnswer: []string{"_vlmcs._tcp.sub.ad.example.org. 600 kms1.ad.example.org."}, wantExtra: []string{"kms1.ad.example.org.=192.0.2.1"}},
		{name: "search domain below the publish zone", qname: "_vlmcs._tcp.sub.example.org.", qtype: dns.TypeSRV, answer: []string{
			"_vlmcs._tcp.sub.example.org. 600 IN CNAME x.example.org.",
			"x.example.org. 600 IN SRV 0 0 1688 rogue.example.net.",
		}, rcode: dns.RcodeSuccess},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans, extra := rrs(t, tc.answer...), rrs(t, tc.extra...)
			v.Next = upstreamHosts(ans, extra, aliasHosts)
			m := query(t, v, tc.qname, tc.qtype)
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s: %v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], m)
			}
			var got []string
			for _, rr := range m.Answer {
				srv, ok := rr.(*dns.SRV)
				if !ok {
					t.Fatalf("answer holds %v: aliases and other records must not reach the client", rr)
				}
				got = append(got, srv.Hdr.Name+" "+strconv.Itoa(int(srv.Hdr.Ttl))+" "+srv.Target)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantAnswer, ",") {
				t.Errorf("answer %q, want %q", got, tc.wantAnswer)
			}
			var glue []string
			for _, rr := range m.Extra {
				switch rr := rr.(type) {
				case *dns.A:
					glue = append(glue, rr.Hdr.Name+"="+rr.A.String())
				case *dns.SRV:
					t.Errorf("additional SRV %v kept", rr)
				}
			}
			if strings.Join(glue, ",") != strings.Join(tc.wantExtra, ",") {
				t.Errorf("glue %q, want %q", glue, tc.wantExtra)
			}
		})
	}
}

// TestDNAMEGuard: DNAMEs from the next plugin that would redirect _vlmcs._tcp.<zone> never
// reach a client, in publish and scrub zones; other DNAMEs pass.
func TestDNAMEGuard(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org
	scrub ad.example.org
	probe off
}`)
	for _, tc := range []struct {
		qname, dname string
		strip        bool
	}{
		{"x._tcp.ad.example.org.", "_tcp.ad.example.org. 600 IN DNAME evil.example.net.", true},
		{"x._tcp.example.org.", "_tcp.example.org. 600 IN DNAME evil.example.net.", true},
		{"y.ad.example.org.", "ad.example.org. 600 IN DNAME evil.example.net.", true},
		{"x._udp.ad.example.org.", "_udp.ad.example.org. 600 IN DNAME other.example.net.", true}, // covers _vlmcs._tcp._udp.ad.example.org.
		{"x.sub.ad.example.org.", "sub.ad.example.org. 600 IN DNAME other.example.net.", true},
		{"x.y.example.net.", "y.example.net. 600 IN DNAME other.example.net.", false},
	} {
		d := rrs(t, tc.dname)[0]
		owner := d.Header().Name
		syn := rrs(t, tc.qname+" 600 IN CNAME "+strings.TrimSuffix(tc.qname, owner)+"evil.example.net.")[0]
		v.Next = upstream([]dns.RR{d, syn}, nil)
		m := query(t, v, tc.qname, dns.TypeA)
		if got := hasType(m.Answer, dns.TypeDNAME); got == tc.strip || !hasType(m.Answer, dns.TypeCNAME) {
			t.Errorf("%s: answer %v (strip %v)", tc.qname, m.Answer, tc.strip)
		}
	}
}

// TestBoundNameAnswers: A/AAAA for a name bound by `approve NAME=ADDRESS` inside a zone of
// vlmcs get the bound addresses, whatever the next plugin holds.
func TestBoundNameAnswers(t *testing.T) {
	v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.ad.example.org kms9.ad.example.org=192.0.2.9 kms8.example.org=192.0.2.8 outside.example.net=192.0.2.7
	scrub ad.example.org
	probe off
}`)
	v.Next = upstream(rrs(t, "kms9.ad.example.org. 600 IN A 198.51.100.66", "kms9.ad.example.org. 600 IN AAAA 2001:db8::66"), nil)
	m := query(t, v, "KMS9.ad.example.org.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.9" || !m.Authoritative {
		t.Errorf("A of a bound name: %v", m)
	}
	if m := query(t, v, "kms9.ad.example.org.", dns.TypeAAAA); len(m.Answer) != 0 || m.Rcode != dns.RcodeSuccess {
		t.Errorf("AAAA of a bound name without IPv6 addresses: want NODATA, got %v", m)
	}
	if m := query(t, v, "kms8.example.org.", dns.TypeAAAA); len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("NODATA in a publish zone lacks the SOA: %v", m)
	}
	// A bound name outside the zones is not vlmcs's to answer.
	v.Next = upstream(rrs(t, "outside.example.net. 600 IN A 198.51.100.7"), nil)
	if m := query(t, v, "outside.example.net.", dns.TypeA); len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "198.51.100.7" {
		t.Errorf("bound name outside the zones answered by vlmcs: %v", m)
	}
}
