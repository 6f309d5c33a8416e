package dnsexchange

import (
	"reflect"
	"testing"

	"github.com/miekg/dns"
)

func TestFollowAliases(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		rrs   []dns.RR
		end   string
		chain []string
	}{
		{"none", []dns.RR{rr("_vlmcs._tcp.a.test. 60 IN SRV 0 0 1688 kms.a.test.")}, "_vlmcs._tcp.a.test.", nil},
		{"cname", []dns.RR{rr("_vlmcs._tcp.a.test. 60 IN CNAME _vlmcs._tcp.B.test.")}, "_vlmcs._tcp.B.test.", []string{"_vlmcs._tcp.b.test."}},
		{"dname without the synthesized cname", []dns.RR{rr("_tcp.a.test. 60 IN DNAME _tcp.c.test.")}, "_vlmcs._tcp.c.test.", []string{"_vlmcs._tcp.c.test."}},
		{"loop stops", []dns.RR{rr("_vlmcs._tcp.a.test. 60 IN CNAME x.test."), rr("x.test. 60 IN CNAME _vlmcs._tcp.a.test.")}, "_vlmcs._tcp.a.test.",
			[]string{"x.test.", "_vlmcs._tcp.a.test.", "x.test.", "_vlmcs._tcp.a.test.", "x.test.", "_vlmcs._tcp.a.test.", "x.test.", "_vlmcs._tcp.a.test."}},
	} {
		end, chain := FollowAliases(tc.rrs, "_vlmcs._tcp.a.test.")
		if end != tc.end || !reflect.DeepEqual(chain, tc.chain) {
			t.Errorf("%s: %q %q, want %q %q", tc.name, end, chain, tc.end, tc.chain)
		}
	}
}

// TestFollowAliasesDNAMEThenCNAME: a DNAME at an ancestor, then a CNAME into another zone.
func TestFollowAliasesDNAMEThenCNAME(t *testing.T) {
	a, err1 := dns.NewRR("legacy.corp.test. 60 IN DNAME corp.test.")
	b, err2 := dns.NewRR("_vlmcs._tcp.corp.test. 60 IN CNAME _vlmcs._tcp.pool.other.test.")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	end, chain := FollowAliases([]dns.RR{a, b}, "_vlmcs._tcp.legacy.corp.test.")
	if end != "_vlmcs._tcp.pool.other.test." || !reflect.DeepEqual(chain, []string{"_vlmcs._tcp.corp.test.", "_vlmcs._tcp.pool.other.test."}) {
		t.Errorf("%q %v", end, chain)
	}
}
