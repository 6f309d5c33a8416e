package test

import (
	"github.com/kmsdns/kmsdns/test/harness"

	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Stamp are -ldflags values as build/version.sh sets them.
const (
	stampVersion = "v9.8.7-6-g0123456789ab"
	stampCommit  = "0123456789abcdef0123456789abcdef01234567"
	stampDate    = "2026-12-01T10:00:00Z"
)

// buildStamped builds a main package of the module with the version
// variables set like build/build.sh does, and returns the binary's path.
func buildStamped(t *testing.T, pkg, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary; skipped with -short")
	}
	p := "github.com/kmsdns/kmsdns/plugin/pkg/version"
	out := filepath.Join(t.TempDir(), name)
	ld := "-X " + p + ".version=" + stampVersion + " -X " + p + ".commit=" + stampCommit + " -X " + p + ".date=" + stampDate
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags="+ld, "-o", out, pkg)
	cmd.Dir = moduleRootOrFail(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	b, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, b)
	}
	return string(b)
}

// TestResponderVersion: `kms-responder version`, `--version` and
// `version --json` print the version the build stamped.
func TestResponderVersion(t *testing.T) {
	bin := buildStamped(t, "./responder", "kms-responder")
	want := "kms-responder " + stampVersion + " (commit 0123456789ab, " + stampDate + ", go"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		out := run(t, bin, args...)
		if !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v printed %q, want one line starting %q", args, out, want)
		}
	}
	out := run(t, bin, "version", "--json")
	for _, f := range []string{`"version": "` + stampVersion + `"`, `"commit": "` + stampCommit + `"`, `"date": "` + stampDate + `"`, `"modified": false`} {
		if !strings.Contains(out, f) {
			t.Errorf("version --json lacks %s:\n%s", f, out)
		}
	}
}

// TestCoreDNSVersion: the custom CoreDNS's -version names CoreDNS's version
// and the kmsdns build's.
func TestCoreDNSVersion(t *testing.T) {
	bin := buildStamped(t, "./build/coredns", "coredns")
	out := run(t, bin, "-version")
	want := regexp.MustCompile(`^CoreDNS-\d+\.\d+\.\d+ \(kmsdns ` + regexp.QuoteMeta(stampVersion+", commit 0123456789ab, "+stampDate) + `\)\n`)
	if !want.MatchString(out) {
		t.Errorf("-version printed %q, want it to match %s", out, want)
	}
}

func moduleRootOrFail(t *testing.T) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
