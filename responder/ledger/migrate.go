package ledger

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// migrateChunk is how many audit records one transaction of migrateV2
// copies by default: a transaction holds every page it changes in memory
// until it commits.
const migrateChunk = 65536

// migrateV2 upgrades a verified schema-2 store to schema 3: it copies
// every audit record into bucketRecords, under its last-seen key and
// sealed over it, in transactions of Options.migrateChunk records, then in one
// last transaction drops the schema-2 buckets and writes schema 3. Until
// that transaction the store is schema 2 with every schema-2 value in
// place, so a crash anywhere leaves a store the next Open migrates again:
// it first drops a bucketRecords an interrupted migration left.
//
// Records are copied in the order of the schema-2 retention index, so
// each chunk appends to the new bucket; records the index misses (a
// schema-2 store whose index disagrees with its records) are copied
// afterwards from the records themselves.
func (l *Ledger) migrateV2() error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords) != nil {
			if err := tx.DeleteBucket(bucketRecords); err != nil {
				return fmt.Errorf("drop the records of an interrupted upgrade: %w", err)
			}
		}
		_, err := tx.CreateBucket(bucketRecords)
		return err
	})
	if err != nil {
		return fmt.Errorf("upgrade to schema 3: %w", err)
	}
	var copied uint64
	chunk := l.opts.migrateChunk
	// Pass 1: in retention-index order, appends.
	for from := []byte(nil); ; {
		var n int
		err := l.db.Update(func(tx *bolt.Tx) error {
			records := tx.Bucket(bucketRecords)
			records.FillPercent = recordsFillPercent
			audit, index := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditTS)
			if index == nil {
				return nil
			}
			cur := index.Cursor()
			k, _ := cur.First()
			if from != nil {
				k, _ = cur.Seek(from)
			}
			for ; k != nil && n < chunk; k, _ = cur.Next() {
				n++
				from = append(bytes.Clone(k), 0)
				if len(k) != 40 {
					continue
				}
				c, v, err := v2Record(audit, k[8:])
				if err != nil {
					return err
				}
				if v == nil || !recordMatchesKey(&c, k) {
					continue // a stale index entry: pass 2 finds the record
				}
				if err := records.Put(bytes.Clone(k), seal(k, v)); err != nil {
					return err
				}
				copied++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("upgrade to schema 3: copy audit records: %w", err)
		}
		if l.opts.migrated != nil {
			l.opts.migrated(copied)
		}
		if n < chunk {
			break
		}
	}
	// Pass 2: records the index missed, if their numbers disagree.
	var total int
	if err := l.db.View(func(tx *bolt.Tx) error {
		// A schema-2 store without clients may lack either bucket;
		// Check accepts it, so the upgrade takes a missing one as empty.
		if audit := tx.Bucket(bucketAudit); audit != nil {
			total = audit.Stats().KeyN
		}
		return nil
	}); err != nil {
		return err
	}
	if uint64(total) != copied {
		for from := []byte(nil); ; {
			var n int
			err := l.db.Update(func(tx *bolt.Tx) error {
				records := tx.Bucket(bucketRecords)
				cur := tx.Bucket(bucketAudit).Cursor()
				k, _ := cur.First()
				if from != nil {
					k, _ = cur.Seek(from)
				}
				type put struct{ k, v []byte }
				var puts []put
				for ; k != nil && n < chunk; k, _ = cur.Next() {
					n++
					from = append(bytes.Clone(k), 0)
					c, rv, err := v2Record(tx.Bucket(bucketAudit), k)
					if err != nil {
						return err
					}
					nk := tsKey(c.LastSeen, c.CMID, c.App)
					if records.Get(nk) == nil {
						puts = append(puts, put{nk, seal(nk, rv)})
					}
				}
				slices.SortFunc(puts, func(x, y put) int { return bytes.Compare(x.k, y.k) })
				for _, p := range puts {
					if err := records.Put(p.k, p.v); err != nil {
						return err
					}
					copied++
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("upgrade to schema 3: copy audit records: %w", err)
			}
			if n < chunk {
				break
			}
		}
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAudit, bucketAuditTS} {
			if tx.Bucket(name) == nil {
				continue
			}
			if err := tx.DeleteBucket(name); err != nil {
				return fmt.Errorf("drop bucket %q: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := putCounterValue(meta, keyClients, copied); err != nil {
			return err
		}
		return meta.Put(keySchema, []byte{schemaVersion})
	})
	if err != nil {
		return fmt.Errorf("upgrade to schema 3: %w", err)
	}
	return nil
}

// v2Record reads the schema-2 audit record under key (CMID ‖ App): the
// record and its encoding without the seal (a copy), nil when there is
// none.
func v2Record(audit *bolt.Bucket, key []byte) (Client, []byte, error) {
	sv := audit.Get(key)
	if sv == nil {
		return Client{}, nil, nil
	}
	v, err := unseal("client record", key, sv)
	if err != nil {
		return Client{}, nil, err
	}
	c, err := DecodeClient(v)
	if err != nil {
		return Client{}, nil, err
	}
	return c, bytes.Clone(v), nil
}
