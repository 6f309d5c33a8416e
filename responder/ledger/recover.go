package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
)

// recover checks the log segments (see scanLog), applies their activations
// newer than the store's applied sequence number, deletes the segments and
// starts a new one. Damage refuses the start (returning the first
// *DamageError) before anything is changed, unless Options.Quarantine is
// set: then a damaged segment's readable frames before the damage are
// applied, the file is renamed to *.corrupt and the ledger stays unhealthy.
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
	last := l.appliedSeq
	var remove []string
	for i := range scans {
		sc := &scans[i]
		if s, ok := sc.lastSeq(); ok {
			// Never reuse a sequence number some file holds.
			last = max(last, s)
		}
		frames := sc.frames
		switch d := sc.damage; {
		case d != nil && d.Offset >= 0:
			to, err := quarantine(sc.seg.dir, sc.seg.path)
			if err != nil {
				return fmt.Errorf("ledger: quarantine %s: %w (%w)", sc.seg.path, err, d)
			}
			l.log.Error("ledger: damaged log segment set aside; the ledger stays unhealthy until it is repaired", "err", d, "moved_to", to)
			if d.Offset == 0 {
				frames = nil // misnamed: its frames cannot be placed
			}
			l.damage.Store(&errorBox{fmt.Errorf("%w (set aside as %s)", d, to)})
		case d != nil:
			l.log.Error("ledger: log gap; the ledger stays unhealthy until it is repaired", "err", d)
			l.damage.Store(&errorBox{d})
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

// quarantine renames a damaged file to <path>.corrupt (or .corrupt.N when
// that exists) and returns the new name.
func quarantine(dir *dataDir, path string) (string, error) {
	to := path + ".corrupt"
	for n := 1; ; n++ {
		if _, err := dir.lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.corrupt.%d", path, n)
	}
	if err := dir.rename(path, to); err != nil {
		return "", err
	}
	return to, nil
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

// guardFaults runs fn, turning a panic or memory fault inside it (bbolt
// reading a damaged store through its memory map) into a *DamageError
// about path instead of a crash with a stack trace.
func guardFaults(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("reading the store failed: %v", r),
				Lost: "its pages are damaged; restore ledger.db from a copy (see responder/README.md, Recovery)"}
		}
	}()
	return fn()
}
