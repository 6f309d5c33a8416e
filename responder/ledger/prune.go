package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// pruneChunk bounds the deletions of one prune transaction so that queued
// activations do not wait long behind a large prune.
const pruneChunk = 10000

// prune removes expired audit records. Counts are not its business: a
// running host expires clients only when it counts an activation, and the
// applier replays exactly that (see CountSet); only Open trims counts, as a
// restarting host does when it loads them (see pruneCounts). It runs on the
// applier goroutine (or before it starts).
func (l *Ledger) prune() error {
	now := l.opts.Clock()
	cutoff := now.Add(-l.opts.Retention)
	if !timeOK(cutoff) {
		return nil
	}
	if why, err := l.clockImplausible(now); err != nil || why != "" {
		if why != "" {
			l.log.Warn("ledger: not pruning audit records", "reason", why)
		}
		return err
	}
	var from []byte
	for {
		n, next, err := l.pruneAudit(cutoff, from)
		if err != nil {
			return err
		}
		if n < pruneChunk {
			break
		}
		from = next
	}
	return nil
}

// maxClockLead is how far the clock may be past the newest answered
// client's last request for pruning to run. Answered clients' clocks are
// within hours of the host's (the host refuses skewed ones), so a clock
// further ahead than this with nobody answered since is more likely wrong
// than a long silence; either way nothing is lost by waiting: expired
// records are hidden from every count and listing, and pruning resumes
// once a client is answered at the new time.
//
// Only an answer vouches for the clock: a record whose latest request was
// refused does not (LastResult != 0). A wrong clock is exactly when
// honest clients are refused for skew, and each such refusal moves the
// record's LastSeen to the wrong time.
const maxClockLead = 24 * time.Hour

// vouchScan bounds how many of the newest records clockImplausible reads
// looking for an answered one.
const vouchScan = 1000

