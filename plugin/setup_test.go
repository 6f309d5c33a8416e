package vlmcs

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		input string
		err   string // substring of the error; "" = must parse
		check func(*testing.T, *config)
	}{
		{"minimal", "vlmcs example.org {\n approve kms1.example.org\n}", "", func(t *testing.T, c *config) {
			if len(c.publish) != 1 || c.publish[0] != "example.org." {
				t.Errorf("publish = %v", c.publish)
			}
			if c.ttl != defaultTTL || c.leaseDefault != defaultLease || !c.probe.enabled {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{"full", `vlmcs example.org ad.example.org {
	approve kms1.example.org *.kms.example.org 192.0.2.0/24 2001:db8::1
	static kms1.example.org 1688 10 20 192.0.2.10
	static kms1.example.org 1689
	key kms1-key. c2VjcmV0c2VjcmV0
	grant kms1-key. kms1.example.org *.kms.example.org
	any_address kms1-key.
	lease 1h 30s 2h
	probe 1s 250ms 3 2
	ttl 5
	all_down none
	scrub ad.example.org
	scrub_unhealthy
	unsigned 10.0.0.0/8 192.0.2.7
	unsigned_udp
}`, "", func(t *testing.T, c *config) {
			if len(c.publish) != 1 || c.publish[0] != "example.org." || len(c.scrub) != 1 || c.scrub[0] != "ad.example.org." {
				t.Errorf("publish %v scrub %v", c.publish, c.scrub)
			}
			if len(c.static) != 2 || c.static[0].priority != 10 || c.static[0].weight != 20 || c.static[1].port != 1689 {
				t.Errorf("static = %+v", c.static)
			}
			if c.leaseDefault != time.Hour || c.leaseMin != 30*time.Second || c.leaseMax != 2*time.Hour {
				t.Errorf("lease = %v %v %v", c.leaseDefault, c.leaseMin, c.leaseMax)
			}
			if c.probe.interval != time.Second || c.probe.timeout != 250*time.Millisecond || c.probe.fails != 3 || c.probe.passes != 2 {
				t.Errorf("probe = %+v", c.probe)
			}
			if c.ttl != 5 || c.allDown != allDownNone || !c.scrubUnhealthy || !c.unsignedUDP || len(c.unsigned) != 2 {
				t.Errorf("config = %+v", c)
			}
			if !c.granted("kms1-key.", "a.kms.example.org.") || c.granted("kms1-key.", "kms2.example.org.") || !c.anyAddress["kms1-key."] {
				t.Errorf("grants = %v", c.grants)
			}
			if !c.approve.Host("x.kms.example.org.", []netip.Addr{netip.MustParseAddr("192.0.2.99")}) {
				t.Error("approval too strict")
			}
		}},
		{"probe off", "vlmcs example.org {\n approve 192.0.2.0/24\n probe off\n}", "", func(t *testing.T, c *config) {
			if c.probe.enabled {
				t.Error("probe still enabled")
			}
		}},
		{"no block", "vlmcs example.org", "Testfile:1 - Error during parsing: no `approve` rule", nil},
		{"no zones", "vlmcs {\n approve kms1.example.org\n}", "Testfile:3 - Error during parsing: no zones", nil},
		{"unknown property", "vlmcs example.org {\n approve kms1.example.org\n frobnicate\n}", "Testfile:3 - Error during parsing: unknown property \"frobnicate\"", nil},
		{"bad approve", "vlmcs example.org {\n approve 192.0.2.0/33\n}", "Testfile:2", nil},
		{"approve no args", "vlmcs example.org {\n approve\n}", "Testfile:2 - Error during parsing: Wrong argument count", nil},
		{"static unapproved", "vlmcs example.org {\n approve kms1.example.org\n static kms2.example.org\n}", "static member kms2.example.org. is not approved", nil},
		{"static port 0", "vlmcs example.org {\n approve kms1.example.org\n static kms1.example.org 0\n}", "Testfile:3 - Error during parsing: static kms1.example.org.: port 0", nil},
		{"static junk", "vlmcs example.org {\n approve kms1.example.org\n static kms1.example.org 1688 x\n}", "Testfile:3 - Error during parsing: static kms1.example.org.: \"x\" is neither", nil},
		{"static twice", "vlmcs example.org {\n approve kms1.example.org\n static kms1.example.org\n static kms1.example.org 1688\n}", "Testfile:4 - Error during parsing: static kms1.example.org. port 1688 given twice", nil},
		{"key not base64", "vlmcs example.org {\n approve kms1.example.org\n key k. !!!\n}", "Testfile:3 - Error during parsing: key k.: secret is not base64", nil},
		{"key with an unknown algorithm", "vlmcs example.org {\n approve kms1.example.org\n key k. c2VjcmV0 hmac-md5\n}", "Testfile:3 - Error during parsing: key k.: TSIG algorithm hmac-md5 is not supported", nil},
		{"key with too many arguments", "vlmcs example.org {\n approve kms1.example.org\n key k. c2VjcmV0 hmac-sha256 x\n}", "Testfile:3 - Error during parsing: Wrong argument count", nil},
		{"key twice", "vlmcs example.org {\n approve kms1.example.org\n key k. c2VjcmV0\n key k. c2VjcmV0\n}", "Testfile:4 - Error during parsing: key \"k.\" already defined at Testfile:3", nil},
		{"grant short", "vlmcs example.org {\n approve kms1.example.org\n grant k.\n}", "Testfile:3 - Error during parsing: Wrong argument count", nil},
		{"grant bad name", "vlmcs example.org {\n approve kms1.example.org\n grant k. a..b\n}", "Testfile:3 - Error during parsing: grant k.:", nil},
		{"any_address without grant", "vlmcs example.org {\n approve kms1.example.org\n any_address k.\n}", "any_address: key \"k.\" has no grant", nil},
		{"lease min above max", "vlmcs example.org {\n approve kms1.example.org\n lease 1h 2h 1h\n}", "Testfile:3 - Error during parsing: lease: minimum", nil},
		{"lease default outside", "vlmcs example.org {\n approve kms1.example.org\n lease 10s 1m 1h\n}", "Testfile:3 - Error during parsing: lease: default", nil},
		{"lease bad", "vlmcs example.org {\n approve kms1.example.org\n lease soon\n}", "Testfile:3 - Error during parsing: lease: \"soon\" is not a duration", nil},
		{"lease twice", "vlmcs example.org {\n approve kms1.example.org\n lease 1h\n lease 2h\n}", "Testfile:4 - Error during parsing: \"lease\" given more than once", nil},
		{"probe bad interval", "vlmcs example.org {\n approve kms1.example.org\n probe 1ms 1ms\n}", "Testfile:3 - Error during parsing: probe: interval", nil},
		{"probe bad count", "vlmcs example.org {\n approve kms1.example.org\n probe 1s 1s 0\n}", "Testfile:3 - Error during parsing: probe: \"0\" is not a count", nil},
		{"probe args", "vlmcs example.org {\n approve kms1.example.org\n probe 1s\n}", "Testfile:3 - Error during parsing: Wrong argument count", nil},
		{"ttl bad", "vlmcs example.org {\n approve kms1.example.org\n ttl 99999\n}", "Testfile:3 - Error during parsing: ttl:", nil},
		{"all_down bad", "vlmcs example.org {\n approve kms1.example.org\n all_down maybe\n}", "Testfile:3 - Error during parsing: all_down:", nil},
		{"scrub foreign zone", "vlmcs example.org {\n approve kms1.example.org\n scrub example.net\n}", "scrub zone \"example.net.\" is not one of this block's zones", nil},
		{"unsigned bad", "vlmcs example.org {\n approve kms1.example.org\n unsigned everyone\n}", "Testfile:3 - Error during parsing: unsigned:", nil},
		{"flag with args", "vlmcs example.org {\n approve kms1.example.org\n scrub_unhealthy yes\n}", "Testfile:3 - Error during parsing: Wrong argument count", nil},
		{"bad zone", "vlmcs exa..mple.org {\n approve kms1.example.org\n}", "Testfile:1 - Error during parsing: invalid zone", nil},
		{"non-ASCII zone", "vlmcs b\xc3\xbccher.example {\n approve kms1.example.org\n}", "Testfile:1 - Error during parsing: invalid zone", nil},
		{"non-ASCII host", "vlmcs example.org {\n approve kms\xff.example.org\n}", "Testfile:2 - Error during parsing: approve", nil},
		{"non-ASCII key name", "vlmcs example.org {\n approve kms1.example.org\n key k\xc3\xa9y c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n}", "Testfile:3 - Error during parsing: key: invalid key name", nil},
		{"non-ASCII scrub zone", "vlmcs example.org {\n approve kms1.example.org\n scrub \xe9xample.org\n}", "Testfile:3 - Error during parsing: scrub: invalid zone", nil},
		{"probe limits", "vlmcs example.org {\n approve kms1.example.org\n ports 1688 2000-2010 1688\n probe_rate 50\n member_limit 8 2\n}", "", func(t *testing.T, c *config) {
			if !c.portAllowed(1688) || !c.portAllowed(2000) || !c.portAllowed(2010) || c.portAllowed(2011) || c.portAllowed(1689) {
				t.Errorf("ports = %v", c.ports)
			}
			if c.probe.rate != 50 || c.membersPerKey != 8 || c.membersPerSender != 2 {
				t.Errorf("probe_rate %d member_limit %d %d", c.probe.rate, c.membersPerKey, c.membersPerSender)
			}
		}},
		{"probe limit defaults", "vlmcs example.org {\n approve kms1.example.org\n}", "", func(t *testing.T, c *config) {
			if !c.portAllowed(1688) || c.portAllowed(1689) || c.probe.rate != defaultProbeRate ||
				c.membersPerKey != defaultMembersPerKey || c.membersPerSender != defaultMembersPerSender {
				t.Errorf("defaults: ports %v rate %d limits %d %d", c.ports, c.probe.rate, c.membersPerKey, c.membersPerSender)
			}
		}},
		{"ports bad", "vlmcs example.org {\n approve kms1.example.org\n ports 0\n}", "Testfile:3 - Error during parsing: ports: \"0\" is not a port", nil},
		{"ports reversed", "vlmcs example.org {\n approve kms1.example.org\n ports 2000-1000\n}", "Testfile:3 - Error during parsing: ports: \"2000-1000\"", nil},
		{"ports too big", "vlmcs example.org {\n approve kms1.example.org\n ports 65536\n}", "Testfile:3 - Error during parsing: ports:", nil},
		{"ports none", "vlmcs example.org {\n approve kms1.example.org\n ports\n}", "Testfile:3 - Error during parsing: Wrong argument count", nil},
		{"probe_rate bad", "vlmcs example.org {\n approve kms1.example.org\n probe_rate 0\n}", "Testfile:3 - Error during parsing: probe_rate: \"0\"", nil},
		{"member_limit bad", "vlmcs example.org {\n approve kms1.example.org\n member_limit many\n}", "Testfile:3 - Error during parsing: member_limit: \"many\"", nil},
		{"member_limit above pool", "vlmcs example.org {\n approve kms1.example.org\n member_limit 1 5000\n}", "Testfile:3 - Error during parsing: member_limit: \"5000\"", nil},
		{"member_limit args", "vlmcs example.org {\n approve kms1.example.org\n member_limit 1 2 3\n}", "Testfile:3 - Error during parsing: Wrong argument count", nil},
		{"member_limit twice", "vlmcs example.org {\n approve kms1.example.org\n member_limit 1\n member_limit 2\n}", "Testfile:4 - Error during parsing: \"member_limit\" given more than once", nil},
		{"approve binding", "vlmcs example.org {\n approve *.example.org 10.0.0.0/8 kms1.example.org=192.0.2.5,2001:db8::5\n static kms1.example.org\n}", "", func(t *testing.T, c *config) {
			if b := c.approve.Bound("KMS1.example.org."); len(b) != 2 {
				t.Errorf("bound = %v", b)
			}
			if c.approve.Host("kms1.example.org.", []netip.Addr{netip.MustParseAddr("10.0.0.5")}) {
				t.Error("a bound name approved at another address")
			}
		}},
		{"static outside binding", "vlmcs example.org {\n approve kms1.example.org=192.0.2.5\n static kms1.example.org 1688 192.0.2.6\n}", "Testfile:3 - Error during parsing: static member kms1.example.org. is not approved: address not approved: 192.0.2.6 is not an address bound to", nil},
		{"binding to a network", "vlmcs example.org {\n approve kms1.example.org=192.0.2.0/24\n}", "Testfile:2 - Error during parsing: approve: \"kms1.example.org=192.0.2.0/24\": \"192.0.2.0/24\" is not an address", nil},
		{"binding a wildcard", "vlmcs example.org {\n approve *.example.org=192.0.2.5\n}", "Testfile:2 - Error during parsing: approve: \"*.example.org=192.0.2.5\": only a single host name", nil},
		{"escaped approve", "vlmcs example.org {\n approve evil\\.kms.example.org\n}", "Testfile:2 - Error during parsing: approve: ", nil},
		{"grant odd label", "vlmcs example.org {\n approve kms1.example.org\n grant k. *.k_m+s.example.org\n}", "Testfile:3 - Error during parsing: grant k.: \"k_m+s.example.org\" is not a host name", nil},
		{"static odd label", "vlmcs example.org {\n approve *.example.org\n static a+b.example.org\n}", "Testfile:3 - Error during parsing: static: \"a+b.example.org\" is not a host name", nil},
		{"twice", "vlmcs example.org {\n approve kms1.example.org\n}\nvlmcs example.org {\n approve kms1.example.org\n}", "plugin", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", tc.input)
			cfg, err := parse(c)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.check != nil {
					tc.check(t, cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("parsed; want error containing %q", tc.err)
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %q does not contain %q", err, tc.err)
			}
		})
	}
}

// TestParseKeyfile: `keyfile` reads BIND key clauses through plugin/pkg/tsigkey
// (whose tests cover the format); here, that keys reach the config with the
// Corefile line, and that every refusal is a Corefile error at that line.
func TestParseKeyfile(t *testing.T) {
	const secret1, secret2 = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), mode)
		os.Chmod(p, mode)
		return p
	}
	good := write("good.key", "key \"kms1-key\" {\n\talgorithm hmac-sha256;\n\tsecret \""+secret1+"\";\n};\n# comment\nkey kms2-key. { algorithm hmac-sha512; secret \""+secret2+"\"; };\n", 0o600)
	c := caddy.NewTestController("dns", "vlmcs example.org {\n approve kms1.example.org\n keyfile "+good+"\n grant kms1-key kms1.example.org\n}")
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.keys["kms1-key."].secret != secret1 || cfg.keys["kms2-key."].secret != secret2 {
		t.Errorf("keys = %v", cfg.keys)
	}
	if cfg.keys["kms1-key."].algorithm != dns.HmacSHA256 || cfg.keys["kms2-key."].algorithm != dns.HmacSHA512 {
		t.Errorf("algorithms not taken from the key file: %v", cfg.keys)
	}
	if cfg.keys["kms1-key."].where != "Testfile:3" {
		t.Errorf("where = %q", cfg.keys["kms1-key."].where)
	}
	for _, tc := range []struct{ path, err string }{
		{write("md5.key", "key k { algorithm hmac-md5; secret \""+secret1+"\"; };\n", 0o600), "hmac-md5 is not supported"},
		{write("open.key", "key k { algorithm hmac-sha256; secret \""+secret1+"\"; };\n", 0o640), "permissions 0640 are too open"},
		{write("leak.key", "key k { algorithm hmac-sha256; secret; \""+secret1+"\"; };\n", 0o600), "want a value after secret"},
		{filepath.Join(dir, "missing.key"), "no such file"},
	} {
		c := caddy.NewTestController("dns", "vlmcs example.org {\n approve kms1.example.org\n keyfile "+tc.path+"\n}")
		_, err := parse(c)
		if err == nil || !strings.Contains(err.Error(), "Testfile:3") || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want one at Testfile:3 containing %q", tc.path, err, tc.err)
		} else if strings.Contains(err.Error(), secret1) {
			t.Errorf("%s: error %q holds the secret", tc.path, err)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	cfg := newConfig()
	cfg.keys["a."] = keyDef{secret: "YQ==", where: "Corefile:3"}
	cfg.grantWhere["b."] = "Corefile:5"
	if err := checkKeys(cfg, map[string]string{"a.": "YQ==", "b.": "Yg=="}); err != nil {
		t.Errorf("consistent keys: %v", err)
	}
	if err := checkKeys(cfg, map[string]string{"b.": "Yg=="}); err == nil || !strings.Contains(err.Error(), "Corefile:3") {
		t.Errorf("replaced key: %v", err)
	}
	if err := checkKeys(cfg, map[string]string{"a.": "YQ=="}); err == nil || !strings.Contains(err.Error(), "Corefile:5") {
		t.Errorf("granted key without secret: %v", err)
	}
}

