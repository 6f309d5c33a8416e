package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime/debug"
)

// bbolt page flags and element sizes, as its file format defines them.
const (
	boltBranch     = 0x01
	boltLeaf       = 0x02
	boltFreelist   = 0x10
	boltFreeIDLen  = 8      // a freelist page lists page ids (u64)
	boltFreeCountX = 0xFFFF // a freelist count this large is in the page's first id slot
	boltElemLen    = 16     // branch: pos, ksize (u32), pgid (u64); leaf: flags, pos, ksize, vsize (u32)
	boltBucketFlag = 0x01
	boltBucketLen  = 16 // root pgid, sequence (u64)
)

// maxBucketNesting is how deep the ledger's layout nests buckets: the
// root's buckets (level 1) and the per-application buckets inside the
// count bucket (level 2). The walk refuses a bucket nested deeper, which
// also bounds its recursion into inline buckets.
const maxBucketNesting = 2

// walkRoot is a bucket's root page still to walk and the nesting level of
// the buckets its leaves hold (1 for the store's root bucket).
type walkRoot struct {
	page  uint64
	level int
}

// storeWalk checks, before bbolt opens the store, what bbolt's open reads
// without checking: it walks every bucket's tree (as bbolt does, in a
// goroutine that panics on the first inconsistency, to rebuild its free
// list) and verifies that every page is inside the file and referenced
// once, is a branch or leaf page, that its elements lie within it, that
// keys are in order within the bounds their parents set and that buckets
// nest no deeper than the ledger's layout; then the freelist page, when
// the meta names one (see freelist).
type storeWalk struct {
	f         *os.File
	mapped    []byte // the file's pages 0..hwm-1 in place of f, when it could be mapped
	pageSize  int64
	hwm       uint64
	reachable []bool
}

// walkStore runs the walk from meta m's root bucket. The caller has
// checked that the file holds m's hwm pages. It reads the pages through a
// read-only map of the file where it can, and with pread otherwise.
func walkStore(f *os.File, m boltMeta) error {
	data, unmap := mapStoreFile(f, int64(m.hwm)*int64(m.pageSize))
	if data != nil {
		defer unmap()
	}
	return walkPages(f, m, data)
}

// walkPages is walkStore reading the pages from mapped (the file's first
// hwm pages, mapped) or, when it is nil, from f. A fault reading mapped,
// should the file shrink meanwhile, is returned as an error.
func walkPages(f *os.File, m boltMeta, mapped []byte) (err error) {
	w := &storeWalk{f: f, mapped: mapped, pageSize: int64(m.pageSize), hwm: m.hwm, reachable: make([]bool, m.hwm)}
	if mapped != nil {
		old := debug.SetPanicOnFault(true)
		defer debug.SetPanicOnFault(old)
		defer func() {
			if r := recover(); r != nil {
				fault, ok := r.(interface{ Addr() uintptr })
				if !ok {
					panic(r)
				}
				err = fmt.Errorf("reading the file at address %#x faulted (did it shrink while it was read?): %v", fault.Addr(), r)
			}
		}()
	}
	roots := []walkRoot{{page: m.root, level: 1}}
	for len(roots) > 0 {
		root := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		var err error
		if _, roots, err = w.tree(root.page, root.level, nil, nil, roots, 0); err != nil {
			return err
		}
	}
	if m.freelist != boltNoFreelist {
		return w.freelist(m.freelist)
	}
	return nil
}

