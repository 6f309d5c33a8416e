package ledger

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// applyBatch is how many pending activations make the applier start
// without waiting for its interval.
const applyBatch = 65536

// applyInterval is the longest an acknowledged activation waits before it
// is applied to the store.
const applyInterval = 2 * time.Second

// runApply is the applier goroutine: it applies logged activations to the
// store in large transactions, prunes, and deletes applied log segments.
func (l *Ledger) runApply() {
	defer close(l.applyDone)
	tick := time.NewTicker(applyInterval)
	defer tick.Stop()
	pruneTick := time.NewTicker(l.opts.PruneInterval)
	defer pruneTick.Stop()
	for {
		select {
		case <-tick.C:
			l.applyPending()
		case <-l.kick:
			l.applyPending()
		case req := <-l.applyReqs:
			err := l.applyPending()
			if err == nil && req.prune {
				err = l.guardStore(l.prune)
			}
			req.done <- err
		case <-pruneTick.C:
			if err := l.applyPending(); err == nil {
				if err := l.guardStore(l.prune); err != nil {
					l.log.Warn("ledger: prune failed", "err", err)
				}
			}
		case <-l.stopApply:
			l.applyPending()
			return
		}
	}
}

// applyPending applies every pending activation in one transaction, then
// deletes the log segments it has fully applied.
func (l *Ledger) applyPending() error {
	l.amu.Lock()
	if len(l.pending) == 0 {
		l.amu.Unlock()
		// Nothing to apply, but a read or a prune follows: after a
		// failed commit they must see the store, not stale memory.
		return l.reloadIfStale()
	}
	// Swap in the spare slice, so that neither side regrows a large one
	// every cycle.
	todo := l.pending
	l.pending, l.spare = l.spare[:0], nil
	l.amu.Unlock()
	err := l.guardStore(func() error {
		err := l.applyStale(&todo)
		if err == nil && len(todo) > 0 {
			err = l.applyEntries(todo)
		}
		return err
	})
	l.amu.Lock()
	if err != nil {
		l.pending = append(todo, l.pending...)
		l.applyErr.Store(&errorBox{err})
		l.log.Error("ledger: applying the log to the store failed", "err", err, "pending", len(l.pending))
	} else {
		l.applyErr.Store(nil)
		clear(todo) // let the applied activations go
		l.spare = todo[:0]
	}
	l.roomCond.Broadcast()
	l.amu.Unlock()
	if err == nil {
		l.dropAppliedSegments()
		l.updateSize()
	}
	return err
}

// guardStore runs fn, store transactions of the applier, under the guard
// Open runs under (guardFaults): a panic bbolt raises on a damaged store,
// or a fault reading its map, becomes an error (a *DamageError) that makes
// the ledger unhealthy instead of killing the process. After one, bbolt's
// state in memory (its freelist, the transaction it was in) is not
// trusted: the store is not written again until a restart, whose pre-open
// checks judge the file anew, and guardStore returns that error at once.
func (l *Ledger) guardStore(fn func() error) error {
	if b := l.storeFault.Load(); b != nil {
		return b.err
	}
	panicked := true
	err := guardFaults(l.db.Path(), func() error {
		err := fn()
		panicked = false
		return err
	})
	if panicked {
		l.storeFault.Store(&errorBox{err})
		l.storeStale.Store(true)
		l.log.Error("ledger: the store failed inside bbolt; nothing more is written to it until a restart", "err", err)
	}
	return err
}

// applyStale reloads the store's state after a failed commit (see
// updateIndexed) and drops from *todo the activations the store turns out
// to hold already: a commit that reported failure but took effect must
// not apply them twice (a renewal counted twice, a client added twice).
func (l *Ledger) applyStale(todo *[]entry) error {
	if !l.storeStale.Load() {
		return nil
	}
	if err := l.reloadIfStale(); err != nil {
		return err
	}
	n := 0
	for n < len(*todo) && (*todo)[n].seq <= l.appliedSeq {
		n++
	}
	if n > 0 {
		clear((*todo)[:n])
		*todo = (*todo)[n:]
	}
	return nil
}

// recordsFillPercent is how full bbolt packs the pages of bucketRecords
// when a transaction splits them. Nearly every key the applier puts there
// sorts after all others (a new last request), so pages fill from the
// left and are never written into again: packing them full, rather than
// bbolt's default half, halves the pages the records take.
const recordsFillPercent = 1.0

