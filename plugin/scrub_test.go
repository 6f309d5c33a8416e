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
	ports `+up.portString()+` `+strconv.Itoa(int(dead))+`
}`)
	v.Next = upstream([]dns.RR{
		test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 " + up.portString() + " kms1.ad.example.org."),
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
	waitFor(t, 2*time.Second, "dead target scrubbed", func() bool {
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
		name  string
		srv   []string
		extra []dns.RR
		want  []string // A records expected in the additional section
	}{
		{"bare approved pool target gets glue", []string{"kms1.example.org."}, nil, []string{"kms1.example.org.=192.0.2.1"}},
		{"upstream glue kept, none added", []string{"kms1.example.org."},
			[]dns.RR{test.A("kms1.example.org. 600 IN A 192.0.2.9")}, []string{"kms1.example.org.=192.0.2.9"}},
		{"target unknown to the pool stays bare", []string{"kms2.example.org."},
			nil, nil},
		{"rogue removed, pool glue for the kept one", []string{"kms1.example.org.", "rogue.corp.test."},
			[]dns.RR{test.A("rogue.corp.test. 600 IN A 198.51.100.1")}, []string{"kms1.example.org.=192.0.2.1"}},
	}
	for _, tc := range cases {
		var ans []dns.RR
		for _, target := range tc.srv {
			ans = append(ans, test.SRV("_vlmcs._tcp.corp.test. 600 IN SRV 0 0 1688 "+target))
		}
		v.Next = upstream(ans, tc.extra)
		m := query(t, v, "_vlmcs._tcp.corp.test.", dns.TypeSRV)
		var got []string
		for _, rr := range m.Extra {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.Hdr.Name+"="+a.A.String())
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: extra %v, want %v", tc.name, got, tc.want)
		}
		if len(m.Answer) == 0 || m.Answer[0].(*dns.SRV).Target != "kms1.example.org." && tc.srv[0] == "kms1.example.org." {
			t.Errorf("%s: answer %v", tc.name, m.Answer)
		}
	}
}