// clockImplausible says why now is implausibly far past the newest
// answered record (the newest record that agrees with its key and whose
// latest request was answered), or "" when
// pruning may run. Records exist but none of the newest vouchScan was
// answered: pruning waits too.
func (l *Ledger) clockImplausible(now time.Time) (string, error) {
	var newest time.Time
	found, seen := false, false
	err := l.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketRecords).Cursor()
		k, v := cur.Last()
		for tries := 0; k != nil && tries < vouchScan; k, v = cur.Prev() {
			tries++
			if len(k) != 40 {
				continue
			}
			c, err := decodeRecord("client record", k, v)
			if err != nil || !recordMatchesKey(&c, k) {
				continue
			}
			seen = true
			if c.LastResult != 0 {
				continue // a refusal vouches for nothing
			}
			newest, found = c.LastSeen, true
			return nil
		}
		return nil
	})
	switch {
	case err != nil || !seen:
		return "", err
	case !found:
		return fmt.Sprintf("none of the %d newest client records was answered at its last request (refusals, e.g. for clock skew, do not show the clock is right): if the clock (%s) is wrong, pruning would delete counts and audit records for good; pruning waits until a client is answered at this time (expired records are hidden meanwhile)",
			vouchScan, now.UTC().Format(time.RFC3339)), nil
	}
	if lead := now.Sub(newest); lead > maxClockLead {
		return fmt.Sprintf("the clock (%s) is %s past the newest answered client (%s): if the clock is wrong, pruning would delete counts and audit records for good; pruning waits until a client is answered at this time (expired records are hidden meanwhile)",
			now.UTC().Format(time.RFC3339), lead.Round(time.Minute), newest.UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

// pruneAudit deletes audit records last seen at or before cutoff, oldest
// first, examining up to pruneChunk of them from the first key at or
// after from (nil: the first key). It returns how many it examined and
// the key to resume from. A record that fails its checksum or does not
// agree with its key is kept (and passed over): never prune a record that
// changed on disk, keep the evidence for Check (Open refuses the store
// anyway).
func (l *Ledger) pruneAudit(cutoff time.Time, from []byte) (int, []byte, error) {
	limit := binary.BigEndian.AppendUint64(nil, sortableNanos(cutoff))
	var removed, left uint64
	var next []byte
	n := 0
	err := l.updateIndexed(func(tx *bolt.Tx) ([]indexChange, error) {
		records := tx.Bucket(bucketRecords)
		var stale [][]byte
		cur := records.Cursor()
		k, v := cur.First()
		if from != nil {
			k, v = cur.Seek(from)
		}
		for ; k != nil && n < pruneChunk; k, v = cur.Next() {
			if len(k) >= 8 && bytes.Compare(k[:8], limit) > 0 {
				break
			}
			n++
			next = append(bytes.Clone(k), 0) // the smallest key after k
			c, err := decodeRecord("client record", k, v)
			if err != nil || !recordMatchesKey(&c, k) {
				continue
			}
			stale = append(stale, bytes.Clone(k))
		}
		changes := make([]indexChange, 0, len(stale))
		for _, k := range stale {
			if err := records.Delete(k); err != nil {
				return nil, err
			}
			ts, id, _ := splitRecordKey(k)
			changes = append(changes, indexChange{id: id, ts: ts, del: true})
		}
		removed = uint64(len(stale))
		left = l.clients.Load()
		if removed == 0 {
			return nil, nil
		}
		left -= min(removed, left)
		return changes, putCounterValue(tx.Bucket(bucketMeta), keyClients, left)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: prune audit records: %w", err)
	}
	// Only the applier goroutine changes the counter, so Store is safe.
	l.clients.Store(left)
	l.pruned.Add(removed)
	return n, next, nil
}

// pruneCounts deletes count entries last seen at or before cutoff, corrupt
// ones, and those beyond the application's cap (keeping the newest): what a
// restarting host leaves out when it loads its counts. Open runs it.
func (l *Ledger) pruneCounts(cutoff time.Time) error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		counts, caps := tx.Bucket(bucketCount), tx.Bucket(bucketCap)
		var apps [][]byte
		if err := counts.ForEachBucket(func(k []byte) error {
			apps = append(apps, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, app := range apps {
			capN, err := capOf(caps, app)
			if err != nil {
				return err
			}
			if len(app) != 16 {
				return fmt.Errorf("count bucket name %x has %d bytes, want 16", app, len(app))
			}
			if _, err := trimCount(counts.Bucket(app), guid.GUID(app), capN, cutoff); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: prune counts: %w", err)
	}
	return nil
}

// capOf returns the stored cap of app, 0 when none.
func capOf(caps *bolt.Bucket, app []byte) (int, error) {
	v, err := getSealed(caps, "cap", app)
	if err != nil || v == nil {
		return 0, err
	}
	return decodeCap(v)
}

// trimCount deletes from one application's count bucket the entries last
// seen at or before cutoff and all but the newest capN (when capN > 0). It
// returns the number of entries kept; an entry that fails its checksum or
// does not decode fails it (and nothing is deleted).
func trimCount(b *bolt.Bucket, app guid.GUID, capN int, cutoff time.Time) (int, error) {
	var keep []Seen
	var drop [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		t, err := decodeCountEntry(app, k, v)
		if err != nil {
			return err
		}
		if !t.After(cutoff) {
			drop = append(drop, bytes.Clone(k))
			return nil
		}
		keep = append(keep, Seen{CMID: guid.GUID(k), LastSeen: t})
		return nil
	}); err != nil {
		return 0, err
	}
	if capN > 0 && len(keep) > capN {
		SortNewestFirst(keep)
		for _, s := range keep[capN:] {
			drop = append(drop, bytes.Clone(s.CMID[:]))
		}
		keep = keep[:capN]
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keep), nil
}

// SortNewestFirst orders s by last-seen time, newest first, breaking ties
// by CMID bytes (higher first). Hosts use the same order to decide which
// clients stay in a capped count, so the ledger's trimming agrees with them.
func SortNewestFirst(s []Seen) {
	slices.SortFunc(s, func(a, b Seen) int {
		if Newer(a, b) {
			return -1
		}
		if Newer(b, a) {
			return 1
		}
		return 0
	})
}

// Newer reports whether a sorts before b in SortNewestFirst order.
func Newer(a, b Seen) bool {
	if !a.LastSeen.Equal(b.LastSeen) {
		return a.LastSeen.After(b.LastSeen)
	}
	return bytes.Compare(a.CMID[:], b.CMID[:]) > 0
}
