package ledger

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// clientID is a client's identity in the store: CMID ‖ App.
type clientID [32]byte

// clientIndex maps each client that has an audit record to the time part
// of its key in bucketRecords (sortableNanos of its last request). It is
// built by verifyStore's walk at Open and kept by the applier; a map of
// fixed-size keys and values holds no pointers, so the garbage collector
// never scans it.
type clientIndex map[clientID]uint64

// splitRecordKey returns the time part and the client of a record key.
func splitRecordKey(k []byte) (uint64, clientID, bool) {
	if len(k) != 40 {
		return 0, clientID{}, false
	}
	return binary.BigEndian.Uint64(k), clientID(k[8:]), true
}

// indexChange is one change to the client index that a store transaction
// makes; the index takes it only once the transaction has committed.
type indexChange struct {
	id  clientID
	ts  uint64
	del bool
}

// updateIndexed runs fn in a write transaction and commits it; the index
// changes fn returns are made under idxMu in the same critical section as
// the commit, and not at all when fn fails or the commit does.
func (l *Ledger) updateIndexed(fn func(tx *bolt.Tx) ([]indexChange, error)) error {
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
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, c := range changes {
		if c.del {
			if l.index[c.id] == c.ts {
				delete(l.index, c.id)
			}
			continue
		}
		l.index[c.id] = c.ts
	}
	return nil
}

// lookup returns the key and record of id in bucketRecords (nil, nil when
// it has none); the key is built in buf (capacity 40) when it has one. The
// caller holds idxMu or is the applier.
func (l *Ledger) lookup(records *bolt.Bucket, id *clientID, buf []byte) ([]byte, []byte, error) {
	ts, ok := l.index[*id]
	if !ok {
		return nil, nil, nil
	}
	k := append(binary.BigEndian.AppendUint64(buf[:0], ts), id[:]...)
	v := records.Get(k)
	if v == nil {
		return nil, nil, fmt.Errorf("ledger: the client index names record %x, which the store lacks", k)
	}
	return k, v, nil
}
