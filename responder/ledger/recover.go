package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// recover checks the log segments (see scanLog), applies their activations
// newer than the store's applied sequence number, deletes the segments and
// starts a new one. Damage refuses the start (returning the first
// *DamageError) before anything is changed, unless Options.Quarantine is
// set: then what each damaged segment lost is recorded in the store, every
// intact frame of it is applied, the file is renamed to *.corrupt, and the
// ledger stays unhealthy, across restarts, until Acknowledge.
func (l *Ledger) recover(segs []segment) error {
	scans, err := scanLog(segs, l.appliedSeq)
	if err != nil {
		return err
	}
	var damaged []*DamageError
	for i := range scans {
		if d := scans[i].damage; d != nil {
			damaged = append(damaged, d)
		}
	}
	if len(damaged) > 0 && !l.opts.Quarantine {
		for _, d := range damaged[1:] {
			l.log.Error("ledger: damaged", "err", d)
		}
		return damaged[0]
	}
	// First decide, without changing anything, what each damaged
	// segment costs, and record it in the store before any file is
	// renamed or removed: a crash in between then leaves the ledger
	// unhealthy, never a quarantine nobody is told about.
	last := l.appliedSeq
	apply := make([][]frame, len(scans))
	setAside := make([]string, len(scans))
	var damage []string
	for i := range scans {
		sc := &scans[i]
		apply[i] = sc.frames
		d := sc.damage
		if d == nil {
			continue
		}
		var missing string
		switch {
		case sc.unplaceable:
			apply[i] = nil
			missing = "all of its frames (they cannot be placed in the log)"
		case d.Offset >= 0:
			// Every intact frame is applied, those past the damage
			// too; only what cannot be read is missing.
			apply[i] = append(append([]frame(nil), sc.frames...), sc.after...)
			end := uint64(0)
			if i+1 < len(scans) {
				end = scans[i+1].seg.start
			}
			missing = missingSeqs(sc.seg.start, apply[i], end)
		default:
			// A gap before an intact segment: its frames are applied
			// (and it is removed once they are in the store).
			missing = fmt.Sprintf("%d-%d", sc.gapFrom, sc.seg.start-1)
			if sc.gapFrom == sc.seg.start-1 {
				missing = strconv.FormatUint(sc.gapFrom, 10)
			}
			l.log.Error("ledger: log gap; the ledger stays unhealthy until `kms-responder ledger acknowledge`", "err", d, "missing", missing)
			damage = append(damage, fmt.Sprintf("%v; sequence numbers not read: %s", d, missing))
			continue
		}
		to, err := quarantineName(sc.seg.dir, sc.seg.path)
		if err != nil {
			return fmt.Errorf("ledger: quarantine %s: %w (%w)", sc.seg.path, err, d)
		}
		setAside[i] = to
		where := d.Path
		if d.Offset >= 0 {
			where += fmt.Sprintf(" at offset %d", d.Offset)
		}
		damage = append(damage, fmt.Sprintf("ledger: %s: %s; set aside as %s; %d intact frames read; sequence numbers not read: %s", where, d.What, to, len(apply[i]), missing))
		l.log.Error("ledger: damaged log segment set aside; the ledger stays unhealthy until `kms-responder ledger acknowledge`",
			"err", d, "moved_to", to, "intact_frames", len(apply[i]), "missing", missing)
	}
	if len(damage) > 0 {
		if err := l.recordDamage(strings.Join(damage, "\n")); err != nil {
			return err
		}
	}
	var remove []string
	for i := range scans {
		sc := &scans[i]
		if s, ok := sc.lastSeq(); ok {
			// Never reuse a sequence number some file holds.
			last = max(last, s)
		}
		frames := apply[i]
		switch {
		case setAside[i] != "":
			if err := l.dir.rename(sc.seg.path, setAside[i]); err != nil {
				return fmt.Errorf("ledger: quarantine %s: %w", sc.seg.path, err)
			}
		case sc.damage != nil:
			remove = append(remove, sc.seg.path)
		case sc.tornAt > 0:
			// The trace of a crash: the batch being synced was never
			// acknowledged (acknowledgement follows the sync of every
			// earlier byte).
			l.log.Warn("ledger: log ends in a crash-torn batch; it was never acknowledged", "path", sc.seg.path, "offset", sc.tornAt, "intact_frames", len(sc.frames))
			remove = append(remove, sc.seg.path)
		case sc.tornAt < 0:
			l.log.Warn("ledger: damaged log segment holds only activations already in the store; removing it", "path", sc.seg.path)
			remove = append(remove, sc.seg.path)
		default:
			remove = append(remove, sc.seg.path)
		}
		var todo []entry
		for i := range frames {
			if f := &frames[i]; f.seq > l.appliedSeq {
				todo = append(todo, entry{seq: f.seq, act: &f.act})
			}
		}
		for len(todo) > 0 {
			n := min(len(todo), 4*applyBatch)
			if err := l.applyEntries(todo[:n]); err != nil {
				return fmt.Errorf("ledger: recover from %s: %w", sc.seg.path, err)
			}
			todo = todo[n:]
		}
		if len(frames) > 0 {
			l.log.Info("ledger: applied log after restart", "path", sc.seg.path, "frames", len(frames))
		}
	}
	// Everything is in the store now: remove the old segments before
	// creating the new one (whose name one of them may have).
	for _, p := range remove {
		if err := l.dir.remove(p); err != nil {
			return fmt.Errorf("ledger: remove applied log segment: %w", err)
		}
	}
	if len(remove) > 0 {
		if err := syncDir(l.dir); err != nil {
			return fmt.Errorf("ledger: sync data directory: %w", err)
		}
	}
	l.nextSeq = last + 1
	seg, err := l.wal.create(l.nextSeq)
	if err != nil {
		return err
	}
	l.segments = []segment{seg}
	return nil
}

