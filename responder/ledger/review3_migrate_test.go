package ledger

import (
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// openNoPanic opens dir and turns a panic inside Open into an error, so a
// crash of the upgrade is reported as the finding rather than ending the
// test binary.
func openNoPanic(dir string, opts Options) (l *Ledger, err error) {
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("Open panicked: %v", r)
		}
	}()
	return Open(dir, opts)
}

// TestReview3Schema2MissingBucketJudgedAlike: a schema-2 store that lacks
// one of the schema-2 audit buckets (audit or audit-ts; the store holds
// no client, or a retention index was never created) passes Check as a
// good schema-2 store. Open must then judge it alike: upgrade it (there
// is nothing to copy) rather than panic (audit missing: migrateV2 calls
// Stats on a nil bucket) or refuse it with an upgrade error (audit-ts
// missing: the final DeleteBucket fails with "bucket not found").
func TestReview3Schema2MissingBucketJudgedAlike(t *testing.T) {
	for _, missing := range [][]byte{bucketAudit, bucketAuditTS} {
		t.Run(string(missing), func(t *testing.T) {
			clock := testkit.NewClock()
			dir := t.TempDir()
			l := openTest(t, dir, clock, Options{})
			l.Close()
			path := filepath.Join(dir, FileName)
			writeSchema2(t, path)
			editStore(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(missing) })
			rep, err := Check(dir)
			if err != nil || !rep.OK || rep.Schema != 2 {
				t.Fatalf("Check of the schema-2 store without %q: %+v %v", missing, rep, err)
			}
			l, err = openNoPanic(dir, Options{Clock: clock.Now})
			if err != nil {
				t.Fatalf("Check accepts the schema-2 store without bucket %q, Open does not: %v", missing, err)
			}
			l.Close()
			if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion {
				t.Fatalf("Check after the upgrade: %+v %v", rep, err)
			}
		})
	}
}
