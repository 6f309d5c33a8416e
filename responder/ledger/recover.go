package ledger

import (
	"errors"
	"fmt"
	"os"
)

// recover applies the log segments' activations newer than the store's
// applied sequence number, deletes the segments and starts a new one.
func (l *Ledger) recover() error {
	segs, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	last := l.appliedSeq
	for _, s := range segs {
		b, err := readSegment(s.path)
		if err != nil {
			return err
		}
		frames, off, ferr := readFrames(b)
		switch {
		case errors.Is(ferr, errTorn):
			// A torn tail is the normal trace of a crash. Frames
			// past it were never acknowledged: acknowledgement
			// follows the sync of every earlier byte.
			l.log.Warn("ledger: log segment ends in a torn frame", "path", s.path, "offset", off, "size", len(b), "err", ferr)
		case ferr != nil:
			// A frame with a good checksum that does not decode was
			// written by another build or damaged on disk; the
			// frames after it were acknowledged, so do not drop them.
			return fmt.Errorf("ledger: %s: %w (refusing to start rather than lose acknowledged activations)", s.path, ferr)
		}
		var todo []entry
		for i := range frames {
			if f := &frames[i]; f.seq > l.appliedSeq {
				todo = append(todo, entry{seq: f.seq, act: &f.act})
			}
			last = max(last, frames[i].seq)
		}
		for len(todo) > 0 {
			n := min(len(todo), 4*applyBatch)
			if err := l.applyEntries(todo[:n]); err != nil {
				return fmt.Errorf("ledger: recover from %s: %w", s.path, err)
			}
			todo = todo[n:]
		}
		if len(frames) > 0 {
			l.log.Info("ledger: applied log after restart", "path", s.path, "frames", len(frames))
		}
	}
	l.nextSeq = last + 1
	seg, err := l.wal.create(l.nextSeq)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s.path == seg.path {
			continue
		}
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("ledger: remove applied log segment: %w", err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("ledger: sync data directory: %w", err)
	}
	l.segments = []segment{seg}
	return nil
}

// readSegment reads one log segment, refusing implausibly large ones.
func readSegment(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: log segment: %w", err)
	}
	if fi.Size() > maxSegmentRead {
		return nil, fmt.Errorf("ledger: log segment %s is %d bytes, more than the %d a segment can hold", path, fi.Size(), maxSegmentRead)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: read log segment: %w", err)
	}
	return b, nil
}
