package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"
)

// review4WithFreelist returns store bytes b with a freelist page appended
// and the newest meta page pointing at it; the freelist names ids as free.
func review4WithFreelist(t *testing.T, b []byte, ids []uint64) []byte {
	t.Helper()
	e := binary.NativeEndian
	_, m := openWalk(t, b)
	ps := int(m.pageSize)
	metaAt := -1
	for _, at := range []int{0, ps} {
		if mm, err := parseBoltMeta(b[at+boltPageHeader:]); err == nil && mm.txid == m.txid {
			metaAt = at
		}
	}
	if metaAt < 0 || len(b) < int(m.hwm)*ps {
		t.Fatalf("store of %d bytes, hwm %d: cannot place a freelist page", len(b), m.hwm)
	}
	b = b[:int(m.hwm)*ps] // past the high-water mark: unused
	fl := make([]byte, ps)
	e.PutUint64(fl[0:], m.hwm)
	e.PutUint16(fl[8:], 0x10) // freelist page
	e.PutUint16(fl[10:], uint16(len(ids)))
	for i, id := range ids {
		e.PutUint64(fl[boltPageHeader+8*i:], id)
	}
	b = append(b, fl...)
	meta := b[metaAt+boltPageHeader:]
	e.PutUint64(meta[32:40], m.hwm)   // freelist
	e.PutUint64(meta[40:48], m.hwm+1) // pgid (high-water mark)
	h := fnv.New64a()
	h.Write(meta[:56])
	e.PutUint64(meta[56:64], h.Sum64())
	return b
}

// TestReview4SyncedFreelistNamingLivePages: the responder's stores never
// carry a freelist page (NoFreelistSync), but bbolt reads one when the
// meta page names it, at a read-write open only. A ledger.db whose meta
// names a freelist that lists the tree's own pages as free passes the
// pre-open checks (checkStoreFile checks the freelist id is in range; the
// page walk does not read the freelist) and `ledger check` (read-only:
// bbolt does not load the freelist); Open accepts it and bbolt then
// frees and reuses live pages: the first apply panics in bbolt ("page 11
// already freed") in the applier goroutine, outside guardFaults, and kills
// serve.
// (A freelist page whose count runs past the file, 1<<28 tried: Check
// says OK, Open allocates count*8 bytes, faults reading past the file and
// refuses the store as damaged; the two disagree.) Rule: before bbolt opens the store, refuse a meta that names a
// freelist (this responder never writes one), or check it as the tree is
// checked: a freelist page, in range, its ids inside the file and not
// reachable from the tree.
func TestReview4SyncedFreelistNamingLivePages(t *testing.T) {
	b := walkTestStore(t, 200)
	_, m := openWalk(t, b)
	var ids []uint64
	for id := uint64(2); id < m.hwm; id++ {
		ids = append(ids, id)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), review4WithFreelist(t, b, ids), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, cerr := Check(dir)
	l, err := Open(dir, Options{})
	if err != nil {
		return // refused: holds
	}
	l.Close()
	// Recording now would crash the test binary: the applier's first
	// commit panics inside bbolt ("page 11 already freed") in the applier
	// goroutine, which nothing recovers, so serve dies.
	t.Fatalf("a store whose freelist names every page of the tree: Check ok=%v err=%v; Open accepted it", rep.OK, cerr)
}

// TestFreelistJudgedBeforeOpen: a freelist page the meta names is checked
// before bbolt opens the store, so Check and Open agree on it: an empty
// one (as bbolt's first transaction leaves) is fine; one that lists a page
// the tree uses, the freelist itself, a page outside the file or a page
// twice, or whose count runs past its page, is damage to both.
func TestFreelistJudgedBeforeOpen(t *testing.T) {
	b := walkTestStore(t, 20)
	_, m := openWalk(t, b)
	for _, tc := range []struct {
		name  string
		ids   []uint64
		count uint16 // when set, replaces the page's element count
		ok    bool
	}{
		{"empty", nil, 0, true},
		{"a page of the tree", []uint64{m.root}, 0, false},
		{"itself", []uint64{m.hwm}, 0, false},
		{"a meta page", []uint64{1}, 0, false},
		{"past the file", []uint64{m.hwm + 5}, 0, false},
		{"count past the file", []uint64{1 << 28}, boltFreeCountX, false},
		{"count past its page", nil, 0xFFFE, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := review4WithFreelist(t, bytes.Clone(b), tc.ids)
			if tc.count != 0 {
				binary.NativeEndian.PutUint16(fb[len(fb)-int(m.pageSize)+10:], tc.count)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), fb, 0o600); err != nil {
				t.Fatal(err)
			}
			rep, cerr := Check(dir)
			if cerr != nil || rep.OK != tc.ok {
				t.Fatalf("Check: ok=%v err=%v files %+v, want ok=%v", rep.OK, cerr, rep.Files, tc.ok)
			}
			l, err := Open(dir, Options{})
			if l != nil {
				l.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("Open: %v, want ok=%v", err, tc.ok)
			}
			var d *DamageError
			if err != nil && !errors.As(err, &d) {
				t.Fatalf("Open: %v, want a *DamageError", err)
			}
		})
	}
}
