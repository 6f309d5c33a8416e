package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/responder/guid"
)

// op is one unit of work for the writer goroutine. Exactly one of act,
// identity and prune is set. done receives the commit's result.
type op struct {
	act      *Activation
	identity []byte
	prune    bool
	done     chan error
}

// Record durably writes one activation: it returns nil only after the
// transaction holding it has been committed and synced to disk. Concurrent
// calls are batched into one transaction. If ctx ends first, Record returns
// ctx.Err(); the activation may or may not be stored.
func (l *Ledger) Record(ctx context.Context, a Activation) error {
	if err := a.validate(); err != nil {
		return err
	}
	return l.submit(ctx, &op{act: &a})
}

// Prune removes audit records older than the retention and count entries
// older than the count window or beyond their application's cap. The writer
// also prunes on its own every PruneInterval.
func (l *Ledger) Prune(ctx context.Context) error {
	return l.submit(ctx, &op{prune: true})
}

// submit hands o to the writer and waits for its commit.
func (l *Ledger) submit(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.done = make(chan error, 1)
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

// run is the writer goroutine: it takes the first queued op, gathers every
// op queued behind it up to MaxBatch, commits them in one transaction and
// reports the result to each. While a commit is syncing, new ops queue up
// and form the next batch: this is the group commit.
func (l *Ledger) run() {
	defer close(l.done)
	ticker := time.NewTicker(l.opts.PruneInterval)
	defer ticker.Stop()
	batch := make([]*op, 0, l.opts.MaxBatch)
	for {
		select {
		case o, ok := <-l.queue:
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
			l.commitBatch(batch)
			clear(batch)
		case <-ticker.C:
			if err := l.prune(); err != nil {
				l.log.Warn("ledger: prune failed", "err", err)
			}
		}
	}
}

// commitBatch writes the activations and identities of batch in one
// transaction, then runs any prune requests, and answers every op.
func (l *Ledger) commitBatch(batch []*op) {
	writes, prunes := 0, 0
	for _, o := range batch {
		if o.prune {
			prunes++
		} else {
			writes++
		}
	}
	var err error
	if writes > 0 {
		err = l.commit(batch)
		l.setErr(err)
		if err != nil {
			l.log.Error("ledger: commit failed; activations are refused until a commit succeeds", "err", err, "batch", writes)
		}
	}
	var perr error
	if prunes > 0 {
		perr = l.prune()
	}
	for _, o := range batch {
		if o.prune {
			o.done <- perr
		} else {
			o.done <- err
		}
	}
}

// commit applies the writes of batch in one read-write transaction.
func (l *Ledger) commit(batch []*op) error {
	var added uint64
	acts := 0
	trim := map[guid.GUID]bool{}
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := buckets{
			meta:     tx.Bucket(bucketMeta),
			identity: tx.Bucket(bucketIdentity),
			audit:    tx.Bucket(bucketAudit),
			auditTS:  tx.Bucket(bucketAuditTS),
			count:    tx.Bucket(bucketCount),
			cap:      tx.Bucket(bucketCap),
		}
		for _, o := range batch {
			switch {
			case o.act != nil:
				isNew, err := l.apply(&b, o.act)
				if err != nil {
					return err
				}
				if o.act.Counted {
					trim[o.act.App] = true
				}
				if isNew {
					added++
				}
				acts++
			case o.identity != nil:
				if err := b.identity.Put(keyIdentity, o.identity); err != nil {
					return fmt.Errorf("ledger: store identity: %w", err)
				}
			}
		}
		if err := l.trimCounts(&b, trim); err != nil {
			return err
		}
		if added > 0 {
			return b.meta.Put(keyClients, binary.BigEndian.AppendUint64(nil, l.clients.Load()+added))
		}
		return nil
	})
	if err != nil {
		// The rolled-back transaction may have bumped countN; force a
		// recount by trimming on the next commit of these applications.
		for app := range trim {
			l.countN[app] = MaxCap + trimSlack + 1
		}
		return fmt.Errorf("ledger: commit %d writes: %w", len(batch), err)
	}
	l.clients.Add(added)
	l.batches.Add(1)
	l.records.Add(uint64(acts))
	l.updateSize()
	return nil
}

// buckets are the top-level buckets of one transaction.
type buckets struct {
	meta, identity, audit, auditTS, count, cap *bolt.Bucket
}

// apply merges one activation into the audit record, the retention index,
// the application's count and its cap. Every step is order-independent
// (times and caps take the maximum), so batches may apply concurrent
// requests in any order.
func (l *Ledger) apply(b *buckets, a *Activation) (isNew bool, err error) {
	key := clientKey(a.CMID, a.App)
	var c Client
	if v := b.audit.Get(key); v != nil {
		old, derr := DecodeClient(v)
		if derr != nil {
			l.log.Warn("ledger: replacing corrupt client record", "cmid", a.CMID.String(), "app", a.App.String(), "err", derr)
		} else {
			c = old
			if err := b.auditTS.Delete(tsKey(old.LastSeen, a.CMID, a.App)); err != nil {
				return false, err
			}
		}
	} else {
		isNew = true
	}
	c.merge(a)
	if err := b.audit.Put(key, encodeClient(&c)); err != nil {
		return false, fmt.Errorf("ledger: store client record: %w", err)
	}
	if err := b.auditTS.Put(tsKey(c.LastSeen, a.CMID, a.App), nil); err != nil {
		return false, fmt.Errorf("ledger: store retention index: %w", err)
	}
	if a.Counted {
		app, err := b.count.CreateBucketIfNotExists(a.App[:])
		if err != nil {
			return false, fmt.Errorf("ledger: count bucket for %s: %w", a.App, err)
		}
		seen := a.Time
		if v := app.Get(a.CMID[:]); v != nil {
			if old, err := decodeSeen(v); err == nil && old.After(seen) {
				seen = old
			}
		}
		if seen.Equal(a.Time) {
			if v := app.Get(a.CMID[:]); v == nil {
				l.countN[a.App]++
			}
		}
		if err := app.Put(a.CMID[:], encodeSeen(seen)); err != nil {
			return false, fmt.Errorf("ledger: store count entry: %w", err)
		}
	}
	if a.Cap > 0 {
		cur := 0
		if v := b.cap.Get(a.App[:]); v != nil {
			cur, _ = decodeCap(v)
		}
		if a.Cap > cur {
			if err := b.cap.Put(a.App[:], encodeCap(a.Cap)); err != nil {
				return false, fmt.Errorf("ledger: store cap: %w", err)
			}
		}
	}
	return isNew, nil
}

// trimSlack is how many entries beyond its cap an application's count bucket
// may hold before a commit trims it, so that trimming is rare and the bucket
// stays a few pages whatever the number of clients.
const trimSlack = 64

// trimCounts trims the count buckets of the applications in apps that have
// grown past their cap plus trimSlack.
func (l *Ledger) trimCounts(b *buckets, apps map[guid.GUID]bool) error {
	for app := range apps {
		capN := capOf(b.cap, app[:])
		if capN == 0 || l.countN[app] <= capN+trimSlack {
			continue
		}
		cutoff := l.opts.Clock().Add(-l.opts.CountWindow)
		kept, err := trimCount(b.count.Bucket(app[:]), capN, cutoff)
		if err != nil {
			return fmt.Errorf("ledger: trim count of %s: %w", app, err)
		}
		l.countN[app] = kept
	}
	return nil
}
