package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestSyncedMark: three activations, each its own synced batch, and the
// data directory as the disk holds it before the store applied them.
// A crash can tear only the last batch, so losing it (or tearing the mark
// slot being written) recovers the first two; losing more than the last
// batch is damage, however clean the end of the log looks, and Open and
// Check both refuse it.
func TestSyncedMark(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(b []byte, frames []int) // frames: offsets of the three frames
		clients int                          // recovered; -1: refused
	}{
		{"intact", func([]byte, []int) {}, 3},
		{"last batch zeroed (a torn batch)", func(b []byte, f []int) { clear(b[f[2]:]) }, 2},
		{"last batch half written", func(b []byte, f []int) { clear(b[f[2]+20:]) }, 2},
		{"mark slot being written torn, last batch lost", func(b []byte, f []int) {
			clear(b[f[2]:])
			b[markSlotLen+frameHeaderLen+15] ^= 0xff // slot 1 holds the newest mark
		}, 2},
		{"two batches zeroed", func(b []byte, f []int) { clear(b[f[1]:]) }, -1},
		{"every frame zeroed", func(b []byte, f []int) { clear(b[f[0]:]) }, -1},
		{"both mark slots broken", func(b []byte, _ []int) { b[frameHeaderLen+15] ^= 1; b[markSlotLen+frameHeaderLen+15] ^= 1 }, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, seg := unappliedCopy(t, 3)
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			var frames []int
			for off := markLen; len(frames) < 3; off += frameHeaderLen + int(binary.BigEndian.Uint32(b[off:off+4])) {
				frames = append(frames, off)
			}
			tc.damage(b, frames)
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			rep, cerr := Check(dst)
			if cerr == nil && !rep.OK {
				cerr = errors.New("check: not ok")
			}
			l, err := Open(dst, Options{})
			if tc.clients < 0 {
				var d *DamageError
				if err == nil {
					l.Close()
				}
				if !errors.As(err, &d) || cerr == nil {
					t.Fatalf("Open: %v, Check: %v; want both to refuse with a *DamageError", err, cerr)
				}
				return
			}
			if err != nil || cerr != nil {
				t.Fatalf("Open: %v, Check: %v; want both to accept", err, cerr)
			}
			defer l.Close()
			n := 0
			for i := range 3 {
				if _, ok, _ := l.Client(testkit.CMID(i+1), testkit.AppWindows); ok {
					n++
				}
			}
			if n != tc.clients {
				t.Errorf("%d clients recovered, want %d", n, tc.clients)
			}
		})
	}
}

// unappliedCopy records n activations, one batch each, and returns a copy
// of the data directory taken before the store applied them, and the path
// of its log segment.
func unappliedCopy(t *testing.T, n int) (dir, seg string) {
	t.Helper()
	src := t.TempDir()
	l, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		a := Activation{Time: now, CMID: testkit.CMID(i + 1), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
			Workstation: "ws", Source: "127.0.0.1:1", Counted: true, Cap: 50}
		if err := l.Record(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	dir = t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), walPrefix) {
			seg = filepath.Join(dir, e.Name())
		}
	}
	pending := l.Stats().Pending
	l.Close()
	if pending < n {
		t.Skipf("the store applied the activations before the copy (%d pending)", pending)
	}
	return dir, seg
}

// TestSyncedMarkApplied: a zeroed tail whose activations the store
// already holds loses nothing: Open accepts it.
func TestSyncedMarkApplied(t *testing.T) {
	src := t.TempDir()
	l, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 3 {
		a := Activation{Time: now, CMID: testkit.CMID(i + 1), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
			Workstation: "ws", Source: "127.0.0.1:1", Counted: true, Cap: 50}
		if err := l.Record(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := l.Client(testkit.CMID(3), testkit.AppWindows); !ok || err != nil { // applies what is pending
		t.Fatal(ok, err)
	}
	dir := t.TempDir()
	entries, _ := os.ReadDir(src)
	var seg string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), walPrefix) {
			seg = filepath.Join(dir, e.Name())
			clear(b[markLen:]) // every frame gone; the mark says 2
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if seg == "" {
		t.Fatal("no log segment")
	}
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("a zeroed tail of applied activations refused: %v", err)
	}
	defer l.Close()
	for i := range 3 {
		if _, ok, _ := l.Client(testkit.CMID(i+1), testkit.AppWindows); !ok {
			t.Errorf("client %d lost", i+1)
		}
	}
}
