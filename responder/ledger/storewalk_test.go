package ledger

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walkTestStore writes a small store of n clients and returns its bytes.
func walkTestStore(t *testing.T, n int) []byte {
	t.Helper()
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	l := openTest(t, dir, nil, Options{Clock: func() time.Time { return at }})
	for i := range n {
		if err := l.Record(context.Background(), logActivation(i, at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openWalk writes b to a file and returns it open with its newest meta.
func openWalk(t *testing.T, b []byte) (*os.File, boltMeta) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := parseBoltMeta(b[boltPageHeader:])
	if err != nil {
		t.Fatal(err)
	}
	if m1, err := parseBoltMeta(b[int(m.pageSize)+boltPageHeader:]); err == nil && m1.txid > m.txid {
		m = m1
	}
	return f, m
}

// TestWalkPagesMappedAndRead: the walk through the file's map and the one
// through pread judge a store alike, good or damaged.
func TestWalkPagesMappedAndRead(t *testing.T) {
	good := walkTestStore(t, 300)
	edit := func(off int, with ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], with)
		return b
	}
	_, m := openWalk(t, good)
	ps, root := int(m.pageSize), int(m.root)
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" for a store the walk accepts
	}{
		{"good", good, ""},
		{"page id", edit(root*ps, 0x7f), "says it is page"},
		{"page type", edit(root*ps+8, 0x10, 0), "want a branch or leaf page"},
		{"element count", edit(root*ps+10, 0xff, 0xff), "do not fit"},
		{"overflow past the end", edit(root*ps+12, 0xff, 0xff, 0, 0), "runs past page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, m := openWalk(t, tc.b)
			read := walkPages(f, m, nil)
			data, unmap := mapStoreFile(f, int64(m.hwm)*int64(m.pageSize))
			if data == nil {
				t.Skip("the store file cannot be mapped here")
			}
			defer unmap()
			mapped := walkPages(f, m, data)
			if (read == nil) != (tc.want == "") || (read != nil && !strings.Contains(read.Error(), tc.want)) {
				t.Fatalf("walk by pread: %v, want %q", read, tc.want)
			}
			if (read == nil) != (mapped == nil) || (read != nil && read.Error() != mapped.Error()) {
				t.Fatalf("walk by pread: %v; through the map: %v", read, mapped)
			}
		})
	}
}

// TestWalkPagesFileShrinks: a store file cut short after it was mapped
// (another process truncating it during the walk) makes the walk fail
// with an error, not kill the process with SIGBUS.
func TestWalkPagesFileShrinks(t *testing.T) {
	f, m := openWalk(t, walkTestStore(t, 300))
	data, unmap := mapStoreFile(f, int64(m.hwm)*int64(m.pageSize))
	if data == nil {
		t.Skip("the store file cannot be mapped here")
	}
	defer unmap()
	if err := os.Truncate(f.Name(), 2*int64(m.pageSize)); err != nil {
		t.Fatal(err)
	}
	err := walkPages(f, m, data)
	if err == nil || !strings.Contains(err.Error(), "faulted") {
		t.Fatalf("walk of a shrunk file: %v, want a fault reported", err)
	}
}

// TestWalkBucketNesting: the walk accepts inline buckets nested as deep as
// the ledger's layout nests buckets and refuses any deeper, by name.
func TestWalkBucketNesting(t *testing.T) {
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{1, true}, {maxBucketNesting, true}, {maxBucketNesting + 1, false}, {1000, false}} {
		f, m := review4NestedInline(t, tc.depth)
		err := walkPages(f, m, nil)
		if (err == nil) != tc.ok {
			t.Fatalf("buckets nested %d deep: walk error %v, want ok=%v", tc.depth, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "nested") {
			t.Fatalf("buckets nested %d deep: %v does not say the nesting is refused", tc.depth, err)
		}
	}
}
