package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
	"github.com/kmsdns/kmsdns/test/harness"
)

// damageSetup runs serve, answers ten Windows clients (each its own log
// batch) and kills it with SIGKILL before the applier has folded the log
// into the store, so that ledger.db lacks what the log holds. It returns
// the data directory, the log segment and the offsets of its ten frames.
func damageSetup(t *testing.T) (data, seg string, frames []int) {
	t.Helper()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	for attempt := 0; attempt < 4; attempt++ {
		data = t.TempDir()
		p := harness.StartResponder(t, data, "--group", "windows-server-2025")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for i := range 10 {
			a, err := activateGo(ctx, p.Addr, win, kmsclient.RandomCMID(), true, 1)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			wantAnswer(t, "setup", a, uint32(i+1))
		}
		cancel()
		p.Stop(syscall.SIGKILL)
		rep := checkReport(t, data)
		if rep.Applied != 0 {
			continue // the applier ran first (a loaded machine): again
		}
		segs, _ := filepath.Glob(filepath.Join(data, "wal-*.log"))
		if len(segs) != 1 {
			t.Fatalf("segments %v", segs)
		}
		b, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+16 <= len(b) && len(frames) < 10; {
			n := int(binary.BigEndian.Uint32(b[off:]))
			if n == 0 {
				break
			}
			if binary.BigEndian.Uint64(b[off+8:]) != 0 { // sequence 0: a slot of the synced mark
				frames = append(frames, off)
			}
			off += 16 + n
		}
		if len(frames) != 10 {
			t.Fatalf("found %d frames in the log, want 10", len(frames))
		}
		return data, segs[0], frames
	}
	t.Skip("the applier applied the log before every kill; cannot set up unapplied frames on this machine")
	return
}

func checkReport(t *testing.T, data string) ledger.CheckReport {
	t.Helper()
	stdout, stderr, code := runCLI(t, "ledger", "check", "--data", data, "--json")
	var rep ledger.CheckReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("ledger check --json (exit %d): %v\n%s%s", code, err, stdout, stderr)
	}
	if (code == 0) != rep.OK {
		t.Fatalf("ledger check exit %d with ok=%v", code, rep.OK)
	}
	return rep
}

