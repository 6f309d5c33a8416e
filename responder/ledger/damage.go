package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// DamageError reports a ledger file that is damaged rather than torn by a
// crash: Open refuses to start on it (or, with Options.Quarantine, sets a
// damaged log segment aside and runs unhealthy), so that no acknowledged
// activation is silently dropped and no sequence number reused.
type DamageError struct {
	// Path is the damaged file.
	Path string
	// Offset is where in it the damage starts, -1 when it is not about
	// one place (a missing segment, a gap in the sequence numbers).
	Offset int64
	// What says what is wrong, Lost what it costs.
	What, Lost string
}

func (e *DamageError) Error() string {
	s := "ledger: " + e.Path
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	s += ": " + e.What
	if e.Lost != "" {
		s += "; " + e.Lost
	}
	return s
}

// bbolt's file format, as much as checking a store before opening it needs:
// pages 0 and 1 each hold a meta record after a 16-byte page header; the
// meta with the higher transaction ID and a good checksum is current, and
// the file must hold every page below its high-water mark.
const (
	boltPageHeader = 16
	boltMetaLen    = 64 // magic, version, page size, flags (4 each), root (16), freelist, pgid, txid, checksum (8 each)
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltNoFreelist = ^uint64(0)
)

type boltMeta struct {
	pageSize            uint32
	root, freelist, hwm uint64
	txid                uint64
}

