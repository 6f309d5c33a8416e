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
	for {
		n, err := l.pruneAudit(cutoff)
		if err != nil {
			return err
		}
		if n < pruneChunk {
			break
		}
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

// vouchScan bounds how many of the newest index entries clockImplausible
// reads looking for an answered record.
const vouchScan = 1000

// clockImplausible says why now is implausibly far past the newest
// answered record (the newest entry of the retention index whose record
// agrees with it and whose latest request was answered), or "" when
// pruning may run. Records exist but none of the newest vouchScan was
// answered: pruning waits too.
func (l *Ledger) clockImplausible(now time.Time) (string, error) {
	var newest time.Time
	found, seen := false, false
	err := l.db.View(func(tx *bolt.Tx) error {
		audit := tx.Bucket(bucketAudit)
		cur := tx.Bucket(bucketAuditTS).Cursor()
		k, _ := cur.Last()
		for tries := 0; k != nil && tries < vouchScan; k, _ = cur.Prev() {
			tries++
			if len(k) != 40 {
				continue
			}
			v := audit.Get(k[8:])
			if v == nil {
				continue
			}
			c, err := decodeRecord("client record", k[8:], v)
			if err != nil || !bytes.Equal(tsKey(c.LastSeen, c.CMID, c.App), k) {
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

// pruneAudit deletes up to pruneChunk audit records last seen at or before
// cutoff, oldest first, and returns how many index entries it removed.
func (l *Ledger) pruneAudit(cutoff time.Time) (int, error) {
	limit := binary.BigEndian.AppendUint64(nil, sortableNanos(cutoff))
	var removed, left uint64
	n := 0
	err := l.db.Update(func(tx *bolt.Tx) error {
		audit, ts := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditTS)
		var stale [][]byte
		cur := ts.Cursor()
		for k, _ := cur.First(); k != nil && len(stale) < pruneChunk; k, _ = cur.Next() {
			if len(k) != 40 {
				stale = append(stale, bytes.Clone(k))
				continue
			}
			if bytes.Compare(k[:8], limit) > 0 {
				break
			}
			stale = append(stale, bytes.Clone(k))
		}
		for _, k := range stale {
			if err := ts.Delete(k); err != nil {
				return err
			}
			n++
			if len(k) != 40 {
				continue
			}
			// Delete the record only if the index entry is its current
			// one; a stale entry must not take a fresh record with it.
			v := audit.Get(k[8:])
			if v == nil {
				continue
			}
			c, err := decodeRecord("client record", k[8:], v)
			if err != nil {
				// Never prune a record that changed on disk: keep the
				// evidence for Check (the index entry goes; Open
				// refuses the store anyway).
				continue
			}
			if !bytes.Equal(tsKey(c.LastSeen, c.CMID, c.App), k) {
				continue
			}
			if err := audit.Delete(k[8:]); err != nil {
				return err
			}
			removed++
		}
		left = l.clients.Load()
		if removed == 0 {
			return nil
		}
		left -= min(removed, left)
		return putCounterValue(tx.Bucket(bucketMeta), keyClients, left)
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: prune audit records: %w", err)
	}
	// Only the writer goroutine changes the counter, so Store is safe.
	l.clients.Store(left)
	l.pruned.Add(removed)
	return n, nil
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