// serveRefuses runs serve on data and wants it to exit 1 at once with a
// message containing each of want, and no Go stack trace.
func serveRefuses(t *testing.T, data string, want ...string) {
	t.Helper()
	port := harness.FreePort(t)
	stdout, stderr, code := runCLI(t, "serve", "--data", data, "--group", "windows-server-2025",
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--metrics", "")
	if code != exitError {
		t.Fatalf("serve exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, w := range append(want, "ledger check --data") {
		if !strings.Contains(stderr, w) {
			t.Errorf("serve's message lacks %q:\n%s", w, stderr)
		}
	}
	for _, bad := range []string{"goroutine ", "panic", "SIGSEGV", "SIGBUS"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("serve's output has %q:\n%s", bad, stderr)
		}
	}
	if rep := checkReport(t, data); rep.OK {
		t.Errorf("ledger check says the damaged ledger is intact: %+v", rep)
	}
}

// TestProcessLedgerDamage: damage made with byte edits is
// refused with exit 1 and a message naming file, offset and what was lost,
// never taken for a crash-torn tail; a real torn tail still recovers.
func TestProcessLedgerDamage(t *testing.T) {
	edit := func(t *testing.T, path string, fn func([]byte) []byte) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, fn(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("bit flip", func(t *testing.T) {
		data, seg, frames := damageSetup(t)
		edit(t, seg, func(b []byte) []byte { b[frames[2]+40] ^= 0x10; return b })
		serveRefuses(t, data, seg, fmt.Sprintf("at offset %d", frames[2]), "checksum", "from sequence 3 on")
	})
	t.Run("zeroed range", func(t *testing.T) {
		data, seg, frames := damageSetup(t)
		edit(t, seg, func(b []byte) []byte { clear(b[frames[3]:frames[6]]); return b })
		serveRefuses(t, data, seg, fmt.Sprintf("at offset %d", frames[3]), "from sequence 4 on")
	})
	t.Run("renamed segment", func(t *testing.T) {
		data, seg, _ := damageSetup(t)
		if err := os.Rename(seg, filepath.Join(data, "wal-0000000000000005.log")); err != nil {
			t.Fatal(err)
		}
		serveRefuses(t, data, "wal-0000000000000005.log", "named for sequence 5 but its first frame holds sequence 1")
	})
	t.Run("truncated segment", func(t *testing.T) {
		data, seg, frames := damageSetup(t)
		edit(t, seg, func(b []byte) []byte { return b[:frames[7]+20] })
		serveRefuses(t, data, seg, "truncated")
	})
	t.Run("truncated ledger.db", func(t *testing.T) {
		data, _, _ := damageSetup(t)
		db := filepath.Join(data, ledger.FileName)
		edit(t, db, func(b []byte) []byte { return b[:len(b)/2] })
		serveRefuses(t, data, db, "truncated")
	})
	t.Run("zeroed tree pages in ledger.db", func(t *testing.T) {
		data, _, _ := damageSetup(t)
		db := filepath.Join(data, ledger.FileName)
		// Everything after the two meta pages (4096 bytes each here).
		edit(t, db, func(b []byte) []byte { clear(b[2*4096:]); return b })
		serveRefuses(t, data, db, "its tree is damaged")
	})
	t.Run("zero-length ledger.db", func(t *testing.T) {
		data, _, _ := damageSetup(t)
		db := filepath.Join(data, ledger.FileName)
		if err := os.Truncate(db, 0); err != nil {
			t.Fatal(err)
		}
		serveRefuses(t, data, db, "is empty (0 bytes)")
	})
	t.Run("quarantine", func(t *testing.T) {
		data, seg, frames := damageSetup(t)
		edit(t, seg, func(b []byte) []byte { b[frames[2]+40] ^= 0x10; return b })
		// Not harness.StartResponder: it waits for a healthy /healthz, and a
		// quarantined ledger must keep it failing.
		admin := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
		cmd := exec.Command(harness.ProcessBinary(t, "kms-responder"), "serve", "--data", data, "--group", "windows-server-2025",
			"--listen", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)), "--metrics", admin, "--ledger-quarantine")
		var stderr harness.SyncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		var st statusapi.Report
		deadline := time.Now().Add(30 * time.Second)
		for {
			stdout, _, code := runCLI(t, "status", "--admin", admin, "--json")
			if code == exitOK {
				if err := json.Unmarshal([]byte(stdout), &st); err != nil {
					t.Fatal(err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve --ledger-quarantine did not come up:\n%s", stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		resp, err := http.Get("http://" + admin + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("/healthz OK with a quarantined ledger")
		}
		if st.Ledger.Healthy || !strings.Contains(st.Ledger.LastError, "set aside") || !strings.Contains(st.Ledger.LastError, "sequence numbers not read: 3,") {
			t.Errorf("quarantined ledger reports healthy=%v, last error %q", st.Ledger.Healthy, st.Ledger.LastError)
		}
		if c := countOf(st, "Windows"); c != 9 {
			t.Errorf("count %d after quarantine, want 9: every intact frame, before the damage and after it", c)
		}
		if _, err := os.Stat(seg + ".corrupt"); err != nil {
			t.Errorf("damaged segment not set aside: %v", err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		// The unhealthy state persists: a start without the option
		// runs unhealthy, and check agrees, until acknowledged.
		if rep := checkReport(t, data); rep.OK || rep.Unacknowledged == "" {
			t.Errorf("ledger check after a quarantine: %+v", rep)
		}
		if st, code := serveUnhealthy(t, data); code == http.StatusOK || st.Ledger.Healthy || !strings.Contains(st.Ledger.LastError, "not yet acknowledged") {
			t.Errorf("restart after a quarantine never acknowledged: /healthz %d, ledger %+v", code, st.Ledger)
		}
		out, errOut, code := runCLI(t, "ledger", "acknowledge", "--data", data)
		if code != exitOK || !strings.Contains(out, "sequence numbers not read: 3,") {
			t.Fatalf("ledger acknowledge: exit %d\n%s%s", code, out, errOut)
		}
		if rep := checkReport(t, data); !rep.OK {
			t.Errorf("ledger check after acknowledge: %+v", rep)
		}
		p := harness.StartResponder(t, data, "--group", "windows-server-2025")
		defer p.Stop(syscall.SIGTERM)
		if st := statusOf(t, p); !st.Ledger.Healthy || countOf(st, "Windows") != 9 {
			t.Errorf("after acknowledge: healthy %v, count %d", st.Ledger.Healthy, countOf(st, "Windows"))
		}
	})
	t.Run("torn tail recovers", func(t *testing.T) {
		data, seg, frames := damageSetup(t)
		// What a power cut during the next batch's sync leaves: part of
		// a frame header and payload after the last frame, then zeros.
		edit(t, seg, func(b []byte) []byte {
			end := frames[9] + 16 + int(binary.BigEndian.Uint32(b[frames[9]:]))
			copy(b[end:], []byte{0, 0, 0, 0x90, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 11, 1, 0x18, 0x7f})
			return b
		})
		if rep := checkReport(t, data); !rep.OK || rep.Files[len(rep.Files)-1].State != "torn" {
			t.Errorf("ledger check on a torn tail: %+v", rep)
		}
		p := harness.StartResponder(t, data, "--group", "windows-server-2025")
		defer p.Stop(syscall.SIGTERM)
		st := statusOf(t, p)
		if c := countOf(st, "Windows"); c != 10 || !st.Ledger.Healthy {
			t.Errorf("after a torn tail: count %d (want 10), healthy %v", c, st.Ledger.Healthy)
		}
	})
}

// TestProcessLedgerSymlinks: in a data directory others
// can write to, another user's symbolic link named like the next log
// segment, or in place of ledger.db, makes serve refuse to start, and the
// link's target is neither truncated nor written.
func TestProcessLedgerSymlinks(t *testing.T) {
	runuser, err := exec.LookPath("runuser")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and runuser to plant a link as another user")
	}
	for _, tc := range []struct{ name, link, want string }{
		{"next segment", "wal-0000000000000001.log", "not a regular file"},
		{"store", ledger.FileName, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(data, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(data, 0o1777) // world-writable, as in the report (sticky, like /tmp)
			// nobody must reach it: open up t.TempDir's two levels.
			os.Chmod(filepath.Dir(data), 0o755)
			os.Chmod(filepath.Dir(filepath.Dir(data)), 0o755)
			victim := filepath.Join(t.TempDir(), "victim")
			const content = "root's file\n"
			if err := os.WriteFile(victim, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Dir(victim), 0o755)
			link := filepath.Join(data, tc.link)
			if out, err := exec.Command(runuser, "-u", "nobody", "--", "ln", "-s", victim, link).CombinedOutput(); err != nil {
				t.Skipf("runuser as nobody: %v: %s", err, out)
			}
			port := harness.FreePort(t)
			_, stderr, code := runCLI(t, "serve", "--data", data, "--group", "windows-server-2025",
				"--listen", "127.0.0.1:"+strconv.Itoa(port), "--metrics", "")
			// The data directory's own permission check (if it runs
			// first) may refuse instead; either way serve must name what
			// it refuses and touch nothing.
			if code != exitError || !(strings.Contains(stderr, tc.want) && strings.Contains(stderr, link) || strings.Contains(stderr, data)) {
				t.Errorf("serve exit %d, want 1 naming %s as %q:\n%s", code, link, tc.want, stderr)
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != content {
				t.Errorf("the link's target changed: now %d bytes, starting %q (%v)", len(b), b[:min(len(b), 32)], err)
			}
		})
	}
}