// freelist checks the freelist page id that m names, after the tree's
// walk: bbolt loads it at a read-write open without checking it, and
// reuses what it lists. It must be a freelist page inside the file that
// the tree does not reach, and list each page at most once, each inside
// the file and unreached by the tree (and not the freelist itself): a
// page listed free while the tree uses it is overwritten by the next
// commit.
func (w *storeWalk) freelist(id uint64) error {
	b, err := w.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	e := binary.NativeEndian
	if flags := e.Uint16(b[8:10]); flags != boltFreelist {
		return fmt.Errorf("freelist page %d: type %#x, want a freelist page", id, flags)
	}
	ids := b[boltPageHeader:]
	n := uint64(e.Uint16(b[10:12]))
	if n == boltFreeCountX {
		if len(ids) < boltFreeIDLen {
			return fmt.Errorf("freelist page %d: no room for its count", id)
		}
		n, ids = e.Uint64(ids[:boltFreeIDLen]), ids[boltFreeIDLen:]
	}
	if n > uint64(len(ids)/boltFreeIDLen) {
		return fmt.Errorf("freelist page %d: %d ids do not fit in its %d bytes", id, n, len(b))
	}
	free := make([]bool, w.hwm)
	for i := range n {
		p := e.Uint64(ids[i*boltFreeIDLen:])
		switch {
		case p < 2 || p >= w.hwm:
			return fmt.Errorf("freelist page %d: id %d lists page %d, outside 2..%d", id, i, p, w.hwm-1)
		case w.reachable[p]:
			return fmt.Errorf("freelist page %d: id %d lists page %d as free, but the tree (or the freelist) uses it", id, i, p)
		case free[p]:
			return fmt.Errorf("freelist page %d: id %d lists page %d a second time", id, i, p)
		}
		free[p] = true
	}
	return nil
}

// page reads page id with its overflow pages, after checking that they are
// inside the file and not reached before.
func (w *storeWalk) page(id uint64) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d is outside 2..%d", id, w.hwm-1)
	}
	// One read for the page; a second only for its overflow pages.
	var head []byte
	if w.mapped != nil {
		head = w.mapped[int64(id)*w.pageSize : int64(id+1)*w.pageSize]
	} else {
		head = make([]byte, w.pageSize)
		if _, err := w.f.ReadAt(head, int64(id)*w.pageSize); err != nil {
			return nil, fmt.Errorf("page %d: %v", id, err)
		}
	}
	e := binary.NativeEndian
	overflow := uint64(e.Uint32(head[12:16]))
	if got := e.Uint64(head[0:8]); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	if id+overflow >= w.hwm {
		return nil, fmt.Errorf("page %d with %d overflow pages runs past page %d", id, overflow, w.hwm-1)
	}
	for i := id; i <= id+overflow; i++ {
		if w.reachable[i] {
			return nil, fmt.Errorf("page %d is referenced twice", i)
		}
		w.reachable[i] = true
	}
	if overflow == 0 {
		return head, nil
	}
	if w.mapped != nil {
		return w.mapped[int64(id)*w.pageSize : int64(id+overflow+1)*w.pageSize], nil
	}
	b := make([]byte, int64(overflow+1)*w.pageSize)
	if _, err := w.f.ReadAt(b, int64(id)*w.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return b, nil
}

// tree walks the tree rooted at page id whose keys must lie in
// [lo, hi) (nil: unbounded) and whose bucket elements are buckets of
// nesting level level; it returns the largest key in it and adds the
// roots of the buckets it holds to roots.
func (w *storeWalk) tree(id uint64, level int, lo, hi []byte, roots []walkRoot, depth int) ([]byte, []walkRoot, error) {
	if depth > 64 {
		return nil, roots, fmt.Errorf("page %d: tree deeper than 64 levels", id)
	}
	b, err := w.page(id)
	if err != nil {
		return nil, roots, err
	}
	return w.node(id, b, level, lo, hi, roots, depth)
}

