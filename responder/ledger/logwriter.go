package ledger

import (
	"fmt"
	"time"
)

// runLog is the log writer goroutine: it takes the batch gathered so far
// (lingering briefly when that is far fewer than usual), appends it with one
// write and one data sync, and answers it with one completion. While a sync
// is under way new activations gather into the next batch: this is the group
// commit.
func (l *Ledger) runLog() {
	defer close(l.logDone)
	var avgSync, avgBatch float64 // moving averages: sync time (ns), batch size
	for {
		b := l.q.take(lingerBelow*avgBatch, avgBatch, min(time.Duration(avgSync/2), maxLinger),
			min(int(avgBatch*batchCapSlack)+1, l.opts.MaxBatch))
		if b == nil {
			return
		}
		start := time.Now()
		b.err = l.logBatch(b.ops)
		avgSync += ewmaWeight * (float64(time.Since(start)) - avgSync)
		avgBatch += ewmaWeight * (float64(len(b.ops)) - avgBatch)
		close(b.done)
	}
}

// Lingering. Under load, batches alternate: the clients answered by one
// sync come back while the next sync runs, so a sync that starts the moment
// the previous one ends often carries a handful of activations, and the
// next one the rest. When a batch is well below the recent average, the
// writer waits a little (at most half a sync, and never more than
// maxLinger) for it to fill up to that average: one sync then does the
// work of two. A lone client's batches are never below their average, so
// serial latency is unchanged. On a shared two-core machine this raised the
// rate at 64 connections by about a fifth.
const (
	lingerBelow = 0.75
	maxLinger   = time.Millisecond
	ewmaWeight  = 0.2
	// batchCapSlack sizes a new batch's slice above the average batch,
	// so that it rarely grows.
	batchCapSlack = 1.5
)

// logBatch appends batch to the log, syncs it and hands it to the applier.
func (l *Ledger) logBatch(batch []op) error {
	if err := l.waitForRoom(); err != nil {
		return err
	}
	w := &l.wal
	if w.size >= l.opts.segmentSize {
		l.rotate()
	}
	w.buf = w.buf[:0]
	for i := range batch {
		seq := l.nextSeq + uint64(i)
		w.payload = encodeLogActivation(w.payload[:0], &batch[i].act, i == len(batch)-1)
		w.buf = appendFrame(w.buf, seq, w.payload)
	}
	start := w.size
	err := w.append(w.buf)
	if err == nil {
		// Every activation before this batch was synced and
		// acknowledged: the mark says so from this sync on.
		if err = w.setMark(l.nextSeq - 1); err != nil {
			w.truncate(start)
		}
	}
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
	for i := range batch {
		o := &batch[i]
		if a := &o.act; a.Counted || a.Cap != 0 {
			set := l.durable[a.App]
			if set == nil {
				set = NewCountSet()
				l.durable[a.App] = set
			}
			replayCount(set, a, l.opts.CountWindow)
			if a.Counted {
				o.count = set.Len()
			}
		}
	}
	l.amu.Lock()
	for i := range batch {
		l.pending = append(l.pending, entry{seq: l.nextSeq + uint64(i), act: &batch[i].act})
	}
	full := len(l.pending) >= applyBatch
	l.amu.Unlock()
	l.nextSeq += uint64(len(batch))
	l.records.Add(uint64(len(batch)))
	l.batches.Add(1)
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