// parseBoltMeta decodes and validates the meta record in b (at least
// boltMetaLen bytes), in the machine's byte order, as bbolt writes it.
func parseBoltMeta(b []byte) (boltMeta, error) {
	e := binary.NativeEndian
	if e.Uint32(b[0:4]) != boltMagic {
		return boltMeta{}, errors.New("bad magic number")
	}
	if v := e.Uint32(b[4:8]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != e.Uint64(b[56:64]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	m := boltMeta{pageSize: e.Uint32(b[8:12]), root: e.Uint64(b[16:24]), freelist: e.Uint64(b[32:40]),
		hwm: e.Uint64(b[40:48]), txid: e.Uint64(b[48:56])}
	switch {
	case m.pageSize < 1024 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0:
		return boltMeta{}, fmt.Errorf("page size %d", m.pageSize)
	case m.hwm < 4 || m.root < 2 || m.root >= m.hwm:
		return boltMeta{}, fmt.Errorf("root page %d outside 2..%d", m.root, m.hwm)
	case m.freelist != boltNoFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return boltMeta{}, fmt.Errorf("freelist page %d outside 2..%d", m.freelist, m.hwm)
	}
	return m, nil
}

// checkStoreFile inspects the store file before bbolt opens (and maps) it:
// a truncated or garbled store makes bbolt fault inside its open. It
// returns whether the file exists with content. withLog says whether the
// directory holds log segments: then the store must exist and hold data,
// or a new, empty store (new ePIDs and HwID, count 0) would silently
// replace the one they belong to.
func checkStoreFile(dir *dataDir, path string, withLog bool) (bool, error) {
	const restore = "restore ledger.db from a copy (see responder/README.md, Recovery)"
	fi, err := dir.lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if withLog {
			return false, &DamageError{Path: path, Offset: -1, What: "is missing but the data directory holds write-ahead log segments",
				Lost: "it held the host identity (ePIDs, HwID), the counts and the audit records; " + restore}
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("ledger: %w", err)
	case !fi.Mode().IsRegular():
		return false, &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("is not a regular file (%s)", fi.Mode().Type()),
			Lost: "the store is a regular file the responder creates; remove what is there and " + restore}
	case fi.Size() == 0:
		if withLog {
			return false, &DamageError{Path: path, Offset: 0, What: "is empty (0 bytes) but the data directory holds write-ahead log segments",
				Lost: "the host identity (ePIDs, HwID), the counts and the audit records it held are gone; " + restore}
		}
		return false, nil // a first start that stopped before bbolt wrote its pages
	}
	f, err := dir.openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	head := make([]byte, boltPageHeader+boltMetaLen)
	var metas []boltMeta
	var why []string
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("ledger: read %s: %w", path, err)
	}
	m0, err0 := parseBoltMeta(head[boltPageHeader:])
	if err0 == nil {
		metas = append(metas, m0)
	} else {
		why = append(why, "meta page 0: "+err0.Error())
	}
	// Page 1 is one page further on; without a good page 0, try the page
	// sizes bbolt uses.
	sizes := []int64{4096, 16384, 65536}
	if err0 == nil {
		sizes = []int64{int64(m0.pageSize)}
	}
	for _, ps := range sizes {
		if _, err := f.ReadAt(head, ps); err != nil {
			continue
		}
		if m1, err := parseBoltMeta(head[boltPageHeader:]); err == nil {
			metas = append(metas, m1)
			break
		} else if len(sizes) == 1 {
			why = append(why, "meta page 1: "+err.Error())
		}
	}
	if len(metas) == 0 {
		return false, &DamageError{Path: path, Offset: 0, What: fmt.Sprintf("is not a readable bbolt store (%d bytes; neither meta page is valid: %v)", fi.Size(), why),
			Lost: "nothing in it can be trusted; " + restore}
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	if need := int64(m.hwm) * int64(m.pageSize); fi.Size() < need {
		return false, &DamageError{Path: path, Offset: fi.Size(), What: fmt.Sprintf("is %d bytes but its meta page says it spans %d (%d pages of %d): the file was truncated", fi.Size(), need, m.hwm, m.pageSize),
			Lost: fmt.Sprintf("bytes %d..%d (pages of the store's tree) are missing; %s", fi.Size(), need, restore)}
	}
	if err := walkStore(f, m); err != nil {
		return false, &DamageError{Path: path, Offset: -1, What: "its tree is damaged: " + err.Error(),
			Lost: "records on the damaged pages, or more; " + restore}
	}
	return true, nil
}

// segScan is what reading one log segment found.
type segScan struct {
	seg    segment
	frames []frame // the frames before any damage or tear
	// after are frames with a good checksum found past a bad spot.
	after []frame
	// tornAt, when positive, is where a tolerated crash-torn tail starts.
	tornAt int
	damage *DamageError
	// unplaceable marks a segment whose frames cannot be placed in the
	// log (misnamed, or starting inside the one before it): a
	// quarantine sets it aside without applying them.
	unplaceable bool
	// gapFrom, when set, is the first sequence number of a gap before
	// this segment (the gap ends before seg.start).
	gapFrom uint64
	// markSynced is the segment's synced mark when the damage is that
	// its frames end before it (see markDamage); markTornAt is where its
	// torn tail starts, if it has one.
	markSynced uint64
	markTornAt int
}

// lastSeq returns the highest sequence number the scan saw.
func (s *segScan) lastSeq() (uint64, bool) {
	switch {
	case len(s.after) > 0:
		return s.after[len(s.after)-1].seq, true
	case len(s.frames) > 0:
		return s.frames[len(s.frames)-1].seq, true
	}
	return 0, false
}

// scanSegment reads one segment; last says whether it is the newest.
func scanSegment(seg segment, b []byte, last bool) segScan {
	sc := segScan{seg: seg}
	head, synced, marked, err := segmentMark(b)
	if err != nil {
		sc.damage = &DamageError{Path: seg.path, Offset: 0, What: err.Error(),
			Lost: fmt.Sprintf("how far the log was synced is unknown; activations from sequence %d on are not recovered", seg.start)}
		return sc
	}
	frames, off, err := readFrames(b[head:])
	off += head
	sc.frames = frames
	prev := seg.start - 1
	if len(frames) > 0 {
		prev = frames[len(frames)-1].seq
		if frames[0].seq != seg.start {
			sc.unplaceable = true
			sc.damage = &DamageError{Path: seg.path, Offset: 0,
				What: fmt.Sprintf("is named for sequence %d but its first frame holds sequence %d (renamed or copied over?)", seg.start, frames[0].seq),
				Lost: "its frames cannot be placed in the log"}
			return sc
		}
	}
	if err == nil {
		if sc.damage = markDamage(seg, off, prev, synced, marked); sc.damage != nil {
			sc.markSynced = synced
		}
		return sc
	}
	sc.after = framesAfter(b, off+1, prev)
	lost := fmt.Sprintf("activations from sequence %d on were logged after it and are not recovered", prev+1)
	if len(sc.after) > 0 {
		lost += fmt.Sprintf(" (%d intact frames up to sequence %d follow the damage)", len(sc.after), sc.after[len(sc.after)-1].seq)
	}
	if !errors.Is(err, errTorn) {
		// A frame with a good checksum that does not decode or does not
		// follow its predecessor: written by another build, or damaged.
		sc.damage = &DamageError{Path: seg.path, Offset: int64(off), What: err.Error(), Lost: lost}
		return sc
	}
	if why := tearRefused(b, off, frames, sc.after, last); why != "" {
		sc.damage = &DamageError{Path: seg.path, Offset: int64(off), What: fmt.Sprintf("%s (%v)", why, err), Lost: lost}
		return sc
	}
	sc.tornAt = max(off, 1)
	if d := markDamage(seg, off, prev, synced, marked); d != nil {
		d.What = fmt.Sprintf("%s (%v)", d.What, err)
		sc.damage, sc.markSynced, sc.markTornAt, sc.tornAt = d, synced, sc.tornAt, 0
	}
	return sc
}

// markDamage reports a segment whose frames, read up to off, end at
// sequence last although its synced mark says activations up to synced
// were synced and acknowledged: acknowledged batches were lost, which no
// crash does (only the batch being synced can be torn).
func markDamage(seg segment, off int, last, synced uint64, marked bool) *DamageError {
	if !marked || synced <= last {
		return nil
	}
	lost := strconv.FormatUint(synced, 10)
	if synced > last+1 {
		lost = fmt.Sprintf("%d-%d", last+1, synced)
	}
	return &DamageError{Path: seg.path, Offset: int64(off),
		What: fmt.Sprintf("the log ends after sequence %d, but its synced mark says activations up to %d were synced and acknowledged (its tail was zeroed or lost)", last, synced),
		Lost: fmt.Sprintf("acknowledged activations %s, and any logged after them, are not recovered", lost)}
}

// tearRefused says why a bad frame at off cannot be a crash-torn tail, or
// returns "" when it can: only the batch being synced when the machine
// stopped can be torn, and only in the last segment.
func tearRefused(b []byte, off int, before, after []frame, last bool) string {
	if !last {
		return "damage inside a sealed log segment (a newer segment follows, so this one was complete)"
	}
	if off < len(b) && len(b)%preallocChunk != 0 && !allZero(b[len(b)-min(len(b), 64):]) {
		// Segments grow in whole preallocated chunks, zero-filled and
		// synced before frames go in: a file that ends in data was cut.
		return fmt.Sprintf("the file ends in data at %d bytes, inside a frame: it was truncated", len(b))
	}
	if len(after) == 0 {
		return ""
	}
	marked := false
	for _, f := range before {
		marked = marked || f.batchEnd
	}
	for i, f := range after {
		if f.batchEnd && i != len(after)-1 {
			return fmt.Sprintf("whole batches (through sequence %d) follow the bad frame, so it was acknowledged", f.seq)
		}
		marked = marked || f.batchEnd
	}
	if !marked {
		// A log from a release without batch marks: frames after the
		// bad spot may be whole acknowledged batches.
		return "intact frames follow the bad frame"
	}
	return ""
}

// framesAfter finds the frames with a good checksum, a payload that
// decodes and a sequence number above prev, at any offset from off on: what
// lies past a bad spot.
func framesAfter(b []byte, off int, prev uint64) []frame {
	var out []frame
	for off+frameHeaderLen+activationFixedLen <= len(b) {
		n := int(binary.BigEndian.Uint32(b[off : off+4]))
		seq := binary.BigEndian.Uint64(b[off+8 : off+16])
		if n < activationFixedLen || n > maxFrameLen || off+frameHeaderLen+n > len(b) || seq <= prev || seq-prev > 1<<32 ||
			crc32.Checksum(b[off+8:off+frameHeaderLen+n], castagnoli) != binary.BigEndian.Uint32(b[off+4:off+8]) {
			off++
			continue
		}
		a, end, err := decodeLogActivation(b[off+frameHeaderLen : off+frameHeaderLen+n])
		if err != nil {
			off++
			continue
		}
		out = append(out, frame{seq: seq, act: a, batchEnd: end})
		prev = seq
		off += frameHeaderLen + n
	}
	return out
}

// scanLog reads every log segment and checks each against its name, the
// sequence numbers against each other and the first against the store's
// applied sequence number.
func scanLog(segs []segment, applied uint64) ([]segScan, error) {
	scans := make([]segScan, 0, len(segs))
	for i, s := range segs {
		b, err := readSegment(s.dir, s.path)
		if err != nil {
			return nil, err
		}
		sc := scanSegment(s, b, i == len(segs)-1)
		if sc.markSynced > 0 && sc.markSynced <= applied && sc.damage != nil && len(sc.after) == 0 {
			// The frames end before the synced mark, but the store
			// holds everything the mark vouches for: nothing
			// acknowledged is lost; read it as the tail it looks like.
			sc.damage, sc.tornAt = nil, sc.markTornAt
		}
		if sc.damage == nil {
			if len(sc.frames) == 0 && sc.tornAt == 0 && i < len(segs)-1 {
				sc.damage = &DamageError{Path: s.path, Offset: 0, What: "holds no frames although a newer segment follows (zeroed?)",
					Lost: fmt.Sprintf("activations from sequence %d up to %d are not recovered", s.start, segs[i+1].start-1)}
			}
		}
		if sc.damage == nil {
			want := applied + 1
			if i > 0 {
				p := &scans[i-1]
				if last, ok := p.lastSeq(); ok {
					want = last + 1
				} else {
					want = p.seg.start
				}
			}
			if s.start > want {
				what := fmt.Sprintf("starts at sequence %d, but the store has applied activations only up to %d", s.start, want-1)
				if i > 0 {
					what = fmt.Sprintf("starts at sequence %d, but the segment before it ends at %d", s.start, want-1)
				}
				sc.damage = &DamageError{Path: s.path, Offset: -1, What: what,
					Lost: fmt.Sprintf("activations %d..%d are missing: a log segment was removed, or ledger.db was restored from an older copy", want, s.start-1)}
				sc.gapFrom = want
			} else if i > 0 && s.start < want {
				sc.unplaceable = true
				sc.damage = &DamageError{Path: s.path, Offset: -1,
					What: fmt.Sprintf("starts at sequence %d, inside the segment before it (which ends at %d): renamed or copied?", s.start, want-1),
					Lost: "its frames cannot be placed in the log"}
			}
		}
		if d := sc.damage; d != nil && harmless(&sc, segs, i, applied) {
			// Everything the damage can hide is already in the store.
			sc.frames, sc.after = nil, nil
			sc.damage = nil
			sc.tornAt = -1
		}
		scans = append(scans, sc)
	}
	return scans, nil
}

// harmless reports whether every sequence number a damaged segment may have
// held is at or below applied, i.e. already in the store: a non-last
// segment ends where the next one starts.
func harmless(sc *segScan, segs []segment, i int, applied uint64) bool {
	if i == len(segs)-1 || sc.seg.start > applied || segs[i+1].start > applied+1 {
		return false
	}
	last, ok := sc.lastSeq()
	return !ok || last <= applied
}
