package audit

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseCorefile(t *testing.T) {
	const cf = `# AD front
corp.test:53 branch.corp.test:53 {
	vlmcs {
		approve kms1.corp.test *.kms.corp.test
		approve 10.1.0.0/24
		scrub corp.test branch.corp.test
		probe 1s 1s
	}
	forward . 10.1.0.10
}
example.test {
	vlmcs example.test {
		approve kms2.example.test=10.2.0.5
	}
}
other.test {
	whoami
}
`
	blocks, err := ParseCorefile("Corefile", []byte(cf))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want 2", len(blocks))
	}
	b := blocks[0]
	if b.Where != "Corefile:3" || strings.Join(b.Zones, " ") != "corp.test. branch.corp.test." ||
		strings.Join(b.Approve, " ") != "kms1.corp.test *.kms.corp.test 10.1.0.0/24" || strings.Join(b.Scrub, " ") != "corp.test. branch.corp.test." {
		t.Errorf("block 0: %+v", b)
	}
	if got := strings.Join(blocks[1].Zones, " "); got != "example.test." {
		t.Errorf("block 1 zones %q", got)
	}
	if bl, ok := BlockFor(blocks, "child.branch.corp.test"); !ok || bl.Where != "Corefile:3" {
		t.Errorf("BlockFor child.branch.corp.test: %+v %v", bl, ok)
	}
	if _, ok := BlockFor(blocks, "nowhere.test"); ok {
		t.Error("BlockFor found a block for nowhere.test")
	}
	for _, bad := range []string{
		"corp.test {\n vlmcs {\n approve\n }\n}\n", // approve without arguments
		"corp.test {\n vlmcs {\n approve x\n",      // unclosed block
		"corp.test {\n whoami\n}\n",                // no vlmcs block
	} {
		if _, err := ParseCorefile("Corefile", []byte(bad)); err == nil {
			t.Errorf("ParseCorefile(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "Corefile") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

// TestRules checks that the audit judges hosts with the plugin's rules
// (plugin/pkg/approval; its own tests cover the rule language).
func TestRules(t *testing.T) {
	r, err := ParseRules([]string{"kms1.corp.test", "*.kms.corp.test", "kms9.corp.test=10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	cases := []struct {
		name  string
		addrs []netip.Addr
		want  bool
	}{
		{"KMS1.Corp.Test.", nil, true},
		{"a.kms.corp.test", []netip.Addr{a("192.0.2.1")}, true},
		{"kms.corp.test", nil, false},
		{`evil\.kms.corp.test.`, nil, false}, // one label with a dot is not below kms.corp.test
		{"kms9.corp.test", []netip.Addr{a("10.0.0.9")}, true},
		{"kms9.corp.test", []netip.Addr{a("10.0.0.8")}, false},
		{"pc42.corp.test", nil, false},
	}
	for _, c := range cases {
		if got := r.Host(c.name, c.addrs); got != c.want {
			t.Errorf("Host(%q, %v) = %v, want %v", c.name, c.addrs, got, c.want)
		}
	}
	for _, bad := range [][]string{{}, {"1.2.3.4/33"}, {"x=notanaddress"}} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%q) accepted", bad)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	rc, err := ParseResolvConf([]byte("# generated\nnameserver 10.0.0.10\nnameserver ::1\ndomain old.test\nsearch corp.test Branch.Corp.Test\noptions ndots:2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Nameservers) != 2 || rc.Nameservers[1] != netip.MustParseAddr("::1") || strings.Join(rc.Search, " ") != "corp.test. branch.corp.test." {
		t.Errorf("parsed %+v", rc)
	}
	for _, bad := range []string{"nameserver\n", "nameserver host.test\n", "search\n", "domain a b\n", "search a..b\n",
		"search " + strings.Repeat("d.test ", 33) + "\n", strings.Repeat("#", maxResolvConf+1)} {
		if _, err := ParseResolvConf([]byte(bad)); err == nil {
			t.Errorf("ParseResolvConf(%.40q) accepted", bad)
		}
	}
}

func TestMeasureSkew(t *testing.T) {
	const hour = 3600e9
	for _, c := range []struct{ skew, limit float64 }{{6 * hour, 4 * hour}, {-30 * hour, 4 * hour}, {5 * hour, 4 * hour}, {-130 * hour, 4 * hour}, {26 * hour, 12 * hour}} {
		n := 0
		skew, limit, ok := measureSkew(func(o time.Duration) bool {
			n++
			d := float64(o) - c.skew
			return d >= -c.limit && d <= c.limit
		})
		if !ok || abs(float64(skew)-c.skew) > 60e9 || abs(float64(limit)-c.limit) > 60e9 || n > maxSkewProbes {
			t.Errorf("skew %v limit %v: measured %v %v ok=%v after %d requests", c.skew, c.limit, skew, limit, ok, n)
		}
	}
	if _, _, ok := measureSkew(func(time.Duration) bool { return false }); ok {
		t.Error("measureSkew succeeded against a host that refuses every time")
	}
	// Beyond the search range: not measured, and the requests stay bounded.
	n := 0
	if _, _, ok := measureSkew(func(o time.Duration) bool { n++; d := float64(o) - 400*hour; return d >= -4*hour && d <= 4*hour }); ok || n > maxSkewProbes {
		t.Errorf("a 400 h skew: ok=%v after %d requests", ok, n)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
