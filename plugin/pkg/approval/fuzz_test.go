package approval

import (
	"net/netip"
	"testing"
)

// FuzzRules parses any rule and judges any host with it: no panic, and Host agrees with Check.
func FuzzRules(f *testing.F) {
	for _, s := range []string{"*.kms.corp.test", "10.0.0.0/24", "kms1.corp.test=10.0.0.5,2001:db8::5", "=", "a=b=c", `x\.y`, "::ffff:1.2.3.4", "*"} {
		f.Add(s, "kms1.corp.test.", "10.0.0.5")
	}
	f.Fuzz(func(t *testing.T, rule, name, addr string) {
		r, err := Parse(rule)
		if err != nil {
			return
		}
		if r.Empty() {
			t.Fatalf("rule %q parsed to nothing", rule)
		}
		r2, err := Parse(r.String())
		if err != nil || r2.String() != r.String() {
			t.Fatalf("rule %q: canonical form %q does not parse back: %v", rule, r.String(), err)
		}
		var addrs []netip.Addr
		if ip, err := netip.ParseAddr(addr); err == nil {
			addrs = append(addrs, ip)
		}
		if r.Host(name, addrs) != (r.Check(name, addrs) == nil) {
			t.Fatalf("rule %q: Host and Check disagree on %q %v", rule, name, addrs)
		}
	})
}
