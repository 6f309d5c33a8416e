package ledger

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// clientID is a client's identity in the store: CMID ‖ App.
type clientID [32]byte

// clientIndex finds each client's audit record in bucketRecords: it maps
// the client to the time part of the record's key (sortableNanos of its
// last request). It is built by verifyStore's walk at Open and kept by
// the applier.
//
// To stay small at a million clients it keys most clients by a 64-bit
// hash of their identity (16 bytes per entry, not 40), with a seed
// chosen per process so that clients cannot pick colliding identities. A
// hash names no client, so a lookup checks the store: the record under
// the hash's time and the client's own identity is the client's, or the
// hash belongs to another client. A client added while its hash belongs
// to another client is kept whole in clash. Neither map holds pointers,
// so the garbage collector does not scan them.
type clientIndex struct {
	seed   maphash.Seed
	byHash map[uint64]uint64   // hash of the client → time, for the client that holds the hash
	clash  map[clientID]uint64 // clients whose hash another client held when they were added
}

// newClientIndex returns an empty index sized for n clients.
func newClientIndex(n int) *clientIndex {
	return &clientIndex{seed: maphash.MakeSeed(), byHash: make(map[uint64]uint64, n), clash: map[clientID]uint64{}}
}

func (x *clientIndex) hash(id *clientID) uint64 { return maphash.Bytes(x.seed, id[:]) }

// len returns the number of clients in the index.
func (x *clientIndex) len() int { return len(x.byHash) + len(x.clash) }

// find returns the key and record of id in records (nil, nil when it has
// none), and whether id is kept in clash; the key is built in buf
// (capacity 40). The caller holds idxMu or is the applier.
func (x *clientIndex) find(records *bolt.Bucket, id *clientID, buf []byte) (k, v []byte, inClash bool, err error) {
	if ts, ok := x.clash[*id]; ok {
		k = appendRecordKey(buf[:0], ts, id)
		if v = records.Get(k); v == nil {
			return nil, nil, false, fmt.Errorf("ledger: the client index names record %x, which the store lacks", k)
		}
		return k, v, true, nil
	}
	ts, ok := x.byHash[x.hash(id)]
	if !ok {
		return nil, nil, false, nil
	}
	k = appendRecordKey(buf[:0], ts, id)
	if v = records.Get(k); v == nil {
		return nil, nil, false, nil // the hash is another client's
	}
	return k, v, false, nil
}

// add adds id, last seen at ts, while Open builds the index from records;
// it reports false when id is in the index already (two records of one
// client).
func (x *clientIndex) add(records *bolt.Bucket, id *clientID, ts uint64) bool {
	if _, ok := x.clash[*id]; ok {
		return false
	}
	h := x.hash(id)
	old, ok := x.byHash[h]
	if !ok {
		x.byHash[h] = ts
		return true
	}
	if records.Get(appendRecordKey(make([]byte, 0, 40), old, id)) != nil {
		return false
	}
	x.clash[*id] = ts
	return true
}

// addFree adds id, last seen at ts, while Open builds the index, if no
// client holds its hash; it reports false, adding nothing, when one does
// (another client, or an earlier record of id: add judges which). A client
// whose hash is free is in clash neither.
func (x *clientIndex) addFree(id *clientID, ts uint64) bool {
	h := x.hash(id)
	if _, held := x.byHash[h]; held {
		return false
	}
	x.byHash[h] = ts
	return true
}

// apply makes one committed change.
func (x *clientIndex) apply(c indexChange) {
	h := x.hash(&c.id)
	switch {
	case c.del:
		if ts, ok := x.clash[c.id]; ok && ts == c.ts {
			delete(x.clash, c.id)
		} else if x.byHash[h] == c.ts {
			delete(x.byHash, h)
		}
	case c.inClash:
		x.clash[c.id] = c.ts
	case c.isNew:
		// A new client takes a free hash; a held one belongs to another
		// client (this one had no record), whatever else the same
		// transaction added.
		if _, held := x.byHash[h]; held {
			x.clash[c.id] = c.ts
		} else {
			x.byHash[h] = c.ts
		}
	default:
		x.byHash[h] = c.ts
	}
}

