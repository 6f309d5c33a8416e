package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestProcessCatalogOverlayOwnership: the catalog overlay decides which
// products the host answers, so serve (as root) refuses one a throw-away
// user could have written: owned by that user, writable by everyone
// (0666), or in a directory that user owns. Each refusal exits 64 and
// says what to run; the same overlay, root's and 0644, is used (and
// answers the product it adds).
func TestProcessCatalogOverlayOwnership(t *testing.T) {
	harness.ProcessBinary(t, "kms-responder") // skips with -short
	attacker, uid := throwawayUser(t)
	src, err := os.ReadFile("catalog/testdata/overlay-office-ltsc-2027.tsv")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etc := mkdirMode(t, filepath.Join(tmp, "etc"), 0o755)
	theirs := mkdirMode(t, filepath.Join(tmp, "theirs"), 0o755)
	if err := os.Chown(theirs, uid, uid); err != nil {
		t.Fatal(err)
	}
	write := func(dir, name string, mode os.FileMode, owner int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, src, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, owner, owner); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serve := func(overlay string) (string, int) {
		_, stderr, code := runCLI(t, "serve", "--group", "office-ltsc-2027", "--catalog-file", overlay,
			"--listen", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)), "--metrics", "", "--data", filepath.Join(t.TempDir(), "data"))
		return stderr, code
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"owned by another user", write(etc, "owned.tsv", 0o644, uid), "catalog overlay " + filepath.Join(etc, "owned.tsv") + " is owned by " + attacker + " (uid " + strconv.Itoa(uid) + "), not by root (uid 0): that user decides what it says; run `chown root " + filepath.Join(etc, "owned.tsv") + "`"},
		{"mode 0666", write(etc, "open.tsv", 0o666, 0), "catalog overlay " + filepath.Join(etc, "open.tsv") + " is writable by group or others (mode 0666); run `chmod go-w " + filepath.Join(etc, "open.tsv") + "`"},
		{"in another user's directory", write(theirs, "overlay.tsv", 0o644, 0), "the directory above it, " + theirs + ", is owned by " + attacker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, code := serve(tc.path)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, exitUsage, tc.want, stderr)
			}
		})
	}
	// The same overlay as a policy file should be: used.
	good := write(etc, "good.tsv", 0o644, 0)
	p := harness.StartResponder(t, t.TempDir(), "--group", "office-ltsc-2027", "--catalog-file", good)
	stdout, stderr, code := runCLI(t, "activate", "--server", p.Addr, "--catalog-file", good,
		"--product", "Office LTSC Professional Plus 2027", "--json", "--cmid", "random")
	var r activationReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("activate: %v\n%s%s", err, stdout, stderr)
	}
	if code != exitLowCount || r.HostStatus != "0x00000000 (S_OK)" {
		t.Errorf("the overlay root owns at 0644 was not applied: exit %d, host %s", code, r.HostStatus)
	}
}
