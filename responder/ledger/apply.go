package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/responder/guid"
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
				err = l.prune()
			}
			req.done <- err
		case <-pruneTick.C:
			if err := l.applyPending(); err == nil {
				if err := l.prune(); err != nil {
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
	todo := l.pending
	l.pending = nil
	l.amu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	err := l.applyEntries(todo)
	l.amu.Lock()
	if err != nil {
		l.pending = append(todo, l.pending...)
		l.applyErr.Store(&errorBox{err})
		l.log.Error("ledger: applying the log to the store failed", "err", err, "pending", len(l.pending))
	} else {
		l.applyErr.Store(nil)
	}
	l.roomCond.Broadcast()
	l.amu.Unlock()
	if err == nil {
		l.dropAppliedSegments()
		l.updateSize()
	}
	return err
}

// applyEntries writes entries to the store in one transaction and records
// the last sequence number applied.
func (l *Ledger) applyEntries(entries []entry) error {
	var added uint64
	trim := map[guid.GUID]bool{}
	last := entries[len(entries)-1].seq
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := buckets{
			meta:    tx.Bucket(bucketMeta),
			audit:   tx.Bucket(bucketAudit),
			auditTS: tx.Bucket(bucketAuditTS),
			count:   tx.Bucket(bucketCount),
			cap:     tx.Bucket(bucketCap),
		}
		var err error
		if added, err = l.applyAudit(&b, entries); err != nil {
			return err
		}
		if err := l.applyCounts(&b, entries, trim); err != nil {
			return err
		}
		if err := l.trimCounts(&b, trim); err != nil {
			return err
		}
		if err := b.meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, last)); err != nil {
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
		return fmt.Errorf("ledger: apply %d logged activations to the store: %w", len(entries), err)
	}
	l.appliedSeq = last
	l.clients.Add(added)
	l.commits.Add(1)
	return nil
}

// applyAudit merges entries into the audit records and the retention index.
// It works in key order (so each page of the tree is visited once) and
// merges all of one client's entries before writing its record once.
func (l *Ledger) applyAudit(b *buckets, entries []entry) (added uint64, err error) {
	order := make([]int, len(entries))
	keys := make([][]byte, len(entries))
	for i := range entries {
		order[i] = i
		keys[i] = clientKey(entries[i].act.CMID, entries[i].act.App)
	}
	slices.SortStableFunc(order, func(x, y int) int { return bytes.Compare(keys[x], keys[y]) })
	tsDel := make([][]byte, 0, len(entries)/4)
	tsPut := make([][]byte, 0, len(entries))
	for start := 0; start < len(order); {
		k := keys[order[start]]
		end := start + 1
		for end < len(order) && bytes.Equal(keys[order[end]], k) {
			end++
		}
		first := &entries[order[start]].act
		var c Client
		var oldTS []byte
		if v := b.audit.Get(k); v != nil {
			old, derr := DecodeClient(v)
			if derr != nil {
				l.log.Warn("ledger: replacing corrupt client record", "cmid", first.CMID.String(), "app", first.App.String(), "err", derr)
			} else {
				c = old
				oldTS = tsKey(old.LastSeen, first.CMID, first.App)
			}
		} else {
			added++
		}
		for _, i := range order[start:end] {
			c.merge(&entries[i].act)
		}
		if err := b.audit.Put(k, encodeClient(&c)); err != nil {
			return 0, fmt.Errorf("ledger: store client record: %w", err)
		}
		newTS := tsKey(c.LastSeen, first.CMID, first.App)
		if !bytes.Equal(oldTS, newTS) {
			if oldTS != nil {
				tsDel = append(tsDel, oldTS)
			}
			tsPut = append(tsPut, newTS)
		}
		start = end
	}
	slices.SortFunc(tsDel, bytes.Compare)
	slices.SortFunc(tsPut, bytes.Compare)
	for _, k := range tsDel {
		if err := b.auditTS.Delete(k); err != nil {
			return 0, fmt.Errorf("ledger: update retention index: %w", err)
		}
	}
	for _, k := range tsPut {
		if err := b.auditTS.Put(k, nil); err != nil {
			return 0, fmt.Errorf("ledger: store retention index: %w", err)
		}
	}
	return added, nil
}

// applyCounts merges the counted entries into their applications' counts
// and raises caps. Of one batch only the newest cap entries per application
// can survive the trim, so only those are written. apps collects the
// applications touched.
func (l *Ledger) applyCounts(b *buckets, entries []entry, apps map[guid.GUID]bool) error {
	seen := map[guid.GUID]map[guid.GUID]time.Time{}
	caps := map[guid.GUID]int{}
	for i := range entries {
		a := &entries[i].act
		if a.Cap > caps[a.App] {
			caps[a.App] = a.Cap
		}
		if !a.Counted {
			continue
		}
		m := seen[a.App]
		if m == nil {
			m = map[guid.GUID]time.Time{}
			seen[a.App] = m
		}
		if t, ok := m[a.CMID]; !ok || a.Time.After(t) {
			m[a.CMID] = a.Time
		}
	}
	for app, n := range caps {
		if n > capOf(b.cap, app[:]) {
			if err := b.cap.Put(app[:], encodeCap(n)); err != nil {
				return fmt.Errorf("ledger: store cap: %w", err)
			}
		}
	}
	for app, m := range seen {
		apps[app] = true
		list := make([]Seen, 0, len(m))
		for id, t := range m {
			list = append(list, Seen{CMID: id, LastSeen: t})
		}
		if capN := capOf(b.cap, app[:]); capN > 0 && len(list) > capN {
			SortNewestFirst(list)
			list = list[:capN]
		}
		slices.SortFunc(list, func(x, y Seen) int { return bytes.Compare(x.CMID[:], y.CMID[:]) })
		bucket, err := b.count.CreateBucketIfNotExists(app[:])
		if err != nil {
			return fmt.Errorf("ledger: count bucket for %s: %w", app, err)
		}
		for _, s := range list {
			t := s.LastSeen
			v := bucket.Get(s.CMID[:])
			if v == nil {
				l.countN[app]++
			} else if old, err := decodeSeen(v); err == nil && old.After(t) {
				continue
			}
			if err := bucket.Put(s.CMID[:], encodeSeen(t)); err != nil {
				return fmt.Errorf("ledger: store count entry: %w", err)
			}
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
		if err := os.Remove(s.path); err != nil {
			l.log.Warn("ledger: cannot remove applied log segment", "path", s.path, "err", err)
		}
	}
	if len(drop) > 0 {
		syncDir(l.dir)
	}
}

// buckets are the top-level buckets of one transaction.
type buckets struct {
	meta, audit, auditTS, count, cap *bolt.Bucket
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
