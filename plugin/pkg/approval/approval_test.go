package approval

import (
	"errors"
	"net/netip"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestParseErrors(t *testing.T) {
	for _, rule := range []string{
		"", "*.", "a.*.test", `evil\.kms.test`, "kms test", "10.0.0.0/33", "10.0.0", "::ffff:10.0.0.0/104",
		"kms1.test=", "kms1.test=10.0.0.0/24", "*.test=10.0.0.1", "kms1.test=kms2.test", "=10.0.0.1",
		"kms1.test=10.0.0.1,", "kms1.test=224.0.0.1", "kms1.test=0.0.0.0", "kms1.test=fe80::1%eth0", `k\.x.test=10.0.0.1`,
	} {
		if r, err := Parse(rule); err == nil {
			t.Errorf("Parse(%q) = %s, want an error", rule, r)
		}
	}
}

func TestRules(t *testing.T) {
	type host struct {
		name  string
		addrs []netip.Addr
		ok    bool
		err   error
	}
	tests := []struct {
		rules []string
		hosts []host
	}{
		{nil, []host{{"kms1.test.", nil, false, ErrName}}},
		{[]string{"*.kms.corp.test"}, []host{
			{"a.kms.corp.test.", addrs("192.0.2.1"), true, nil},
			{"A.KMS.corp.test", nil, true, nil},
			{`evil\.kms.corp.test.`, nil, false, ErrName},
			{`a\032b.kms.corp.test.`, nil, false, ErrName},
			{"kms.corp.test.", nil, false, ErrName},
		}},
		{[]string{"10.0.0.0/24"}, []host{
			{"anything.test.", addrs("10.0.0.9"), true, nil},
			{"anything.test.", addrs("::ffff:10.0.0.9"), true, nil},
			{"anything.test.", addrs("10.0.0.9", "10.0.1.9"), false, ErrAddr},
			{`bad\.name.test.`, addrs("10.0.0.9"), false, ErrName},
		}},
		{[]string{"kms1.corp.test", "10.0.0.0/24"}, []host{
			{"kms1.corp.test.", addrs("10.0.0.1"), true, nil},
			{"kms1.corp.test.", addrs("10.0.1.1"), false, ErrAddr},
			{"kms2.corp.test.", addrs("10.0.0.1"), false, ErrName},
		}},
		{[]string{"*.corp.test", "10.0.0.0/8", "kms1.corp.test=192.0.2.5,2001:db8::5", "KMS1.corp.test=192.0.2.6"}, []host{
			{"kms1.corp.test.", addrs("192.0.2.5", "2001:db8::5", "192.0.2.6"), true, nil},
			{"kms1.corp.test.", addrs("10.0.0.5"), false, ErrAddr}, // bound: networks do not widen it
			{"kms2.corp.test.", addrs("10.0.0.5"), true, nil},
			{"kms2.corp.test.", addrs("192.0.2.5"), false, ErrAddr},
		}},
		{[]string{"kms1.other.test=192.0.2.5"}, []host{ // a binding is a name rule
			{"kms1.other.test.", addrs("192.0.2.5"), true, nil},
			{"kms1.other.test.", nil, true, nil},
			{"kms2.other.test.", nil, false, ErrName},
		}},
	}
	for _, tc := range tests {
		r, err := Parse(tc.rules...)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.rules, err)
		}
		for _, h := range tc.hosts {
			if got := r.Host(h.name, h.addrs); got != h.ok {
				t.Errorf("rules %q: Host(%s, %v) = %v", tc.rules, h.name, h.addrs, got)
			}
			err := r.Check(h.name, h.addrs)
			if (err == nil) != h.ok || (h.err != nil && !errors.Is(err, h.err)) {
				t.Errorf("rules %q: Check(%s, %v) = %v, want %v", tc.rules, h.name, h.addrs, err, h.err)
			}
		}
	}
}

func TestBoundAndString(t *testing.T) {
	r, err := Parse("*.corp.test", "10.0.0.0/8", "kms1.corp.test=192.0.2.5", "kms1.corp.test=192.0.2.5,::ffff:192.0.2.6")
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Bound("KMS1.Corp.Test"); len(b) != 2 || b[1] != netip.MustParseAddr("192.0.2.6") {
		t.Errorf("Bound = %v", b)
	}
	if b := r.Bound("kms2.corp.test."); b != nil {
		t.Errorf("unbound name has addresses %v", b)
	}
	if n := r.BoundNames(); len(n) != 1 || n[0] != "kms1.corp.test." {
		t.Errorf("BoundNames = %q", n)
	}
	if got, want := r.String(), "*.corp.test. 10.0.0.0/8 kms1.corp.test.=192.0.2.5,192.0.2.6"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !r.HasNames() || !r.HasNetworks() || r.Empty() || !(&Rules{}).Empty() {
		t.Error("HasNames/HasNetworks/Empty wrong")
	}
}