// node checks one page's elements (b is the page, or an inline bucket's
// page inside a value).
func (w *storeWalk) node(id uint64, b []byte, level int, lo, hi []byte, roots []walkRoot, depth int) ([]byte, []walkRoot, error) {
	e := binary.NativeEndian
	if len(b) < boltPageHeader {
		return nil, roots, fmt.Errorf("page %d: %d bytes, shorter than a page header", id, len(b))
	}
	flags, count := e.Uint16(b[8:10]), int(e.Uint16(b[10:12]))
	if boltPageHeader+count*boltElemLen > len(b) {
		return nil, roots, fmt.Errorf("page %d: %d elements do not fit in %d bytes", id, count, len(b))
	}
	elem := func(i int) (int, []byte, []byte, uint32, error) {
		off := boltPageHeader + i*boltElemLen
		el := b[off : off+boltElemLen]
		var pos, ksize, vsize, f uint32
		if flags&boltBranch != 0 {
			pos, ksize = e.Uint32(el[0:4]), e.Uint32(el[4:8])
		} else {
			f, pos, ksize, vsize = e.Uint32(el[0:4]), e.Uint32(el[4:8]), e.Uint32(el[8:12]), e.Uint32(el[12:16])
		}
		start := uint64(off) + uint64(pos)
		if start+uint64(ksize)+uint64(vsize) > uint64(len(b)) {
			return 0, nil, nil, 0, fmt.Errorf("page %d: element %d (key %d + value %d bytes at %d) runs past the page", id, i, ksize, vsize, start)
		}
		return off, b[start : start+uint64(ksize)], b[start+uint64(ksize) : start+uint64(ksize)+uint64(vsize)], f, nil
	}
	var last []byte
	switch {
	case flags == boltBranch:
		if count == 0 {
			return nil, roots, fmt.Errorf("page %d: empty branch page", id)
		}
		running := lo
		for i := range count {
			off, key, _, _, err := elem(i)
			if err != nil {
				return nil, roots, err
			}
			if err := keyOrder(id, i, key, running, hi); err != nil {
				return nil, roots, err
			}
			next := hi
			if i+1 < count {
				if _, next, _, _, err = elem(i + 1); err != nil {
					return nil, roots, err
				}
			}
			child := e.Uint64(b[off+8 : off+16])
			var max []byte
			if max, roots, err = w.tree(child, level, key, next, roots, depth+1); err != nil {
				return nil, roots, err
			}
			running, last = max, max
		}
	case flags == boltLeaf:
		running := lo
		for i := range count {
			_, key, val, f, err := elem(i)
			if err != nil {
				return nil, roots, err
			}
			if err := keyOrder(id, i, key, running, hi); err != nil {
				return nil, roots, err
			}
			running, last = key, key
			if f&boltBucketFlag == 0 {
				continue
			}
			if level > maxBucketNesting {
				return nil, roots, fmt.Errorf("page %d: bucket %x is nested %d deep; the ledger's buckets nest at most %d deep", id, key, level, maxBucketNesting)
			}
			if len(val) < boltBucketLen {
				return nil, roots, fmt.Errorf("page %d: bucket %x has a %d-byte header", id, key, len(val))
			}
			if root := e.Uint64(val[0:8]); root != 0 {
				roots = append(roots, walkRoot{page: root, level: level + 1})
			} else if _, roots, err = w.node(id, val[boltBucketLen:], level+1, nil, nil, roots, depth+1); err != nil {
				return nil, roots, fmt.Errorf("inline bucket %x: %w", key, err)
			}
		}
	default:
		return nil, roots, fmt.Errorf("page %d: type %#x, want a branch or leaf page", id, flags)
	}
	return last, roots, nil
}

// keyOrder is bbolt's own order check: the first key at or after the bound
// its parent gives, every later key after the one before, all below hi.
func keyOrder(id uint64, i int, key, prev, hi []byte) error {
	switch {
	case i == 0 && prev != nil && bytes.Compare(prev, key) > 0,
		i > 0 && bytes.Compare(prev, key) >= 0:
		return fmt.Errorf("page %d: key %d (%x) out of order after %x", id, i, key, prev)
	case hi != nil && bytes.Compare(key, hi) >= 0:
		return fmt.Errorf("page %d: key %d (%x) is not below its parent's bound %x", id, i, key, hi)
	}
	return nil
}
