package ledger

import (
	"bytes"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// storedValue is one value of the store as verifyStore and the migration
// see it: the bucket it is in (and, for count entries, the application),
// its key and its bytes.
type storedValue struct {
	bucket *bolt.Bucket
	what   string
	app    guid.GUID // count entries only
	k, v   []byte
	count  bool // a count entry: its seal covers app and k (countSealKey)
	timed  bool // a schema-3 audit record: k is last-seen ‖ CMID ‖ App
}

// sealKey is what the value's checksum covers besides the value.
func (sv *storedValue) sealKey() []byte {
	if sv.count {
		return countSealKey(sv.app, sv.k)
	}
	return sv.k
}

// forEachValue calls fn for every value a store of the given schema seals
// (or, schema 1, would seal): the meta counters, the identity, the audit
// and refusal records, the caps and the count entries. It stops at the
// first error fn returns.
func forEachValue(tx *bolt.Tx, schema byte, fn func(sv storedValue) error) error {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		for _, key := range [][]byte{keyClients, keyRefusals, keyApplied, keyDamage} {
			if v := meta.Get(key); v != nil {
				if err := fn(storedValue{bucket: meta, what: fmt.Sprintf("meta %q", key), k: key, v: v}); err != nil {
					return err
				}
			}
		}
	}
	if b := tx.Bucket(bucketIdentity); b != nil {
		if v := b.Get(keyIdentity); v != nil {
			if err := fn(storedValue{bucket: b, what: "identity", k: keyIdentity, v: v}); err != nil {
				return err
			}
		}
	}
	audit := bucketAudit
	if schema >= 3 {
		audit = bucketRecords
	}
	for _, x := range []struct {
		name  []byte
		what  string
		timed bool
	}{{audit, "client record", schema >= 3}, {bucketRefused, "refusal record", false}, {bucketCap, "cap", false}} {
		b := tx.Bucket(x.name)
		if b == nil {
			continue
		}
		if err := b.ForEach(func(k, v []byte) error {
			return fn(storedValue{bucket: b, what: x.what, k: k, v: v, timed: x.timed})
		}); err != nil {
			return err
		}
	}
	counts := tx.Bucket(bucketCount)
	if counts == nil {
		return nil
	}
	return counts.ForEachBucket(func(app []byte) error {
		if len(app) != 16 {
			return &DecodeError{Value: "count bucket", Field: "name", Reason: fmt.Sprintf("%x has %d bytes, want 16", app, len(app))}
		}
		b := counts.Bucket(app)
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return &DecodeError{Value: "count entry of " + guid.GUID(app).String(), Field: "key", Reason: fmt.Sprintf("%x is a bucket", k)}
			}
			return fn(storedValue{bucket: b, what: "count entry of " + guid.GUID(app).String(), app: guid.GUID(app), k: k, v: v, count: true})
		})
	})
}

// decodeValue decodes one value (without its seal) as its kind requires.
func decodeValue(sv storedValue, v []byte) error {
	var err error
	switch {
	case sv.timed:
		err = checkTimedRecord(sv.k, v)
	case strings.HasPrefix(sv.what, "meta"):
		if sv.what != fmt.Sprintf("meta %q", keyDamage) && len(v) != 8 {
			err = fmt.Errorf("%d bytes, want 8", len(v))
		}
	case sv.what == "identity":
		_, err = DecodeIdentity(v)
	case sv.what == "client record", sv.what == "refusal record":
		if len(sv.k) != 32 {
			err = fmt.Errorf("key has %d bytes, want 32", len(sv.k))
			break
		}
		// A record kept under another client's key (an edit that kept
		// its checksum valid) would be filed as that client's on the
		// next upgrade or apply: it is judged here, by Open and Check
		// alike, before anything is changed.
		var c Client
		if c, err = DecodeClient(v); err == nil && (guid.GUID(sv.k[:16]) != c.CMID || guid.GUID(sv.k[16:]) != c.App) {
			err = fmt.Errorf("the record (client %s, application %s) does not match its key", c.CMID, c.App)
		}
	case sv.what == "cap":
		if len(sv.k) != 16 {
			err = fmt.Errorf("key has %d bytes, want 16", len(sv.k))
		} else {
			_, err = decodeCap(v)
		}
	case sv.count:
		if len(sv.k) != 16 {
			err = fmt.Errorf("key has %d bytes, want 16", len(sv.k))
		} else {
			_, err = decodeSeen(v)
		}
	}
	return err
}

