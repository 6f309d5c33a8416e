package ledger

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestOpenIndexesAcrossBatches: Open's walk hands the index builder its
// records in batches; every client of a store several batches long is
// found after a reopen, and a second record of the first client, found in
// the last batch, is damage to Open and Check alike.
func TestOpenIndexesAcrossBatches(t *testing.T) {
	clock := testkit.NewClock()
	n := 3*indexBatch + 17
	fill := func(t *testing.T) string {
		dir := t.TempDir()
		l, err := Open(dir, Options{Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		acts := make([]Activation, n)
		entries := make([]entry, n)
		for i := range acts {
			acts[i] = benchActivation(i, clock.Now())
			entries[i] = entry{seq: uint64(i + 1), act: &acts[i]}
		}
		if err := l.applyEntries(entries); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("all found", func(t *testing.T) {
		dir := fill(t)
		l := openTest(t, dir, clock, Options{})
		if got := l.index.len(); got != n {
			t.Fatalf("index holds %d clients, want %d", got, n)
		}
		for _, i := range []int{0, indexBatch - 1, indexBatch, 2*indexBatch + 1, n - 1} {
			c, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows)
			if err != nil || !ok || c.CMID != testkit.CMID(i) {
				t.Fatalf("client %d: %+v %v %v", i, c, ok, err)
			}
		}
	})
	t.Run("second record", func(t *testing.T) {
		dir := fill(t)
		editStore(t, filepath.Join(dir, FileName), func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			k, sv := b.Cursor().First()
			c, err := decodeRecord("client record", k, sv)
			if err != nil {
				return err
			}
			c.LastSeen = clock.Now().Add(time.Hour)
			nk := tsKey(c.LastSeen, c.CMID, c.App)
			return b.Put(nk, seal(nk, encodeClient(&c)))
		})
		_, err := Open(dir, Options{Clock: clock.Now})
		var d *DamageError
		want := "a second record of client " + testkit.CMID(0).String()
		if !errors.As(err, &d) || !strings.Contains(d.What, want) || !strings.Contains(d.What, "1 stored values") {
			t.Fatalf("Open: %v, want a DamageError naming %q", err, want)
		}
		rep, err := Check(dir)
		if err != nil || rep.OK || len(rep.Files) == 0 || !strings.Contains(rep.Files[0].Detail, d.What) {
			t.Fatalf("Check: %+v %v; Open said %v", rep, err, d)
		}
	})
}
