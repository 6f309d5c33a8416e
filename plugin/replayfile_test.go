package vlmcs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseReplayFile(t *testing.T) {
	now := time.Unix(1000, 0)
	mac := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, data string
		want       int    // unexpired entries
		err        string // part of the error; "" for none
	}{
		{"empty", "", 0, ""},
		{"one", "2000 k1. " + mac + "\n", 1, ""},
		{"expired dropped", "999 k1. " + mac + "\n1000 k1. ab\n2000 k2. cd\n", 1, ""},
		{"cut short", "2000 k1. " + mac + "\n2000 k2. c", 1, ""},
		{"fields", "2000 k1.\n", 0, "replay:1: want"},
		{"time", "x k1. ab\n", 0, "replay:1: window end"},
		{"negative time", "-5 k1. ab\n", 0, "window end"},
		{"key", "2000 k1 ab\n", 0, "not a key name"},
		{"key bytes", "2000 k\x00. ab\n", 0, "not a key name"},
		{"mac case", "2000 k1. AB\n", 0, "lower-case hex"},
		{"mac odd", "2000 k1. abc\n", 0, "lower-case hex"},
		{"mac long", "2000 k1. " + mac + mac + "00\n", 0, "lower-case hex"},
		{"mac empty", "2000 k1. \n", 0, "lower-case hex"},
		{"line long", "2000 k1. " + strings.Repeat("a", 600) + "\n", 0, "longer than"},
		{"second line", "2000 k1. ab\n\n", 0, "replay:2: want"},
	} {
		got, err := parseReplayFile("replay", []byte(tc.data), now)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.err)
		case tc.err == "" && len(got) != tc.want:
			t.Errorf("%s: %d entries, want %d", tc.name, len(got), tc.want)
		}
	}
}

// TestReplayFileSurvivesRestart: a MAC accepted by one guard (process) is refused by the next
// one that loads the same file, until its window ends; the file is compacted and kept 0600.
func TestReplayFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay")
	now := time.Unix(1_800_000_000, 0)
	g1 := newReplayGuard()
	if err := g1.persist(path, now); err != nil {
		t.Fatal(err)
	}
	if v := g1.check("k1.", "abcd", now.Add(301*time.Second), now); v != replayFirst {
		t.Fatalf("first check: %v", v)
	}
	if err := g1.persist(path, now); err != nil {
		t.Errorf("persist again to the same file (a reload): %v", err)
	}
	if err := g1.persist(path+"2", now); err == nil {
		t.Error("persist to a second file accepted")
	}
	g1.store.f.Close() // kill -9: nothing else is written

	g2 := newReplayGuard()
	if err := g2.persist(path, now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if v := g2.check("k1.", "abcd", now.Add(301*time.Second), now.Add(20*time.Second)); v != replaySeen {
		t.Errorf("replay after a restart: %v, want replaySeen", v)
	}
	g2.store.f.Close()
	g3 := newReplayGuard()
	if err := g3.persist(path, now.Add(302*time.Second)); err != nil {
		t.Fatal(err)
	}
	if g3.size() != 0 {
		t.Errorf("expired entries loaded: %d", g3.size())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 0 {
		t.Errorf("compacted file: %v %v", fi, err)
	}
	g3.store.f.Close()

	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newReplayGuard().persist(path, now); err == nil || !strings.Contains(err.Error(), path+":1") {
		t.Errorf("malformed file: %v", err)
	}
}