// applyEntries writes entries to the store in one transaction and records
// the last sequence number applied.
func (l *Ledger) applyEntries(entries []entry) error {
	var added, refusals, dropped uint64
	last := entries[len(entries)-1].seq
	err := l.updateIndexed(func(tx *bolt.Tx) ([]indexChange, error) {
		b := buckets{
			meta:    tx.Bucket(bucketMeta),
			records: tx.Bucket(bucketRecords),
			count:   tx.Bucket(bucketCount),
			cap:     tx.Bucket(bucketCap),
			refused: tx.Bucket(bucketRefused),
			refTS:   tx.Bucket(bucketRefTS),
		}
		b.records.FillPercent = recordsFillPercent
		if k, _ := b.refused.Cursor().First(); k == nil {
			b.noRefused = true
		}
		var changes []indexChange
		var err error
		if added, changes, err = l.applyAudit(&b, entries); err != nil {
			return nil, err
		}
		if refusals, dropped, err = l.applyRefusalBudget(&b); err != nil {
			return nil, err
		}
		if err := l.applyCounts(&b, entries); err != nil {
			return nil, err
		}
		if err := putCounterValue(b.meta, keyApplied, last); err != nil {
			return nil, err
		}
		if added > 0 {
			return changes, putCounterValue(b.meta, keyClients, l.clients.Load()+added)
		}
		return changes, nil
	})
	if err != nil {
		return fmt.Errorf("ledger: apply %d logged activations to the store: %w", len(entries), err)
	}
	l.appliedSeq = last
	l.clients.Add(added)
	l.refusals.Store(refusals)
	l.dropped.Add(dropped)
	l.commits.Add(1)
	return nil
}

// applyAudit merges entries into the audit records. It merges all of one
// client's entries before writing its record once, under the key of its
// new last request: a renewal deletes the record's old key, and new keys
// are put in key order, nearly all after every key stored (appends to the
// rightmost page). It returns the index changes to make once the
// transaction commits.
func (l *Ledger) applyAudit(b *buckets, entries []entry) (added uint64, changes []indexChange, err error) {
	order := make([]int, len(entries))
	keys := make([][]byte, len(entries))
	for i := range entries {
		order[i] = i
		keys[i] = b.arena.clientKey(entries[i].act.CMID, entries[i].act.App)
	}
	slices.SortStableFunc(order, func(x, y int) int { return bytes.Compare(keys[x], keys[y]) })
	type put struct{ k, v []byte }
	var dels [][]byte
	puts := make([]put, 0, len(entries))
	changes = make([]indexChange, 0, len(entries))
	for start := 0; start < len(order); {
		k := keys[order[start]]
		end := start + 1
		for end < len(order) && bytes.Equal(keys[order[end]], k) {
			end++
		}
		first := entries[order[start]].act
		refusedOnly := true
		for _, i := range order[start:end] {
			refusedOnly = refusedOnly && entries[i].act.Result != 0
		}
		id := clientID(k)
		var c Client
		oldKey, v, inClash, err := l.index.find(b.records, &id, b.arena.take(40))
		if err != nil {
			return 0, nil, err
		}
		if v == nil {
			// A client never answered before: its record lives within
			// the refusal budget until it is answered.
			done, err := l.applyRefused(b, k, entries, order[start:end], refusedOnly, &c)
			if err != nil {
				return 0, nil, err
			}
			if done {
				start = end
				continue
			}
			added++
		} else {
			// Never replace a record that changed on disk: the apply
			// fails and the ledger reports it (see verifyStore).
			if c, err = decodeRecord("client record", oldKey, v); err != nil {
				return 0, nil, err
			}
		}
		for _, i := range order[start:end] {
			c.merge(entries[i].act)
		}
		newKey := b.arena.tsKey(c.LastSeen, first.CMID, first.App)
		if oldKey != nil && !bytes.Equal(oldKey, newKey) {
			dels = append(dels, oldKey)
		}
		puts = append(puts, put{newKey, b.arena.sealedClient(newKey, &c)})
		ts, _, _ := splitRecordKey(newKey)
		changes = append(changes, indexChange{id: id, ts: ts, isNew: oldKey == nil, inClash: inClash})
		start = end
	}
	slices.SortFunc(dels, bytes.Compare)
	for _, k := range dels {
		if err := b.records.Delete(k); err != nil {
			return 0, nil, fmt.Errorf("ledger: move client record: %w", err)
		}
	}
	slices.SortFunc(puts, func(x, y put) int { return bytes.Compare(x.k, y.k) })
	for _, p := range puts {
		if err := b.records.Put(p.k, p.v); err != nil {
			return 0, nil, fmt.Errorf("ledger: store client record: %w", err)
		}
	}
	return added, changes, nil
}

