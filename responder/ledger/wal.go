package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"strconv"
	"strings"
)

// The write-ahead log makes an activation durable with one sequential
// append and one fsync per batch; the bbolt store is brought up to date from
// it in large transactions in the background and on Open. Each segment file
// is named after the first sequence number it may hold; a frame is
//
//	length (uint32 BE, of the payload) | CRC-32C (uint32 BE, over
//	sequence and payload) | sequence (uint64 BE) | payload
//
// and the payload is an encoded Activation; the last frame of each batch
// (one append and one sync) carries the batch-end flag. Sequence numbers are
// consecutive across the whole log, and a segment's first frame holds the
// sequence its name says. Segments are zero-filled when created, so
// appending never changes the file size and a data-only sync suffices; the
// log ends where a frame header starts with a zero length.
//
// A segment the writer creates starts with the synced mark: two mark
// slots, each a frame with sequence 0 (which no activation has) and a
// payload of markMagic and a sequence number S: every activation up to S
// was synced, and acknowledged, before that slot was written. Each batch
// rewrites one slot, alternately, with the sequence the batch before it
// ended at, in the same write-then-sync as its frames: no extra sync, one
// small write at the segment's head per batch. A crash can tear only the
// slot being written, so the other holds the value before; the larger of
// the intact slots is the mark. A segment whose frames end before its mark
// lost acknowledged batches (a zeroed or lost tail: zeros look just like
// unwritten preallocated space) and is damage, however its end looks; the
// mark is at the head, so the damage that erases a tail leaves it. The
// mark lags one batch: the last batch can vanish unnoticed, as a torn one
// would. Segments without a mark (written by earlier releases) are read as
// before.
//
// A crash (a power cut; kill -9 loses nothing already written) can leave
// only the batch being synced torn: the batch before it was synced, and
// acknowledged, before its first byte was written. So a bad frame is a tear
// only when it is in the last segment and nothing after it but remains of
// that one batch (at most one batch end, no frame beyond it) is readable;
// anything else is damage, and Open refuses it (see damage.go).

