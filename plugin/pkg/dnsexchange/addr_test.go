package dnsexchange

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/miekg/dns"
)

func TestServerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1:53", "127.0.0.1:1053": "127.0.0.1:1053", "::1": "[::1]:53",
		"[::1]:5353": "[::1]:5353", "dc1.corp.example": "dc1.corp.example:53",
	} {
		if got, err := ServerAddr(in); err != nil || got != want {
			t.Errorf("ServerAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "[::1", "a:b:c]"} {
		if _, err := ServerAddr(bad); err == nil {
			t.Errorf("ServerAddr(%q) accepted", bad)
		}
	}
}

func TestAppendAddrs(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rrs := []dns.RR{
		rr("kms1.example. 60 IN A 10.0.0.1"), rr("KMS1.example. 60 IN A 10.0.0.1"), rr("kms1.example. 60 IN AAAA ::ffff:10.0.0.2"),
		rr("kms1.example. 60 IN A 0.0.0.0"), rr("kms1.example. 60 IN A 224.0.0.1"), rr("other.example. 60 IN A 10.0.0.3"),
		rr("kms1.example. 60 IN AAAA 2001:db8::1"),
	}
	got := AppendAddrs(nil, rrs, "kms1.example.", 16)
	want := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("2001:db8::1")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AppendAddrs = %v, want %v", got, want)
	}
	if got := AppendAddrs(nil, rrs, "kms1.example.", 2); len(got) != 2 {
		t.Errorf("max 2: %v", got)
	}
}
