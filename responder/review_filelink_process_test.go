package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestReviewPolicyAndSecretFilesThroughOthersLink: the data directory is
// never reached through a symbolic link another user owns (that user can
// point it elsewhere between two starts or during one), but the policy
// and secret files are: a throw-away user's link in a sticky shared
// directory (as /tmp) to root's own 0600 config passes `check-files
// --policy/--secret` and `serve --config`, so that user chooses, at every
// start, which root- or service-owned file becomes the config, the
// catalog overlay, the TSIG key or the admin token (with
// fs.protected_symlinks=0, as on this machine and some containers).
// Expected safe behaviour: the same rule as the data directory, a link on
// the way to a policy or secret file is followed only when root or the
// running user owns it; otherwise refuse naming the link and its owner.
func TestReviewPolicyAndSecretFilesThroughOthersLink(t *testing.T) {
	bin := harness.ProcessBinary(t, "kms-responder")
	attacker, _ := throwawayUser(t)
	const knob = "/proc/sys/fs/protected_symlinks"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skipf("cannot read %s: %v", knob, err)
	}
	if err := os.WriteFile(knob, []byte("0\n"), 0o644); err != nil {
		t.Skipf("cannot set %s: %v", knob, err)
	}
	t.Cleanup(func() { _ = os.WriteFile(knob, old, 0o644) })
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shared := mkdirMode(t, filepath.Join(tmp, "shared"), 0o777|os.ModeSticky)
	etc := mkdirMode(t, filepath.Join(tmp, "etc"), 0o700)
	cfg := filepath.Join(etc, "config.yaml")
	if err := os.WriteFile(cfg, []byte("groups: [windows-server-2025]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(shared, "config.yaml")
	asUser(t, attacker, "ln", "-s", cfg, link)

	for _, kind := range []string{"--policy", "--secret"} {
		if out, errOut, code := runCLI(t, "check-files", kind, link); code == exitOK {
			t.Errorf("check-files %s through %s's link: exit 0, want a refusal naming the link\n%s%s", kind, attacker, out, errOut)
		}
	}
	data := mkdirMode(t, filepath.Join(tmp, "data"), 0o700)
	p := harness.Start(t, tmp, bin, "serve", "--config", link, "--data", data, "--metrics", "",
		"--listen", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)))
	if startOrExit(t, p) {
		t.Errorf("serve ran with --config through a link %s owns and can repoint", attacker)
	}
	p.Stop()
}
