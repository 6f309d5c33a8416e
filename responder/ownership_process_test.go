package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// throwawayUser creates a system user for this test and removes it at the
// end; it skips (with the reason) unless the test runs as root with
// useradd and runuser.
func throwawayUser(t *testing.T) (name string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a throw-away user and acts as it with runuser")
	}
	for _, tool := range []string{"useradd", "userdel", "runuser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (passwd / util-linux): %v", tool, err)
		}
	}
	name = "kmsdns-t" + strconv.Itoa(os.Getpid()%100000) + strconv.Itoa(int(time.Now().UnixNano()%1000))
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Skipf("useradd %s: %v %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	uid, err = strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return name, uid
}

// asUser runs a command as user with runuser and fails the test if it fails.
func asUser(t *testing.T, user string, args ...string) {
	t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", user, "--"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runuser -u %s -- %v: %v %s", user, args, err, out)
	}
}

// TestProcessDataDirSymlinkAttack is the attack: with a
// world-writable data directory, another (unprivileged) user plants
// symlinks named like the ledger's files pointing at a root-owned file;
// serve, as root, must refuse the directory with a message saying what to
// run, and the target must stay untouched. A data directory or config
// file owned by that user is refused too.
func TestProcessDataDirSymlinkAttack(t *testing.T) {
	attacker, uid := throwawayUser(t)
	tmp := t.TempDir() // and its parent: 0700, the other user must get in
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := mkdirMode(t, filepath.Join(tmp, "srv"), 0o755)
	victim := filepath.Join(base, "victim")
	const precious = "root's precious file\n"
	if err := os.WriteFile(victim, []byte(precious), 0o644); err != nil {
		t.Fatal(err)
	}
	data := mkdirMode(t, filepath.Join(base, "data"), 0o777)
	for _, name := range []string{"ledger.db", "wal-0000000000000000.log", "wal-0000000000000001.log"} {
		asUser(t, attacker, "ln", "-s", victim, filepath.Join(data, name))
	}
	fi, err := os.Lstat(filepath.Join(data, "ledger.db"))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the attacker's symlink is not there: %v %v", fi, err)
	}
	port := strconv.Itoa(harness.FreePort(t))
	serve := func(args ...string) (string, int) {
		_, stderr, code := runCLI(t, append([]string{"serve", "--group", "windows-server-2025", "--listen", "127.0.0.1:" + port, "--metrics", ""}, args...)...)
		return stderr, code
	}
	stderr, code := serve("--data", data)
	if code == exitOK || !strings.Contains(stderr, "is writable by group or others (mode 0777)") || !strings.Contains(stderr, "run `chmod go-w "+data+"`") {
		t.Errorf("world-writable data directory: exit %d, want a refusal saying to chmod go-w:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "kms-responder serving") {
		t.Error("serve started on a world-writable data directory")
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != precious {
		t.Fatalf("the symlink's target was changed: %q %v", b, err)
	}

	// A data directory the other user owns (mode 0700) is refused as well.
	owned := mkdirMode(t, filepath.Join(base, "owned"), 0o700)
	if err := os.Chown(owned, uid, uid); err != nil {
		t.Fatal(err)
	}
	stderr, code = serve("--data", owned)
	if code == exitOK || !strings.Contains(stderr, "is owned by "+attacker) || !strings.Contains(stderr, "run `chown -R root") {
		t.Errorf("data directory owned by %s: exit %d:\n%s", attacker, code, stderr)
	}

	// So is a config file that user owns or may write.
	cfg := filepath.Join(base, "config.yaml")
	if err := os.WriteFile(cfg, []byte("groups: [windows-server-2025]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cfg, uid, uid); err != nil {
		t.Fatal(err)
	}
	stderr, code = serve("--config", cfg, "--data", filepath.Join(base, "fresh"))
	if code != exitUsage || !strings.Contains(stderr, "config file "+cfg+" is owned by "+attacker) {
		t.Errorf("config owned by %s: exit %d:\n%s", attacker, code, stderr)
	}
	if err := os.Chown(cfg, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg, 0o666); err != nil {
		t.Fatal(err)
	}
	stderr, code = serve("--config", cfg, "--data", filepath.Join(base, "fresh"))
	if code != exitUsage || !strings.Contains(stderr, "is writable by group or others (mode 0666); run `chmod go-w "+cfg+"`") {
		t.Errorf("world-writable config: exit %d:\n%s", code, stderr)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != precious {
		t.Fatalf("the symlink's target was changed: %q %v", b, err)
	}
}