func TestKeyfileHint(t *testing.T) {
	perm := &fs.PathError{Op: "open", Path: "/etc/coredns-kmsdns/vlmcs.keys", Err: fs.ErrPermission}
	err := keyfileHint(perm)
	for _, want := range []string{"permission denied", "/etc/coredns-kmsdns/vlmcs.keys", "LoadCredential=", "keyfile {$CREDENTIALS_DIRECTORY}/vlmcs.keys", "0600"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("hint %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("the hint hides the permission error")
	}
	other := errors.New("no such file")
	if keyfileHint(other) != other {
		t.Error("a hint added to an error that is no permission error")
	}
}

// TestBindsOverlap: blocks on one port share a listener when a bind address is common or
// either binds every address.
func TestBindsOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want bool
	}{
		{[]string{""}, []string{"127.0.0.1"}, true},
		{[]string{"127.0.0.1"}, []string{"127.0.0.1", "127.0.0.2"}, true},
		{[]string{"127.0.0.1"}, []string{"127.0.0.2"}, false},
		{[]string{"0.0.0.0"}, []string{"127.0.0.2"}, true},
		{[]string{"::"}, []string{"::1"}, true},
		{[]string{"::1"}, []string{"127.0.0.1"}, false},
	} {
		if got := bindsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("bindsOverlap(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