// verifyStore checks every sealed value of a schema-2 or schema-3 store
// against its checksum and its format. Open runs it before changing
// anything and Check runs the same code, so the two judge a store alike:
// one bad value and both refuse (a *DamageError naming the first few). Of
// a schema-3 store it returns the client index, and a client with two
// audit records is damage too.
func verifyStore(tx *bolt.Tx, path string, schema byte) (*clientIndex, error) {
	var bad []string
	n := 0
	report := func(what string, k []byte, err error) {
		n++
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s %x: %v", what, k, err))
		}
	}
	var build *indexBuilder
	records := tx.Bucket(bucketRecords)
	if schema >= 3 {
		size := 0
		if records != nil {
			size = records.Stats().KeyN
		}
		build = startIndexBuild(size)
		defer build.stop()
	}
	err := forEachValue(tx, schema, func(sv storedValue) error {
		v, err := unseal(sv.what, sv.sealKey(), sv.v)
		if err == nil {
			err = decodeValue(sv, v)
		}
		if err != nil {
			report(sv.what, sv.k, err)
		} else if sv.timed {
			ts, id, _ := splitRecordKey(sv.k)
			build.add(&id, ts)
		}
		return nil
	})
	if err != nil {
		bad = append(bad, err.Error())
		n++
	}
	var index *clientIndex
	if build != nil {
		index = build.finish(records, func(id *clientID, ts uint64) {
			report("client record", appendRecordKey(nil, ts, id), fmt.Errorf("a second record of client %s, application %s", guid.GUID(id[:16]), guid.GUID(id[16:])))
		})
	}
	if n == 0 {
		return index, nil
	}
	more := ""
	if n > len(bad) {
		more = fmt.Sprintf(" (and %d more)", n-len(bad))
	}
	return nil, &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("%d stored values fail their checksum or format: %s%s", n, strings.Join(bad, "; "), more),
		Lost: "serve refuses to believe or replace them; restore ledger.db from a copy (see responder/README.md, Recovery)"}
}

// migrateV1 upgrades a schema-1 store (values without checksums) to
// schema 2 in the transaction tx: every value is checked against its
// format, as the schema-1 check did, and then sealed. A value that does not
// decode refuses the migration, changing nothing.
func migrateV1(tx *bolt.Tx, path string) error {
	vals, err := verifyV1(tx, path)
	if err != nil {
		return err
	}
	for _, sv := range vals {
		if err := sv.bucket.Put(sv.k, seal(sv.sealKey(), sv.v)); err != nil {
			return fmt.Errorf("upgrade %s %x: %w", sv.what, sv.k, err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, []byte{2})
}

// verifyV1 checks every value of a schema-1 store against its format and
// returns copies of them all; Check runs it on a schema-1 store, Open
// before the upgrade.
func verifyV1(tx *bolt.Tx, path string) ([]storedValue, error) {
	var vals []storedValue
	var bad []string
	if err := forEachValue(tx, 1, func(sv storedValue) error {
		if err := decodeValue(sv, sv.v); err != nil {
			bad = append(bad, fmt.Sprintf("%s %x: %v", sv.what, sv.k, err))
			return nil
		}
		sv.k, sv.v = bytes.Clone(sv.k), bytes.Clone(sv.v)
		vals = append(vals, sv)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("schema-1 store: %d values do not decode, so it cannot be upgraded: %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; ")),
			Lost: "restore ledger.db from a copy (see responder/README.md, Recovery)"}
	}
	return vals, nil
}

// readSchema returns the store's schema byte: 0 for a new store, which
// is a store holding nothing at all (bbolt's empty root, or an empty meta
// bucket). A store without a schema byte that holds anything else (a
// bucket, a value, a meta key) lost it: that is damage, whatever Open or
// Check reads it, never a new store to write schema 3 into.
func readSchema(tx *bolt.Tx) (byte, error) {
	meta := tx.Bucket(bucketMeta)
	var v []byte
	if meta != nil {
		v = meta.Get(keySchema)
	}
	switch {
	case v == nil:
		if held := storeHolds(tx); held != "" {
			where := "has no meta bucket"
			if meta != nil {
				where = "has no schema version in its meta bucket"
			}
			return 0, &DamageError{Path: tx.DB().Path(), Offset: -1, What: fmt.Sprintf("%s but holds %s: the schema version was lost, so nothing in it can be read as a known layout", where, held),
				Lost: "the host identity, counts and audit records it holds cannot be trusted; restore ledger.db from a copy (see responder/README.md, Recovery)"}
		}
		return 0, nil
	case len(v) != 1:
		return 0, fmt.Errorf("schema version value has %d bytes, want 1", len(v))
	default:
		return v[0], nil
	}
}

// storeHolds names the first thing the store holds besides an empty meta
// bucket, or returns "" when it holds nothing.
func storeHolds(tx *bolt.Tx) string {
	c := tx.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			return fmt.Sprintf("a value under key %x at its root", k)
		}
		if bytes.Equal(k, bucketMeta) {
			if mk, _ := tx.Bucket(bucketMeta).Cursor().First(); mk != nil {
				return fmt.Sprintf("meta key %q", mk)
			}
			continue
		}
		return fmt.Sprintf("bucket %q", k)
	}
	return ""
}