// missingSeqs lists the sequence numbers from start on that frames (in
// order) lack, up to end-1 when end is set (the next segment's start), as
// ranges; after the last frame of the newest segment it says so.
func missingSeqs(start uint64, frames []frame, end uint64) string {
	var out []string
	add := func(a, b uint64) {
		if a == b {
			out = append(out, strconv.FormatUint(a, 10))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", a, b))
		}
	}
	next := start
	for _, f := range frames {
		if f.seq > next {
			add(next, f.seq-1)
		}
		next = f.seq + 1
	}
	switch {
	case end > next:
		add(next, end-1)
	case end == 0:
		out = append(out, fmt.Sprintf("any from %d on that the damage hid at the end of the newest segment", next))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// recordDamage adds what a quarantine lost to the store, so that the
// ledger stays unhealthy across restarts until Acknowledge.
func (l *Ledger) recordDamage(msg string) error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		old, err := getSealed(meta, "meta \"damage\"", keyDamage)
		if err != nil {
			return err
		}
		if len(old) > 0 {
			msg = string(old) + "\n" + msg
		}
		return putSealed(meta, keyDamage, []byte(msg))
	})
	if err != nil {
		return fmt.Errorf("ledger: record the quarantine in the store: %w", err)
	}
	l.damage.Store(&errorBox{fmt.Errorf("ledger: damaged log quarantined, not yet acknowledged: %s", msg)})
	return nil
}

// Acknowledge clears the damage a quarantine recorded in the store in dir,
// so that serve runs healthy again: the operator's explicit acceptance of
// what was lost (kms-responder ledger acknowledge). It returns what was
// recorded, or "" when there was nothing to acknowledge. The *.corrupt files
// are left in place. It fails while serve runs.
func Acknowledge(dir string, lockTimeout time.Duration) (string, error) {
	return AcknowledgeRoot(dir, nil, lockTimeout)
}

