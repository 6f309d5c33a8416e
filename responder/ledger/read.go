package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// flushForRead applies pending activations so that a read sees every
// acknowledged one. After Close there is nothing left to apply.
func (l *Ledger) flushForRead() error {
	l.amu.Lock()
	n := len(l.pending)
	l.amu.Unlock()
	if n == 0 {
		return nil
	}
	if err := l.Flush(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// Client returns the audit record of (cmid, app): the record of a client
// ever answered, else its refusal record (see Options.MaxRefusals).
func (l *Ledger) Client(cmid, app guid.GUID) (Client, bool, error) {
	if err := l.flushForRead(); err != nil {
		return Client{}, false, err
	}
	var c Client
	var found bool
	// Holding idxMu keeps the applier from committing between the index
	// lookup and the read transaction's start.
	l.idxMu.RLock()
	defer l.idxMu.RUnlock()
	err := l.db.View(func(tx *bolt.Tx) error {
		id := clientID(clientKey(cmid, app))
		k, v, _, err := l.index.find(tx.Bucket(bucketRecords), &id, make([]byte, 0, 40))
		if err != nil {
			return err
		}
		what := "client record"
		if v == nil {
			k, what = id[:], "refusal record"
			v = tx.Bucket(bucketRefused).Get(k)
		}
		if v == nil {
			return nil
		}
		c, err = decodeRecord(what, k, v)
		found = err == nil
		return err
	})
	return c, found, err
}

// Clients calls fn for every audit record of a client ever answered (not
// the refusal records), oldest last request first, until fn returns false.
// Corrupt records are skipped and logged.
func (l *Ledger) Clients(fn func(Client) bool) error {
	if err := l.flushForRead(); err != nil {
		return err
	}
	return l.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketRecords).Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			c, err := decodeRecord("client record", k, v)
			if err != nil {
				l.log.Warn("ledger: skipping corrupt client record", "key", fmt.Sprintf("%x", k), "err", err)
				continue
			}
			if !fn(c) {
				return nil
			}
		}
		return nil
	})
}

// Seen is one client in an application's count.
type Seen struct {
	CMID     guid.GUID
	LastSeen time.Time
}

// AppCount is the stored counting state of one application.
type AppCount struct {
	App     guid.GUID
	Cap     int    // client cap; 0 when no request has set one
	Clients []Seen // clients seen within the count window, any order
}

// Counts returns the counting state of every application. Entries older
// than the count window (by the ledger's clock) are left out.
func (l *Ledger) Counts() ([]AppCount, error) {
	if err := l.flushForRead(); err != nil {
		return nil, err
	}
	cutoff := l.opts.Clock().Add(-l.opts.CountWindow)
	var out []AppCount
	err := l.db.View(func(tx *bolt.Tx) error {
		apps := map[guid.GUID]int{}
		get := func(k []byte) (*AppCount, error) {
			if len(k) != 16 {
				return nil, fmt.Errorf("ledger: application key %x has %d bytes, want 16", k, len(k))
			}
			app := guid.GUID(k)
			i, ok := apps[app]
			if !ok {
				i = len(out)
				apps[app] = i
				out = append(out, AppCount{App: app})
			}
			return &out[i], nil
		}
		err := tx.Bucket(bucketCap).ForEach(func(k, v []byte) error {
			ac, err := get(k)
			if err != nil {
				return err
			}
			cv, err := unseal("cap", k, v)
			if err != nil {
				return err
			}
			ac.Cap, err = decodeCap(cv)
			return err
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCount).ForEachBucket(func(k []byte) error {
			ac, err := get(k)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketCount).Bucket(k).ForEach(func(cmid, v []byte) error {
				t, err := decodeCountEntry(ac.App, cmid, v)
				if err != nil {
					l.log.Warn("ledger: skipping corrupt count entry", "app", ac.App.String(), "key", fmt.Sprintf("%x", cmid), "err", err)
					return nil
				}
				if t.After(cutoff) {
					ac.Clients = append(ac.Clients, Seen{CMID: guid.GUID(cmid), LastSeen: t})
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Identity returns the stored host identity; a fresh store has none.
func (l *Ledger) Identity() (Identity, error) {
	id := Identity{EPIDs: map[string]string{}}
	err := l.db.View(func(tx *bolt.Tx) error {
		v, err := getSealed(tx.Bucket(bucketIdentity), "identity", keyIdentity)
		if err != nil || v == nil {
			return err
		}
		id, err = DecodeIdentity(v)
		return err
	})
	return id, err
}

// SetIdentity durably replaces the stored host identity.
func (l *Ledger) SetIdentity(ctx context.Context, id Identity) error {
	b, err := encodeIdentity(&id)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		return putSealed(tx.Bucket(bucketIdentity), keyIdentity, b)
	})
	if err != nil {
		return fmt.Errorf("ledger: store identity: %w", err)
	}
	return nil
}
