package ledger

import "fmt"

// runLog is the log writer goroutine: it takes the first queued activation,
// gathers every one queued behind it up to MaxBatch, appends them with one
// write and one data sync, and answers each. While a sync is under way new
// activations queue up and form the next batch: this is the group commit.
func (l *Ledger) runLog() {
	defer close(l.logDone)
	batch := make([]*op, 0, l.opts.MaxBatch)
	for {
		o, ok := <-l.queue
		if !ok {
			return
		}
		batch = append(batch[:0], o)
	gather:
		for len(batch) < l.opts.MaxBatch {
			select {
			case o, ok := <-l.queue:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		err := l.logBatch(batch)
		for _, o := range batch {
			o.done <- err
		}
		clear(batch)
	}
}

// logBatch appends batch to the log, syncs it and hands it to the applier.
func (l *Ledger) logBatch(batch []*op) error {
	if err := l.waitForRoom(); err != nil {
		return err
	}
	w := &l.wal
	if w.size >= l.opts.segmentSize {
		l.rotate()
	}
	w.buf = w.buf[:0]
	entries := make([]entry, len(batch))
	var payload []byte
	for i, o := range batch {
		seq := l.nextSeq + uint64(i)
		payload = encodeActivation(payload[:0], o.act)
		w.buf = appendFrame(w.buf, seq, payload)
		entries[i] = entry{seq: seq, act: *o.act}
	}
	start := w.size
	err := w.append(w.buf)
	if err == nil {
		if err = datasync(w.f); err != nil {
			// After a failed sync the kernel may have dropped the
			// data whatever later syncs report: cut the batch.
			w.truncate(start)
			err = fmt.Errorf("ledger: sync log: %w", err)
		}
	}
	if err != nil {
		l.logErr.Store(&errorBox{err})
		l.log.Error("ledger: log write failed; activations are refused until a write succeeds", "err", err, "batch", len(batch))
		return err
	}
	l.logErr.Store(nil)
	l.nextSeq += uint64(len(batch))
	l.records.Add(uint64(len(batch)))
	l.batches.Add(1)
	l.amu.Lock()
	l.pending = append(l.pending, entries...)
	full := len(l.pending) >= applyBatch
	l.amu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// rotate starts a new segment, so that the applier can delete the old one
// once it is applied. On failure the writer keeps using the current one.
func (l *Ledger) rotate() {
	seg, err := l.wal.create(l.nextSeq)
	if err != nil {
		l.log.Warn("ledger: cannot start a new log segment", "err", err)
		return
	}
	l.amu.Lock()
	l.segments = append(l.segments, seg)
	l.amu.Unlock()
}
