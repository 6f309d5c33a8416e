package ledger

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// heldDir opens dir as Open holds it, for tests of the file layer.
func heldDir(t testing.TB, dir string) *dataDir {
	t.Helper()
	d, err := openDataDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// TestOpenHoldsDirectory: once open, the ledger works in the directory it
// opened, whatever its name comes to mean. The directory is moved away and
// another put in its place (as a flipped symbolic link would); every later
// write, log rotation and the clean close's removals land in the directory
// first opened, and the new one stays empty.
func TestOpenHoldsDirectory(t *testing.T) {
	clock := testkit.NewClock()
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	opts := Options{Root: root, segmentSize: 4096}
	l := openTest(t, dir, clock, opts)
	ctx := context.Background()
	if err := l.Record(ctx, logActivation(0, clock.Now())); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(base, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 60; i++ { // enough to rotate 4 KiB segments
		if err := l.Record(ctx, logActivation(i, clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) != 0 {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Fatalf("the directory now at the name got files: %v %v", names, err)
	}
	l = openTest(t, moved, clock, Options{})
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 50 {
		t.Fatalf("the directory first opened counts %d clients, want 50 (the cap) of 60 recorded", len(w.Clients))
	}
	for i := range 60 {
		if _, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows); !ok || err != nil {
			t.Fatalf("client %d missing from the directory first opened (%v)", i, err)
		}
	}
}

// TestDataDirRefusesLinks: a symbolic link named like the store is never
// opened, even one pointing inside the directory.
func TestDataDirRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("other", filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	d := heldDir(t, dir)
	f, err := d.openFile(d.join(FileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		f.Close()
		t.Fatal("opened the store through a symbolic link")
	}
	if !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("error %v, want it to say not a regular file", err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open over a linked store: %v", err)
	}
	if _, err := d.openFile(filepath.Join(dir, "sub", "x"), os.O_RDONLY, 0); err == nil {
		t.Error("opened a path outside the directory's own entries")
	}
}
