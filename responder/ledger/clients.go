package ledger

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// CursorLen is the length of a ClientsPage cursor: a record key
// (sortable last-seen ‖ CMID ‖ App).
const CursorLen = 40

// ClientEntry is one audit record with its standing in its application's
// count, as a listing shows it.
type ClientEntry struct {
	Client
	// Counted reports whether the client is in its application's count now
	// (by the ledger's clock); LastCounted is its last counted request and
	// CountedUntil when it leaves the count unless it comes back. Both are
	// zero when the client is not in the count.
	Counted      bool
	LastCounted  time.Time
	CountedUntil time.Time
}

// ClientsQuery selects one page of ClientsPage.
type ClientsQuery struct {
	// After is the cursor a previous page returned (Next); nil starts at
	// the newest record.
	After []byte
	// Since, when not zero, ends the listing at the first record last seen
	// before it.
	Since time.Time
	// Limit is the most entries the page holds (at least 1).
	Limit int
	// Scan is the most index entries the page reads (0: Limit), so that a
	// selective Keep cannot hold the read transaction open for long; a
	// page that ends early returns fewer entries and a cursor.
	Scan int
	// Keep, when not nil, selects the entries the page returns.
	Keep func(*ClientEntry) bool
}

// ClientsPage is one chunk of the client listing.
type ClientsPage struct {
	Entries []ClientEntry
	// Next resumes the listing after this page; nil when the listing is
	// complete.
	Next []byte
}

// ClientsPage returns audit records newest first (by last request), in one
// short read transaction: a long one would pin the store's pages and make
// the file grow while activations are applied. A listing is a sequence of
// pages, each resuming after the previous one's Next, so its memory is
// bounded by the page size whatever the number of clients.
//
// Pages do not share a snapshot: a client that makes a request while a
// listing runs moves to the head of the order and is not listed again (or,
// if the listing had not reached it yet, not at all) by that listing.
// Clients only ever refused (kept apart under the refusal-record budget)
// are listed with the others. Corrupt records are skipped and logged,
// dangling index entries skipped.
func (l *Ledger) ClientsPage(q ClientsQuery) (ClientsPage, error) {
	if q.After != nil && len(q.After) != CursorLen {
		return ClientsPage{}, fmt.Errorf("ledger: cursor has %d bytes, want %d", len(q.After), CursorLen)
	}
	if q.Limit < 1 {
		q.Limit = 1
	}
	if q.Scan < 1 {
		q.Scan = q.Limit
	}
	if q.After == nil {
		if err := l.flushForRead(); err != nil {
			return ClientsPage{}, err
		}
	}
	cutoff := l.opts.Clock().Add(-l.opts.CountWindow)
	var since []byte
	if !q.Since.IsZero() {
		since = tsKey(q.Since, guid.GUID{}, guid.GUID{})
	}
	var page ClientsPage
	err := l.db.View(func(tx *bolt.Tx) error {
		// A listing reads the whole store, page by page: releasing the
		// map's pages after each keeps them from adding up in serve's
		// RSS. The open transaction keeps bbolt from remapping meanwhile.
		defer func() {
			if err := releaseMapped(l.db, l.lastSize.Load()); err != nil {
				l.log.Debug("ledger: cannot release the pages a listing read", "err", err)
			}
		}()
		counts := tx.Bucket(bucketCount)
		// Two orders with the same key form: the audit records
		// themselves, and the index of the clients only ever refused
		// (kept apart, under their own budget). A (CMID, App) is in one
		// of them at a time, so merging the two newest-first walks lists
		// each client once.
		walks := []*indexWalk{
			newIndexWalk(tx.Bucket(bucketRecords), nil, q.After),
			newIndexWalk(tx.Bucket(bucketRefTS), tx.Bucket(bucketRefused), q.After),
		}
		var last []byte // the last index key read (valid within the transaction)
		for scanned := 0; ; scanned++ {
			w := newest(walks)
			if w == nil {
				return nil // the listing is complete
			}
			k, v := w.k, w.v
			if since != nil && bytes.Compare(k, since) < 0 {
				return nil // older than Since: the listing is complete
			}
			if scanned == q.Scan || len(page.Entries) == q.Limit {
				page.Next = bytes.Clone(last)
				return nil
			}
			last = k
			w.next()
			if len(k) != CursorLen {
				l.log.Warn("ledger: skipping malformed index key", "key", fmt.Sprintf("%x", k))
				continue
			}
			sealKey := k
			if w.records != nil {
				sealKey = k[8:]
				if v = w.records.Get(sealKey); v == nil {
					continue // moved or evicted since the index entry was written
				}
			}
			c, err := decodeRecord("client record", sealKey, v)
			if err != nil {
				l.log.Warn("ledger: skipping corrupt client record", "key", fmt.Sprintf("%x", sealKey), "err", err)
				continue
			}
			e := ClientEntry{Client: c}
			if b := counts.Bucket(c.App[:]); b != nil {
				if sv := b.Get(c.CMID[:]); sv != nil {
					if t, err := decodeCountEntry(c.App, c.CMID[:], sv); err == nil && t.After(cutoff) {
						e.Counted, e.LastCounted, e.CountedUntil = true, t, t.Add(l.opts.CountWindow)
					}
				}
			}
			if q.Keep == nil || q.Keep(&e) {
				page.Entries = append(page.Entries, e)
			}
		}
	})
	if err != nil {
		return ClientsPage{}, fmt.Errorf("ledger: list clients: %w", err)
	}
	return page, nil
}

// indexWalk walks one bucket keyed by last-seen ‖ CMID ‖ App from the
// newest key down: either the records themselves (records nil) or an
// index of the records in records, keyed CMID ‖ App.
type indexWalk struct {
	cur     *bolt.Cursor
	records *bolt.Bucket
	k, v    []byte // current key and value; k nil when done
}

// newIndexWalk positions a walk on the newest key below after (nil: the
// newest key). A missing bucket gives a finished walk.
func newIndexWalk(index, records *bolt.Bucket, after []byte) *indexWalk {
	w := &indexWalk{records: records}
	if index == nil {
		return w
	}
	w.cur = index.Cursor()
	if after == nil {
		w.k, w.v = w.cur.Last()
		return w
	}
	// Seek lands on after itself or the next key above it.
	if w.k, w.v = w.cur.Seek(after); w.k == nil {
		w.k, w.v = w.cur.Last()
	}
	for w.k != nil && bytes.Compare(w.k, after) >= 0 {
		w.k, w.v = w.cur.Prev()
	}
	return w
}

func (w *indexWalk) next() { w.k, w.v = w.cur.Prev() }

// newest returns the walk with the largest current key, nil when all are
// done.
func newest(walks []*indexWalk) *indexWalk {
	var best *indexWalk
	for _, w := range walks {
		if w.k != nil && (best == nil || bytes.Compare(w.k, best.k) > 0) {
			best = w
		}
	}
	return best
}
