package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// review4Store writes a small store of n clients to a new directory and
// lets edit change it with bbolt (as a damaged or crafted file would be).
func review4Store(t *testing.T, n int, edit func(tx *bolt.Tx) error) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, walkTestStore(t, n), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(edit); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReview4StoreWithoutMetaBucket: readSchema takes a store without a
// meta bucket (lost, or its key turned into a plain value) for a new,
// empty store (schema 0), and there Check verifies nothing while Open
// writes schema 3 into it and then verifies it. So the two disagree on
// the same file: a store holding clients and identity, its meta bucket
// gone and a record garbled, is "ok" to `ledger check` and refused by
// Open. Rule: schema 0 (a new store) is only a
// store with no buckets at all; a store with identity, records or counts
// but no readable schema is damage, judged alike by Open and Check.
func TestReview4StoreWithoutMetaBucket(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(tx *bolt.Tx) error
	}{
		{"meta gone, a record garbled", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketMeta); err != nil {
				return err
			}
			k, _ := tx.Bucket(bucketRecords).Cursor().First()
			return tx.Bucket(bucketRecords).Put(k, []byte("garbled"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := review4Store(t, 20, tc.edit)
			rep, cerr := Check(dir)
			l, oerr := Open(dir, Options{})
			if l != nil {
				l.Close()
			}
			if (cerr == nil && rep.OK) != (oerr == nil) {
				t.Fatalf("Check ok=%v (err %v, files %+v) but Open: %v", rep.OK, cerr, rep.Files, oerr)
			}
		})
	}
}

// TestReview4Schema2StoreWithoutMetaBucket: a schema-2 store (audit
// records under CMID ‖ App in "audit") whose meta bucket is gone is taken
// for a new store: `ledger check` says ok (schema 0) and Open writes
// schema 3 into it and serves without the schema-2 audit records, which
// are never upgraded or read again: every client is silently forgotten,
// while the identity (ePIDs) is kept. Rule as above: no schema byte with
// identity or audit buckets present is damage.
func TestReview4Schema2StoreWithoutMetaBucket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, walkTestStore(t, 20), 0o600); err != nil {
		t.Fatal(err)
	}
	writeSchema2(t, path)
	editStore(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) })
	rep, cerr := Check(dir)
	l, err := Open(dir, Options{})
	if err != nil {
		return // refused: holds
	}
	defer l.Close()
	if _, ok, err := l.Client(testkit.CMID(0), testkit.AppWindows); err != nil || !ok {
		t.Fatalf("Check ok=%v (err %v); Open accepted the store and client 0 is gone (ok=%v err=%v, clients %d)", rep.OK, cerr, ok, err, l.Stats().Clients)
	}
}

// TestReadSchemaNewOnlyWhenEmpty: a store is new (schema 0) only when it
// holds nothing; without its schema byte, any bucket, root value or meta
// key makes it damage, to Check and Open alike.
func TestReadSchemaNewOnlyWhenEmpty(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(tx *bolt.Tx) error
	}{
		{"meta gone", func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) }},
		{"schema key gone", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySchema) }},
		{"meta a plain value", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketMeta); err != nil {
				return err
			}
			return tx.Bucket(bucketIdentity).Put([]byte("x"), []byte("y"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := review4Store(t, 5, tc.edit)
			rep, cerr := Check(dir)
			if cerr != nil || rep.OK {
				t.Fatalf("Check: ok=%v err=%v, want a damaged store", rep.OK, cerr)
			}
			l, err := Open(dir, Options{})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a store that lost its schema version")
			}
			var d *DamageError
			if !errors.As(err, &d) {
				t.Fatalf("Open: %v, want a *DamageError", err)
			}
		})
	}
	// A store bbolt created and nothing else wrote to is new.
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketMeta); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if rep, err := Check(dir); err != nil || !rep.OK {
		t.Fatalf("Check of an empty store: ok=%v err=%v", rep.OK, err)
	}
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open of an empty store: %v", err)
	}
	l.Close()
}