const (
	walPrefix      = "wal-"
	walSuffix      = ".log"
	frameHeaderLen = 16
	// maxFrameLen bounds a frame's payload: an activation with both
	// strings at their limit is under 700 bytes.
	maxFrameLen = 1024
	// walSegmentSize is the size after which the writer starts a new
	// segment, so that applied segments can be deleted.
	walSegmentSize = 16 << 20
	// maxSegmentRead bounds how much of one segment Open reads: a full
	// segment plus its last batch and preallocation, with room to spare.
	maxSegmentRead = 4 * walSegmentSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The synced mark at the head of a segment.
const (
	markPayloadLen = 16
	markSlotLen    = frameHeaderLen + markPayloadLen
	markLen        = 2 * markSlotLen
)

var markMagic = [8]byte{'k', 'm', 's', 'w', 'm', 'a', 'r', 'k'}

// appendMark appends one mark slot saying synced.
func appendMark(dst []byte, synced uint64) []byte {
	var p [markPayloadLen]byte
	copy(p[:8], markMagic[:])
	binary.BigEndian.PutUint64(p[8:], synced)
	return appendFrame(dst, 0, p[:])
}

// segmentMark reads the synced mark at the head of a segment: where its
// frames start (0 when it has no mark), the mark and whether one was
// read. A head that is a mark but has no intact slot is an error (a crash
// tears at most one).
func segmentMark(b []byte) (start int, synced uint64, ok bool, err error) {
	if len(b) < frameHeaderLen || binary.BigEndian.Uint32(b[0:4]) != markPayloadLen || binary.BigEndian.Uint64(b[8:16]) != 0 {
		return 0, 0, false, nil // frames start at once: no mark
	}
	if len(b) < markLen {
		return 0, 0, false, fmt.Errorf("ledger: log segment is %d bytes, its synced mark needs %d", len(b), markLen)
	}
	for off := 0; off < markLen; off += markSlotLen {
		slot := b[off : off+markSlotLen]
		if binary.BigEndian.Uint32(slot[0:4]) != markPayloadLen || binary.BigEndian.Uint64(slot[8:16]) != 0 ||
			crc32.Checksum(slot[8:], castagnoli) != binary.BigEndian.Uint32(slot[4:8]) ||
			[8]byte(slot[frameHeaderLen:frameHeaderLen+8]) != markMagic {
			continue
		}
		synced, ok = max(synced, binary.BigEndian.Uint64(slot[frameHeaderLen+8:])), true
	}
	if !ok {
		return markLen, 0, false, errors.New("ledger: log segment's synced mark: neither slot is intact")
	}
	return markLen, synced, true, nil
}

// appendFrame appends one frame holding payload with sequence number seq.
func appendFrame(dst []byte, seq uint64, payload []byte) []byte {
	var h [frameHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint64(h[8:16], seq)
	crc := crc32.Update(0, castagnoli, h[8:16])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.BigEndian.PutUint32(h[4:8], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// frame is one decoded log entry.
type frame struct {
	seq uint64
	act Activation
	// batchEnd is set on the last frame of a batch (frames written by
	// releases before the flag existed never have it).
	batchEnd bool
}

// errTorn marks a frame that cannot be read: short, oversized or failing
// its checksum. It is the trace of a crash only at the end of the log.
var errTorn = errors.New("torn or corrupt frame")

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readFrames decodes the frames of one segment. It stops at the first frame
// that is incomplete or fails its checksum (returning the frames before it,
// the offset where it stopped and an error wrapping errTorn), at the first
// frame whose payload does not decode (a *DecodeError) and at the first
// frame whose sequence number does not follow the one before (an error
// that does not wrap errTorn: both carry a good checksum, so they are
// damage, never a tear). A clean end (the end of b, or only zero bytes from
// off on) returns a nil error.
func readFrames(b []byte) ([]frame, int, error) {
	var out []frame
	off := 0
	for off < len(b) {
		if allZero(b[off:min(off+4, len(b))]) {
			// A zero length starts the preallocated, unwritten rest.
			if !allZero(b[off:]) {
				return out, off, fmt.Errorf("ledger: log at offset %d: data after the end marker: %w", off, errTorn)
			}
			return out, off, nil
		}
		if len(b)-off < frameHeaderLen {
			return out, off, fmt.Errorf("ledger: log at offset %d: %d bytes left, a frame header needs %d: %w", off, len(b)-off, frameHeaderLen, errTorn)
		}
		n := int(binary.BigEndian.Uint32(b[off : off+4]))
		if n > maxFrameLen {
			return out, off, fmt.Errorf("ledger: log at offset %d: frame length %d exceeds %d: %w", off, n, maxFrameLen, errTorn)
		}
		if len(b)-off-frameHeaderLen < n {
			return out, off, fmt.Errorf("ledger: log at offset %d: frame needs %d payload bytes, %d left: %w", off, n, len(b)-off-frameHeaderLen, errTorn)
		}
		want := binary.BigEndian.Uint32(b[off+4 : off+8])
		body := b[off+8 : off+frameHeaderLen+n]
		if got := crc32.Checksum(body, castagnoli); got != want {
			return out, off, fmt.Errorf("ledger: log at offset %d: checksum %08x, frame says %08x: %w", off, got, want, errTorn)
		}
		seq := binary.BigEndian.Uint64(b[off+8 : off+16])
		a, end, err := decodeLogActivation(b[off+frameHeaderLen : off+frameHeaderLen+n])
		if err != nil {
			return out, off, fmt.Errorf("ledger: log frame %d at offset %d: %w", seq, off, err)
		}
		if len(out) > 0 && seq != out[len(out)-1].seq+1 {
			return out, off, fmt.Errorf("ledger: log at offset %d: sequence %d follows %d", off, seq, out[len(out)-1].seq)
		}
		out = append(out, frame{seq: seq, act: a, batchEnd: end})
		off += frameHeaderLen + n
	}
	return out, off, nil
}

// segment is one log file.
type segment struct {
	start uint64 // first sequence number it may hold
	path  string
	dir   *dataDir // holds it
}

func segmentName(start uint64) string {
	return fmt.Sprintf("%s%016x%s", walPrefix, start, walSuffix)
}

// listSegments returns the log segments in dir, oldest first.
func listSegments(dir *dataDir) ([]segment, error) {
	entries, err := dir.readDir()
	if err != nil {
		return nil, fmt.Errorf("ledger: list log segments: %w", err)
	}
	var segs []segment
	for _, e := range entries {
		name := e.Name()
		hexPart, ok := strings.CutPrefix(name, walPrefix)
		if !ok {
			continue
		}
		hexPart, ok = strings.CutSuffix(hexPart, walSuffix)
		if !ok || len(hexPart) != 16 {
			continue
		}
		start, err := strconv.ParseUint(hexPart, 16, 64)
		if err != nil {
			continue
		}
		if !e.Type().IsRegular() {
			// A symbolic link (or anything else) named like a segment
			// is not ours: never read, truncate or remove through it.
			return nil, fmt.Errorf("ledger: %s is not a regular file (%s); remove it: log segments are regular files the responder creates", dir.join(name), e.Type())
		}
		segs = append(segs, segment{start: start, path: dir.join(name), dir: dir})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	return segs, nil
}

// syncDir makes file creations and removals in dir durable.
func syncDir(dir *dataDir) error { return dir.sync() }

// walWriter appends to the current segment. Only the log writer goroutine
// uses it.
type walWriter struct {
	dir   *dataDir
	f     *os.File
	size  int64  // end of the frames written
	alloc int64  // end of the zero-filled space
	buf   []byte // frames of the batch being written
	// mark is the value last written to the segment's synced mark, and
	// slot the slot the next one goes to.
	mark uint64
	slot int
	// payload is the encoding of the activation being framed.
	payload []byte
	// fault is Options.WriteFault.
	fault func(off int64, n int, alloc int64) error
}

// preallocChunk is how much zero-filled space a segment gains at a time.
const preallocChunk = 1 << 20

// create starts a new, empty segment for sequence numbers from start on.
func (w *walWriter) create(start uint64) (segment, error) {
	seg := segment{start: start, path: w.dir.join(segmentName(start)), dir: w.dir}
	// O_EXCL: a segment is always new; whatever already has its name
	// (a link planted in the directory, a file a crash left) is not ours
	// to truncate.
	f, err := w.dir.openFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return seg, fmt.Errorf("ledger: create log segment: %w", err)
	}
	if err := zeroFill(f, 0, preallocChunk); err != nil {
		f.Close()
		w.dir.remove(seg.path)
		return seg, fmt.Errorf("ledger: preallocate log segment: %w", err)
	}
	// Everything before start was synced (it is in an older segment or
	// in the store).
	mark := appendMark(appendMark(nil, start-1), start-1)
	if _, err := f.WriteAt(mark, 0); err != nil {
		f.Close()
		w.dir.remove(seg.path)
		return seg, fmt.Errorf("ledger: write log segment's synced mark: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		w.dir.remove(seg.path)
		return seg, fmt.Errorf("ledger: sync new log segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		w.dir.remove(seg.path)
		return seg, fmt.Errorf("ledger: sync data directory: %w", err)
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.size, w.alloc = f, markLen, preallocChunk
	w.mark, w.slot = start-1, 0
	return seg, nil
}

// zeroBlock is what zeroFill writes from; nothing writes to it. Filling a
// chunk from one shared block, rather than a fresh 1 MiB buffer each time,
// spares the log writer an allocation (and the page faults of new heap)
// per chunk.
var zeroBlock [256 << 10]byte

// zeroFill writes zero bytes to f from off to end.
func zeroFill(f *os.File, off, end int64) error {
	zeros := zeroBlock[:]
	for off < end {
		n := min(int64(len(zeros)), end-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// append writes buf after the frames written so far, zero-filling more of
// the segment first when needed. It does not sync. On failure it zeroes
// what it may have written, so that the log still ends after the last
// frame written.
func (w *walWriter) append(buf []byte) error {
	if w.fault != nil {
		if err := w.fault(w.size, len(buf), w.alloc); err != nil {
			return fmt.Errorf("ledger: append to log: %w", err)
		}
	}
	need := w.size + int64(len(buf))
	if need > w.alloc {
		end := max(need, w.alloc+preallocChunk)
		if err := zeroFill(w.f, w.alloc, end); err != nil {
			return fmt.Errorf("ledger: extend log segment: %w", err)
		}
		// Sync the new size now, so that the data syncs that follow
		// need not write metadata.
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("ledger: sync extended log segment: %w", err)
		}
		w.alloc = end
	}
	if _, err := w.f.WriteAt(buf, w.size); err != nil {
		zeroFill(w.f, w.size, w.size+int64(len(buf)))
		return fmt.Errorf("ledger: append to log: %w", err)
	}
	w.size = need
	return nil
}

// setMark writes synced to the next slot of the segment's synced mark,
// unless the mark already says so. It does not sync: the batch's sync
// that follows covers it.
func (w *walWriter) setMark(synced uint64) error {
	if synced == w.mark {
		return nil
	}
	var b [markSlotLen]byte
	if _, err := w.f.WriteAt(appendMark(b[:0], synced), int64(w.slot*markSlotLen)); err != nil {
		return fmt.Errorf("ledger: write log segment's synced mark: %w", err)
	}
	w.mark, w.slot = synced, 1-w.slot
	return nil
}

// truncate forgets the frames after off (they failed to sync) and zeroes
// them, so that the log ends at off.
func (w *walWriter) truncate(off int64) {
	if off < w.size {
		zeroFill(w.f, off, w.size)
		w.size = off
	}
}

func (w *walWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