// applyCounts replays the batch's count operations on the applications'
// stored counts: every counted activation expires its application's clients
// last seen a count window before it, then adds its client, through the
// same CountSet the host runs in memory and in the same (log) order, so the
// stored count is the host's count whatever the clock did. Caps only grow.
func (l *Ledger) applyCounts(b *buckets, entries []entry) error {
	sets := map[guid.GUID]*storedCount{}
	for i := range entries {
		a := entries[i].act
		if !a.Counted && a.Cap == 0 {
			continue
		}
		sc := sets[a.App]
		if sc == nil {
			var err error
			if sc, err = loadCount(b, a.App); err != nil {
				return err
			}
			sets[a.App] = sc
		}
		replayCount(sc.set, a, l.opts.CountWindow)
	}
	for app, sc := range sets {
		if err := sc.store(b, app); err != nil {
			return err
		}
	}
	return nil
}

// replayCount runs one logged activation's count operation on its
// application's set: raise the cap to the one the activation carries and,
// when it was counted, expire the clients last seen a count window before
// it and add its client. The store (applyCounts) and the log writer's
// durable counts (logBatch) both replay the log through it, so the count
// the writer reports for an activation is the count the store holds at it.
func replayCount(set *CountSet, a *Activation, window time.Duration) {
	set.RaiseCap(a.Cap)
	if a.Counted {
		set.Expire(a.Time.Add(-window))
		set.Add(a.CMID, a.Time)
	}
}

// storedCount is an application's count as loaded from the store, and the
// set the batch turns it into.
type storedCount struct {
	stored map[guid.GUID][]byte // CMID → encoded last-seen, as stored
	capN   int
	set    *CountSet
}

