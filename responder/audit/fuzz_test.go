package audit

import (
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

// FuzzParseCorefile: any Corefile text gives blocks or an error, never a
// panic; blocks found hold canonical zones.
func FuzzParseCorefile(f *testing.F) {
	f.Add("corp.test {\n vlmcs {\n approve kms1.corp.test 10.0.0.0/8\n scrub corp.test\n }\n}\n")
	f.Add("a.test:53 b.test:53 {\n vlmcs a.test {\n approve *.a.test\n }\n}\n")
	f.Add("(snip) {\n vlmcs\n}\nx.test {\n import snip\n}\n")
	f.Add("x {\n vlmcs {\n approve {\n }\n }\n")
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "import") {
			return // imports read files: not what this target is about
		}
		blocks, err := ParseCorefile("Corefile", []byte(text))
		if err != nil {
			return
		}
		for _, b := range blocks {
			for _, z := range append(b.Zones, b.Scrub...) {
				if !strings.HasSuffix(z, ".") || z != strings.ToLower(z) {
					t.Fatalf("zone %q not canonical", z)
				}
			}
		}
	})
}

// FuzzParseResolvConf: no panic; what is returned is well formed.
func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 10.0.0.1\nsearch corp.test branch.corp.test\n")
	f.Add("domain x.test\n# c\n; c\noptions ndots:5\n")
	f.Add("nameserver fe80::1%eth0\n")
	f.Fuzz(func(t *testing.T, text string) {
		rc, err := ParseResolvConf([]byte(text))
		if err != nil {
			return
		}
		if len(rc.Search) > maxSearch {
			t.Fatalf("%d search domains", len(rc.Search))
		}
		for _, a := range rc.Nameservers {
			if !a.IsValid() {
				t.Fatal("invalid nameserver address returned")
			}
		}
	})
}

// FuzzDecodeEPID: any string decodes or errors, never panics.
func FuzzDecodeEPID(f *testing.F) {
	f.Add("03612-00206-256-521328-03-1033-17763.0000-3382026")
	f.Add("06401-04919-000-020123-03-1033-26100.0000-0012025")
	f.Add("x")
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, s string) {
		if hk, err := DecodeEPID(cat, s); err == nil && hk.OS == "" {
			t.Fatalf("decoded %q without an OS name", s)
		}
	})
}

// FuzzParseEnvFile: any environment file text gives variables or an error
// naming its line, never a panic; names are valid and values one line.
func FuzzParseEnvFile(f *testing.F) {
	f.Add("# c\nKMSDNS_DNS_PORT=53\nexport A=\"x y\"\nB='z'\nC=v # note\n")
	f.Add("=x\n")
	f.Add("A\n")
	f.Fuzz(func(t *testing.T, text string) {
		env, err := ParseEnvFile("env", []byte(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "env:") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		for k, v := range env {
			if !validEnvName(k) || strings.Contains(v, "\n") {
				t.Fatalf("variable %q=%q", k, v)
			}
		}
		_ = Substitute([]byte("{$A} {%B%} {$"+text+"}"), env)
	})
}

// FuzzParsePorts: any ports rule parses to ranges that allow only ports
// inside them, or fails.
func FuzzParsePorts(f *testing.F) {
	f.Add("1688", uint16(1688))
	f.Add("1024-65535", uint16(80))
	f.Add("0-5", uint16(3))
	f.Add("9-1", uint16(5))
	f.Fuzz(func(t *testing.T, rule string, port uint16) {
		p, err := ParsePorts(strings.Fields(rule))
		if err != nil {
			return
		}
		if p.Allows(0) {
			t.Fatalf("%q allows port 0", rule)
		}
		_ = p.Allows(port)
		_ = p.String()
	})
}
