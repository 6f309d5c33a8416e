package ledger

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// review4NestedInline returns a store file whose root bucket (page 2, a
// leaf with overflow pages) holds one inline bucket, which holds an inline
// bucket, and so on depth times: 48 bytes a level (page header, one leaf
// element with an empty key, bucket header). bbolt never writes a bucket
// inside an inline bucket (only a bucket without sub-buckets is inlined).
func review4NestedInline(t *testing.T, depth int) (*os.File, boltMeta) {
	t.Helper()
	const ps = 4096
	const level = boltPageHeader + boltElemLen + boltBucketLen
	body := boltPageHeader + depth*level + boltPageHeader // the innermost inline page is empty
	pages := (body + ps - 1) / ps
	b := make([]byte, (2+pages)*ps)
	e := binary.NativeEndian
	// The nested pages, outermost (page 2 itself) first.
	off := 2 * ps
	e.PutUint64(b[off:], 2)
	e.PutUint32(b[off+12:], uint32(pages-1))
	for range depth {
		e.PutUint16(b[off+8:], boltLeaf)
		e.PutUint16(b[off+10:], 1)
		el := off + boltPageHeader
		e.PutUint32(b[el:], boltBucketFlag)  // flags
		e.PutUint32(b[el+4:], boltElemLen)   // pos: right after the element
		e.PutUint32(b[el+8:], 0)             // key size
		vsize := len(b) - (el + boltElemLen) // the rest of the chain
		e.PutUint32(b[el+12:], uint32(vsize))
		// Bucket header: root 0 (inline), sequence 0; the inline page follows.
		off = el + boltElemLen + boltBucketLen
	}
	e.PutUint16(b[off+8:], boltLeaf) // innermost: an empty leaf
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, boltMeta{pageSize: ps, root: 2, freelist: boltNoFreelist, hwm: uint64(2 + pages), txid: 1}
}

// TestReview4WalkNestedInlineBuckets: the page walk recurses once per
// inline bucket nested in an inline bucket, with no bound (tree's depth
// limit of 64 counts pages, not inline levels). A crafted store of
// buckets nested 100,000 deep (4.6 MiB) passes the walk and takes more
// than 32 MiB of goroutine stack (fatal under debug.SetMaxStack(32<<20)); at 48 bytes a
// level, a store of a few hundred MiB takes the walk past Go's 1 GB stack
// limit, a fatal error that no recover catches: Open and `ledger check`
// die instead of refusing the store. The walk must refuse a bucket inside
// an inline bucket (bbolt never writes one) or nesting beyond its depth
// bound.
func TestReview4WalkNestedInlineBuckets(t *testing.T) {
	f, m := review4NestedInline(t, 100_000)
	if err := walkPages(f, m, nil); err == nil {
		t.Fatal("a store with inline buckets nested 100,000 deep passes the page walk")
	}
}