// appendRecordKey appends id's record key at ts: ts ‖ CMID ‖ App, the
// same bytes as tsKey.
func appendRecordKey(dst []byte, ts uint64, id *clientID) []byte {
	return append(binary.BigEndian.AppendUint64(dst, ts), id[:]...)
}

// splitRecordKey returns the time part and the client of a record key.
func splitRecordKey(k []byte) (uint64, clientID, bool) {
	if len(k) != 40 {
		return 0, clientID{}, false
	}
	return binary.BigEndian.Uint64(k), clientID(k[8:]), true
}

// recordMatchesKey reports whether k is the key of record c: its last
// request, CMID and application.
func recordMatchesKey(c *Client, k []byte) bool {
	return len(k) == 40 && binary.BigEndian.Uint64(k) == sortableNanos(c.LastSeen) &&
		guid.GUID(k[8:24]) == c.CMID && guid.GUID(k[24:40]) == c.App
}

// indexChange is one change to the client index that a store transaction
// makes; the index takes it only once the transaction has committed.
type indexChange struct {
	id      clientID
	ts      uint64
	del     bool // the record at ts is gone
	isNew   bool // the client had no record
	inClash bool // the client is kept in clash
}

// updateIndexed runs fn in a write transaction and commits it; the index
// changes fn returns are made under idxMu in the same critical section as
// the commit, and not at all when fn fails or the commit does.
//
// A failed commit may still have taken effect: bbolt writes the new meta
// page before its last sync, and a failure of that sync leaves the change
// visible to the next transaction. So after one, nothing the ledger keeps
// in memory about the store is trusted: the next apply reloads it from
// the store first (reloadFromStore).
func (l *Ledger) updateIndexed(fn func(tx *bolt.Tx) ([]indexChange, error)) error {
	// Every store write (applies, prunes) starts from the store's state,
	// never from memory a failed commit left stale.
	if err := l.reloadIfStale(); err != nil {
		return err
	}
	tx, err := l.db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after a commit: ErrTxClosed, ignored
	changes, err := fn(tx)
	if err != nil {
		return err
	}
	l.idxMu.Lock()
	defer l.idxMu.Unlock()
	err = tx.Commit()
	if err == nil && l.opts.commitFault != nil {
		err = l.opts.commitFault()
	}
	if err != nil {
		l.storeStale.Store(true)
		return err
	}
	for _, c := range changes {
		l.index.apply(c)
	}
	return nil
}

// reloadIfStale reloads the store's state (reloadFromStore) when a commit
// failed since the last load.
func (l *Ledger) reloadIfStale() error {
	if !l.storeStale.Load() {
		return nil
	}
	if err := l.reloadFromStore(); err != nil {
		return fmt.Errorf("ledger: reload the store after a failed commit: %w", err)
	}
	return nil
}

// reloadFromStore rebuilds what the ledger keeps in memory about the store
// (the client index and the clients, refusals and applied counters) from
// the store itself, after a commit that failed and may have taken effect.
// The walk is the one Open makes (verifyStore), so a store damaged
// meanwhile is refused here as it would be there.
func (l *Ledger) reloadFromStore() error {
	return l.db.View(func(tx *bolt.Tx) error {
		index, err := verifyStore(tx, l.db.Path(), schemaVersion)
		if err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		var counters [3]uint64
		for i, key := range [][]byte{keyClients, keyRefusals, keyApplied} {
			if counters[i], err = getCounter(meta, key); err != nil {
				return err
			}
		}
		l.idxMu.Lock()
		l.index = index
		l.idxMu.Unlock()
		l.clients.Store(counters[0])
		l.refusals.Store(counters[1])
		l.appliedSeq = counters[2]
		l.storeStale.Store(false)
		return nil
	})
}
