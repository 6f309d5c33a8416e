//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// dirSnapshot describes every entry of dir: name, inode, size,
// modification time and owner, to tell whether anything touched it.
func dirSnapshot(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range es {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		lines = append(lines, fmt.Sprintf("%s ino=%d size=%d mtime=%d uid=%d", e.Name(), st.Ino, fi.Size(), fi.ModTime().UnixNano(), st.Uid))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// asUID starts bin as uid (no supplementary groups), as a process the
// test stops at the end.
func asUID(t *testing.T, dir string, uid int, args ...string) *harness.Process {
	t.Helper()
	id := strconv.Itoa(uid)
	return harness.Start(t, dir, harness.Tool(t, "setpriv"), append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", "--"}, args...)...)
}

// startOrExit waits until p logs that it serves (true) or exits (false).
func startOrExit(t *testing.T, p *harness.Process) bool {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(p.Output(), "kms-responder serving") {
			return true
		}
		if p.Exited() {
			return false
		}
	}
	t.Fatalf("serve neither started nor exited:\n%s", p.Output())
	return false
}

// TestProcessDataDirLinkFlip is the attack on a data directory reached
// through a symbolic link: a throw-away user owns the link, in a sticky
// world-writable directory (as /tmp), and flips it (atomic renames, as
// fast as it can) between root's data directory and its own, which holds a
// ledger it made itself, while root's serve starts again and again with
// fs.protected_symlinks=0. serve must never run on the attacker's files
// (its directory stays byte for byte as it was) nor mix the two, and each
// start that does not serve says why.
func TestProcessDataDirLinkFlip(t *testing.T) {
	bin := harness.ProcessBinary(t, "kms-responder")
	attacker, uid := throwawayUser(t)
	const knob = "/proc/sys/fs/protected_symlinks"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skipf("cannot read %s: %v", knob, err)
	}
	if err := os.WriteFile(knob, []byte("0\n"), 0o644); err != nil {
		t.Skipf("cannot set %s: %v", knob, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(knob, old, 0o644); err != nil {
			t.Errorf("restore %s: %v", knob, err)
		}
	})
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} { // the attacker must get in
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shared := mkdirMode(t, filepath.Join(tmp, "shared"), 0o777|os.ModeSticky)
	rootData := mkdirMode(t, filepath.Join(tmp, "root-data"), 0o700)
	evil := mkdirMode(t, filepath.Join(tmp, "evil"), 0o755)
	if err := os.Chown(evil, uid, uid); err != nil {
		t.Fatal(err)
	}
	serveArgs := func(data string) []string {
		return []string{"serve", "--group", "windows-server-2025", "--listen", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), "--metrics", "", "--data", data}
	}
	// Both directories hold a real ledger: root's from a start of its own,
	// the attacker's made by serve running as the attacker.
	for _, p := range []*harness.Process{
		harness.Start(t, tmp, bin, serveArgs(rootData)...),
		asUID(t, tmp, uid, append([]string{bin}, serveArgs(evil)...)...),
	} {
		if !startOrExit(t, p) {
			t.Fatalf("setting up a ledger: serve exited:\n%s", p.Output())
		}
		p.Stop()
	}
	rootBefore, evilBefore := dirSnapshot(t, rootData), dirSnapshot(t, evil)

	link := filepath.Join(shared, "data")
	asUser(t, attacker, "ln", "-s", rootData, link)
	flip := fmt.Sprintf(`while :; do ln -sfn %[1]s %[3]s.a; mv -T %[3]s.a %[3]s; ln -sfn %[2]s %[3]s.b; mv -T %[3]s.b %[3]s; done`, rootData, evil, link)
	asUID(t, tmp, uid, "sh", "-c", flip)

	const starts = 40
	var served, refused int
	for i := range starts {
		p := harness.Start(t, tmp, bin, serveArgs(link)...)
		if startOrExit(t, p) {
			served++
		} else {
			refused++
			if out := p.Output(); !strings.Contains(out, "the symbolic link "+link+" is owned by "+attacker) {
				t.Errorf("start %d refused without naming the attacker's link:\n%s", i, out)
			}
		}
		p.Stop()
		if got := dirSnapshot(t, evil); got != evilBefore {
			t.Fatalf("start %d: serve (root) touched the attacker's directory:\nbefore:\n%s\nafter:\n%s\n%s", i, evilBefore, got, p.Output())
		}
	}
	t.Logf("%d starts through the flipping link: %d served, %d refused", starts, served, refused)
	if served > 0 {
		t.Errorf("serve ran %d times through a link another user owns and flips", served)
	}
	if got := dirSnapshot(t, rootData); got != rootBefore {
		t.Errorf("root's data directory changed although no start served from it:\nbefore:\n%s\nafter:\n%s", rootBefore, got)
	}
}
