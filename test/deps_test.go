package test

import (
	"os/exec"
	"strings"
	"testing"
)

// depRules are the import rules of the module, written down in README.md
// ("Packages and who may import whom"). Each rule: no package matching from
// may depend, directly or through others, on a package matching forbidden.
// A pattern ending in "/..." matches that directory and everything below it.
var depRules = []struct {
	from, forbidden, why string
}{
	{"plugin/...", "responder/...", "the plugin and the code both sides share build without responder code"},
	{"plugin/pkg/...", "plugin", "shared helpers do not depend on the vlmcs plugin itself"},
	{"test/testkit", "responder/...", "test fixtures shared by both sides use only shared code"},
	{"responder/...", "plugin", "the responder uses shared code, never the CoreDNS plugin"},
	{"responder/...", "github.com/coredns/coredns/...", "the responder does not link CoreDNS"},
	{"responder/statusapi", "responder/...", "the admin wire schema and its client are shared by server and commands and import no responder code"},
	{"responder/admin", "responder/ledger", "the admin HTTP server knows nothing of the ledger: serve hands it routes"},
	{"responder/admin", "responder/host", "the admin HTTP server knows nothing of the host policy"},
	{"responder/admin", "responder/catalog", "the admin HTTP server knows nothing of the catalog"},
	{"responder/admin", "responder/inventory", "the admin HTTP server takes the inventory's handlers as routes"},
	{"responder/admin", "responder/serve", "serve uses the admin server, not the other way round"},
	{"responder/inventory", "responder/admin", "the inventory is a handler, independent of the server it is mounted on"},
	{"responder/inventory", "responder/serve", "the inventory does not depend on serve's wiring"},
}

const module = "github.com/kmsdns/kmsdns"

func matchPkg(pattern, pkg string) bool {
	if !strings.HasPrefix(pattern, "github.com/") {
		pattern = module + "/" + pattern
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// TestDependencyRules lists every package's transitive dependencies with
// `go list -deps` and fails on any edge a rule forbids, naming the chain's
// two ends and the rule's reason.
func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		for _, r := range depRules {
			if !matchPkg(r.from, pkg) {
				continue
			}
			checked++
			for _, d := range deps {
				if matchPkg(r.forbidden, d) {
					t.Errorf("%s depends on %s: forbidden (%s)", pkg, d, r.why)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("the rules matched only %d packages: has the layout moved? update depRules", checked)
	}
}

// TestDependencyRuleMatcher pins the pattern matching the rules rely on.
func TestDependencyRuleMatcher(t *testing.T) {
	tests := []struct {
		pattern, pkg string
		want         bool
	}{
		{"plugin/...", module + "/plugin", true},
		{"plugin/...", module + "/plugin/pkg/dcerpc", true},
		{"plugin/...", module + "/pluginx", false},
		{"plugin", module + "/plugin/pkg/dnsname", false},
		{"plugin", module + "/plugin", true},
		{"github.com/coredns/coredns/...", "github.com/coredns/coredns/plugin", true},
	}
	for _, tt := range tests {
		if got := matchPkg(tt.pattern, tt.pkg); got != tt.want {
			t.Errorf("matchPkg(%q, %q) = %v, want %v", tt.pattern, tt.pkg, got, tt.want)
		}
	}
}
