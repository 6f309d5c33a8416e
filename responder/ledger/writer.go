package ledger

import (
	"context"
	"fmt"
)

// op is one activation waiting for the log writer; done receives the
// result of the fsync that made it durable.
type op struct {
	act  *Activation
	done chan error
}

// entry is a logged activation waiting to be applied to the store.
type entry struct {
	seq uint64
	act Activation
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
	if err := a.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{act: &a, done: make(chan error, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.queue <- o:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Prune applies pending activations, then removes audit records older than
// the retention and count entries older than the count window or beyond
// their application's cap. The ledger also prunes every PruneInterval.
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
