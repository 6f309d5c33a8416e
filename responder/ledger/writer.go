package ledger

import (
	"context"
	"fmt"
)

// op is one activation waiting for the log writer. It lives in its batch's
// ops (one slice per batch, not an allocation per activation) and the
// applier's entry points at its activation, so it is never copied on its way
// to the store.
type op struct {
	act Activation
	// count is the activation's application count in the log right after
	// it (set by the log writer before the batch is done; see
	// Pending.Count).
	count int
}

// batch is the activations appended to the log with one write and one
// sync. Enqueue adds to the batch being gathered; the log writer takes it
// whole, logs it, sets err and closes done: one completion wakes every
// waiter of the batch.
type batch struct {
	ops  []op
	done chan struct{}
	err  error // valid once done is closed
}

func newBatch(capacity int) *batch {
	return &batch{ops: make([]op, 0, capacity), done: make(chan struct{})}
}

// entry is a logged activation waiting to be applied to the store.
type entry struct {
	seq uint64
	act *Activation
}

// applyReq asks the applier to apply everything pending now (and to prune
// when prune is set).
type applyReq struct {
	prune bool
	done  chan error
}

// Record durably writes one activation: it returns nil only after the
// activation has been appended to the write-ahead log and the log has been
// synced to disk. Concurrent calls share one append and one sync (group
// commit). The store itself is updated from the log in the background; reads
// through this Ledger always see acknowledged activations. If ctx ends
// first, Record returns ctx.Err() and the activation may or may not be
// stored.
func (l *Ledger) Record(ctx context.Context, a Activation) error {
	p, err := l.Enqueue(ctx, a)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Pending is an activation queued for the log.
type Pending struct {
	b *batch
	i int // index in b.ops
}

// Enqueue queues one activation for the log and returns without waiting for
// the sync; Wait on the result to learn when it is durable. Activations
// reach the log, and the store, in the order they were enqueued: a host
// that updates its in-memory count and enqueues under one lock gets a store
// that replays its count operations in the order it performed them (see
// CountSet). Enqueue blocks only while the batch being gathered is full
// (MaxBatch).
func (l *Ledger) Enqueue(ctx context.Context, a Activation) (Pending, error) {
	if err := a.validate(); err != nil {
		return Pending{}, err
	}
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	q := &l.q
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Pending{}, ErrClosed
		}
		b := q.next
		if n := len(b.ops); n < l.opts.MaxBatch {
			b.ops = append(b.ops, op{act: a})
			// Wake the writer only when it waits for this: the first
			// activation of a batch, the size it lingers for, or a
			// full batch.
			wake := n == 0 || n+1 == q.lingerFor || n+1 == l.opts.MaxBatch
			q.mu.Unlock()
			if wake {
				q.signal()
			}
			return Pending{b: b, i: n}, nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return Pending{}, ctx.Err()
		}
	}
}

// Wait returns nil once the activation is in the log and the log synced, or
// the error that prevented it, or ctx.Err() if ctx ends first (the
// activation may then still become durable).
func (p Pending) Wait(ctx context.Context) error {
	if p.b == nil {
		return fmt.Errorf("ledger: Wait on an activation that was never enqueued")
	}
	select {
	case <-p.b.done:
		return p.b.err
	default:
	}
	select {
	case <-p.b.done:
		return p.b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Count returns the number of clients in the activation's application
// count right after it in the log: the count the durable log holds at this
// activation, which is what a restart rebuilds at this point (later
// activations only add to it, or expire clients by time). Call it only
// after Wait returned nil; it is 0 for an activation that is not counted.
// A host answers with this count rather than the one it
// computed in memory: an earlier activation counted in memory whose write
// failed is in the memory count until the host reverts it, but never in
// this one.
func (p Pending) Count() int {
	if p.b == nil {
		return 0
	}
	return p.b.ops[p.i].count
}

// Prune applies pending activations, then removes audit records older than
// the retention. Count entries older than the count window stay until an
// activation of their application expires them (or the next Open): counts
// change only as the host's do. The ledger also prunes every PruneInterval.
func (l *Ledger) Prune(ctx context.Context) error {
	return l.applyNow(ctx, true)
}

// Flush applies every acknowledged activation to the store now.
func (l *Ledger) Flush(ctx context.Context) error {
	return l.applyNow(ctx, false)
}

func (l *Ledger) applyNow(ctx context.Context, prune bool) error {
	req := applyReq{prune: prune, done: make(chan error, 1)}
	select {
	case l.applyReqs <- req:
	case <-l.applyDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitForRoom blocks while the applier is MaxPending activations behind,
// and fails when it is that far behind because the store cannot be written.
func (l *Ledger) waitForRoom() error {
	l.amu.Lock()
	defer l.amu.Unlock()
	for len(l.pending) >= l.opts.MaxPending {
		if b := l.applyErr.Load(); b != nil {
			return fmt.Errorf("ledger: %d activations wait for a store that cannot be written: %w", len(l.pending), b.err)
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
		l.roomCond.Wait()
	}
	return nil
}