// loadCount reads an application's cap and count bucket.
func loadCount(b *buckets, app guid.GUID) (*storedCount, error) {
	capN, err := capOf(b.cap, app[:])
	if err != nil {
		return nil, err
	}
	sc := &storedCount{stored: map[guid.GUID][]byte{}, capN: capN, set: NewCountSet()}
	sc.set.RaiseCap(sc.capN)
	bucket := b.count.Bucket(app[:])
	if bucket == nil {
		return sc, nil
	}
	var all []Seen
	err = bucket.ForEach(func(k, sv []byte) error {
		t, err := decodeCountEntry(app, k, sv)
		if err != nil {
			// Never drop or replace an entry that changed on disk.
			return err
		}
		v := sv[:len(sv)-sealLen]
		sc.stored[guid.GUID(k)] = bytes.Clone(v)
		all = append(all, Seen{CMID: guid.GUID(k), LastSeen: t})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read count of %s: %w", app, err)
	}
	sc.set.Load(all, time.Time{})
	return sc, nil
}

// store writes the differences between the set and what was loaded.
func (sc *storedCount) store(b *buckets, app guid.GUID) error {
	if n := sc.set.Cap(); n > sc.capN {
		if err := putSealed(b.cap, app[:], encodeCap(n)); err != nil {
			return fmt.Errorf("ledger: store cap of %s: %w", app, err)
		}
	}
	bucket, err := b.count.CreateBucketIfNotExists(app[:])
	if err != nil {
		return fmt.Errorf("ledger: count bucket for %s: %w", app, err)
	}
	for id := range sc.stored {
		if _, ok := sc.set.seen[id]; !ok {
			if err := bucket.Delete(id[:]); err != nil {
				return fmt.Errorf("ledger: delete count entry of %s: %w", app, err)
			}
		}
	}
	for id, t := range sc.set.seen {
		v := encodeSeen(t)
		if old, ok := sc.stored[id]; ok && bytes.Equal(old, v) {
			continue
		}
		if err := bucket.Put(id[:], seal(countSealKey(app, id[:]), v)); err != nil {
			return fmt.Errorf("ledger: store count entry of %s: %w", app, err)
		}
	}
	return nil
}

// dropAppliedSegments deletes the log segments every activation of which
// is in the store: those followed by a segment starting at or below
// appliedSeq+1.
func (l *Ledger) dropAppliedSegments() {
	l.amu.Lock()
	var drop []segment
	for len(l.segments) > 1 && l.segments[1].start <= l.appliedSeq+1 {
		drop = append(drop, l.segments[0])
		l.segments = l.segments[1:]
	}
	l.amu.Unlock()
	for _, s := range drop {
		if err := l.dir.remove(s.path); err != nil {
			l.log.Warn("ledger: cannot remove applied log segment", "path", s.path, "err", err)
		}
	}
	if len(drop) > 0 {
		syncDir(l.dir)
	}
}

// buckets are the top-level buckets of one transaction, and what the
// transaction's keys and values are carved from.
type buckets struct {
	meta, records, count, cap, refused, refTS *bolt.Bucket
	// noRefused is set while the refused bucket is known to be empty, so
	// that a new client's refusal record need not be looked up.
	noRefused bool
	arena     arena
}

// applyRefused handles the entries (indexes idx) of a client that has no
// audit record. If they are all refusals, it merges them into the client's
// refusal record and reports done. Otherwise the client is answered now: it
// moves the refusal record, if any, into *c (which the caller then stores
// as the new audit record) and reports not done.
func (l *Ledger) applyRefused(b *buckets, k []byte, entries []entry, idx []int, refusedOnly bool, c *Client) (bool, error) {
	if b.noRefused && !refusedOnly {
		return false, nil
	}
	var old Client
	var oldTS []byte
	v, err := getSealed(b.refused, "refusal record", k)
	if err != nil {
		return false, err
	}
	if v != nil {
		r, err := DecodeClient(v)
		if err != nil {
			return false, err
		}
		old = r
		oldTS = tsKey(r.LastSeen, r.CMID, r.App)
	}
	if !refusedOnly {
		if oldTS != nil {
			*c = old
			if err := b.refTS.Delete(oldTS); err != nil {
				return false, fmt.Errorf("ledger: update refusal index: %w", err)
			}
		}
		if v != nil {
			if err := b.refused.Delete(k); err != nil {
				return false, fmt.Errorf("ledger: move refusal record: %w", err)
			}
			if err := putCounter(b.meta, keyRefusals, -1); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	isNew := v == nil
	for _, i := range idx {
		old.merge(entries[i].act)
	}
	if err := b.refused.Put(k, b.arena.sealedClient(k, &old)); err != nil {
		return false, fmt.Errorf("ledger: store refusal record: %w", err)
	}
	b.noRefused = false
	newTS := b.arena.tsKey(old.LastSeen, old.CMID, old.App)
	if !bytes.Equal(oldTS, newTS) {
		if oldTS != nil {
			if err := b.refTS.Delete(oldTS); err != nil {
				return false, fmt.Errorf("ledger: update refusal index: %w", err)
			}
		}
		if err := b.refTS.Put(newTS, nil); err != nil {
			return false, fmt.Errorf("ledger: store refusal index: %w", err)
		}
	}
	if isNew {
		if err := putCounter(b.meta, keyRefusals, 1); err != nil {
			return false, err
		}
	}
	return true, nil
}

// putCounter adds delta to a meta counter.
func putCounter(meta *bolt.Bucket, key []byte, delta int64) error {
	n, err := getCounter(meta, key)
	if err != nil {
		return err
	}
	if delta < 0 && n < uint64(-delta) {
		n = 0
	} else {
		n = uint64(int64(n) + delta)
	}
	return putCounterValue(meta, key, n)
}

// applyRefusalBudget drops the oldest refusal records beyond MaxRefusals
// and returns how many are kept and how many it dropped.
func (l *Ledger) applyRefusalBudget(b *buckets) (kept, dropped uint64, err error) {
	if kept, err = getCounter(b.meta, keyRefusals); err != nil {
		return 0, 0, err
	}
	limit := uint64(l.opts.MaxRefusals)
	if kept <= limit {
		return kept, 0, nil
	}
	var stale [][]byte
	cur := b.refTS.Cursor()
	for k, _ := cur.First(); k != nil && uint64(len(stale)) < kept-limit; k, _ = cur.Next() {
		stale = append(stale, bytes.Clone(k))
	}
	for _, k := range stale {
		if err := b.refTS.Delete(k); err != nil {
			return 0, 0, fmt.Errorf("ledger: trim refusal index: %w", err)
		}
		if len(k) == 40 && b.refused.Get(k[8:]) != nil {
			if err := b.refused.Delete(k[8:]); err != nil {
				return 0, 0, fmt.Errorf("ledger: drop refusal record: %w", err)
			}
			dropped++
		}
	}
	kept -= min(kept, dropped)
	if len(stale) == 0 {
		kept = 0 // the counter disagreed with the index: trust the index
	}
	if err := putCounterValue(b.meta, keyRefusals, kept); err != nil {
		return 0, 0, err
	}
	return kept, dropped, nil
}