// AcknowledgeRoot is Acknowledge in the data directory root holds (opened
// and checked by the caller), named dir in messages; nil opens dir.
func AcknowledgeRoot(dir string, root *os.Root, lockTimeout time.Duration) (string, error) {
	held, err := openExistingDataDir(dir, root)
	if err != nil {
		return "", err
	}
	defer held.close()
	path := held.join(FileName)
	exists, err := checkStoreFile(held, path, false)
	if err != nil || !exists {
		return "", err
	}
	opts := Options{LockTimeout: lockTimeout}
	if err := opts.setDefaults(); err != nil {
		return "", err
	}
	db, err := bolt.Open(path, 0o600, boltOptions(&opts, false, held))
	if errors.Is(err, berrors.ErrTimeout) {
		return "", fmt.Errorf("ledger: %s is locked by another process (stop kms-responder serve first)", path)
	}
	if err != nil {
		return "", fmt.Errorf("ledger: open %s: %w", path, err)
	}
	defer db.Close()
	var was string
	err = db.Update(func(tx *bolt.Tx) error {
		if s, err := readSchema(tx); err != nil || s < 2 || s > schemaVersion {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		v, err := getSealed(meta, "meta \"damage\"", keyDamage)
		if err != nil || v == nil {
			return err
		}
		was = string(v)
		return meta.Delete(keyDamage)
	})
	if err != nil {
		return "", fmt.Errorf("ledger: acknowledge: %w", err)
	}
	return was, nil
}

// quarantineName returns the name a damaged file is set aside as:
// <path>.corrupt, or .corrupt.N when that exists.
func quarantineName(dir *dataDir, path string) (string, error) {
	to := path + ".corrupt"
	for n := 1; ; n++ {
		_, err := dir.lstat(to)
		if errors.Is(err, fs.ErrNotExist) {
			return to, nil
		}
		if err != nil {
			return "", err
		}
		to = fmt.Sprintf("%s.corrupt.%d", path, n)
	}
}

// readSegment reads one log segment: a regular file (never through a
// symbolic link), of plausible size.
func readSegment(dir *dataDir, path string) ([]byte, error) {
	f, err := dir.openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("ledger: open log segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ledger: log segment: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ledger: log segment %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > maxSegmentRead {
		return nil, fmt.Errorf("ledger: log segment %s is %d bytes, more than the %d a segment can hold", path, fi.Size(), maxSegmentRead)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		return nil, fmt.Errorf("ledger: read log segment: %w", err)
	}
	return b, nil
}

// guardFaults runs fn, turning what a damaged store makes bbolt do while
// it reads the store through its memory map (a memory fault inside the
// map, or a panic bbolt raises on a page that makes no sense) into a
// *DamageError about path instead of a crash with a stack trace. Any other
// panic is a bug, not damage: it is reported as an internal error naming
// where it happened, so that no one restores an older copy of a good store
// (and loses what was recorded since) because of it.
func guardFaults(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			site := panicSite()
			if !isStoreFault(r, site) {
				err = fmt.Errorf("ledger: %s: internal error at %s (a bug, not damage to the store: keep ledger.db as it is and report this message): %v", path, site, r)
				return
			}
			err = &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("reading the store failed: %v", r),
				Lost: "its pages are damaged; restore ledger.db from a copy (see responder/README.md, Recovery)"}
		}
	}()
	return fn()
}

// nilPageLimit bounds the addresses a nil-pointer dereference faults at;
// the store's map never starts that low.
const nilPageLimit = 1 << 16

// isStoreFault reports whether the panic r, raised at site, is what a
// damaged store causes: a memory fault at an address a nil pointer cannot
// reach, or any panic raised inside bbolt other than a nil dereference.
func isStoreFault(r any, site string) bool {
	if f, ok := r.(interface{ Addr() uintptr }); ok && f.Addr() >= nilPageLimit {
		return true
	}
	if e, ok := r.(runtime.Error); ok && strings.Contains(e.Error(), "nil pointer dereference") {
		return false
	}
	return strings.HasPrefix(site, "go.etcd.io/bbolt")
}

// panicSite returns the function and line a recovered panic was raised at,
// when called from the deferred function that recovered it: the first
// frame past the runtime's panic machinery.
func panicSite() string {
	pc := make([]uintptr, 64)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	inRuntime := false
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "runtime."):
			inRuntime = true
		case inRuntime:
			return fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "an unknown place"
		}
	}
}
