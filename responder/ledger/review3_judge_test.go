package ledger

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestReview3CheckAndOpenAgreeOnEditedStores edits a good store of each
// schema the release reads (2 and 3) in ways a bbolt file allows (a
// bucket or a meta key missing) and requires that Check and Open judge
// each edited store alike: Check OK exactly when Open succeeds.
func TestReview3CheckAndOpenAgreeOnEditedStores(t *testing.T) {
	type edit struct {
		name string
		fn   func(tx *bolt.Tx) error
	}
	dropBucket := func(name []byte) edit {
		return edit{"no bucket " + string(name), func(tx *bolt.Tx) error { return tx.DeleteBucket(name) }}
	}
	dropMeta := func(key []byte) edit {
		return edit{"no meta " + string(key), func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(key) }}
	}
	for _, schema := range []int{2, 3} {
		edits := []edit{dropMeta(keyClients), dropMeta(keyApplied), dropMeta(keyRefusals)}
		buckets := [][]byte{bucketIdentity, bucketCount, bucketCap, bucketRefused, bucketRefTS}
		// Schema 2 without audit or audit-ts:
		// TestReview3Schema2MissingBucketJudgedAlike.
		if schema == 3 {
			buckets = append(buckets, bucketRecords)
		}
		for _, b := range buckets {
			edits = append(edits, dropBucket(b))
		}
		for _, e := range edits {
			t.Run(e.name+" schema "+string(rune('0'+schema)), func(t *testing.T) {
				clock := testkit.NewClock()
				dir := t.TempDir()
				upgradeFixture(t, dir, clock, 6)
				path := filepath.Join(dir, FileName)
				if schema == 2 {
					writeSchema2(t, path)
				}
				editStore(t, path, e.fn)
				rep, checkErr := Check(dir)
				checkOK := checkErr == nil && rep.OK
				l, openErr := openNoPanic(dir, Options{Clock: clock.Now})
				if l != nil {
					l.Close()
				}
				if checkOK != (openErr == nil) {
					t.Errorf("Check ok=%v (%v), Open: %v", checkOK, checkErr, openErr)
				}
			})
		}
	}
}
