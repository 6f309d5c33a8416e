package ledger

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestClientIndexClash: a client whose hash another client holds is not
// mistaken for it, is added whole, found, moved and removed without
// touching the holder's entry; and a second record of one client is
// refused while the index is built.
func TestClientIndexClash(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, b := clientID{1}, clientID{2}
	x := newClientIndex(0)
	err = db.Update(func(tx *bolt.Tx) error {
		records, err := tx.CreateBucket(bucketRecords)
		if err != nil {
			return err
		}
		put := func(ts uint64, id *clientID) {
			t.Helper()
			if err := records.Put(appendRecordKey(nil, ts, id), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		find := func(id *clientID) (uint64, bool, bool) {
			t.Helper()
			k, v, inClash, err := x.find(records, id, make([]byte, 0, 40))
			if err != nil {
				t.Fatal(err)
			}
			if v == nil {
				return 0, false, false
			}
			ts, _, _ := splitRecordKey(k)
			return ts, true, inClash
		}
		// a holds the hash b has (as a colliding hash would).
		put(100, &a)
		x.byHash[x.hash(&b)] = 100
		if _, ok, _ := find(&b); ok {
			t.Fatal("b found through a's entry")
		}
		put(200, &b)
		x.apply(indexChange{id: b, ts: 200, isNew: true})
		if ts, ok, inClash := find(&b); !ok || ts != 200 || !inClash {
			t.Fatalf("b after its add: %d %v %v", ts, ok, inClash)
		}
		put(300, &b)
		x.apply(indexChange{id: b, ts: 300, inClash: true})
		if ts, ok, _ := find(&b); !ok || ts != 300 {
			t.Fatalf("b after a renewal: %d %v", ts, ok)
		}
		x.apply(indexChange{id: b, ts: 300, del: true})
		if _, ok, _ := find(&b); ok || x.byHash[x.hash(&b)] != 100 || x.len() != 1 {
			t.Fatalf("after b's removal: found %v, holder's entry %d, %d clients", ok, x.byHash[x.hash(&b)], x.len())
		}
		// Building: a second record of a is refused, b's first is not.
		y := newClientIndex(0)
		if !y.add(records, &a, 100) || y.add(records, &a, 400) || !y.add(records, &b, 300) {
			t.Fatal("add accepted a second record of a client or refused a first")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClientReadsDuringApply: Client, read while the applier moves and
// adds records (renewals of earlier clients, new ones), always finds a
// client recorded before it, with at least the requests recorded (run
// with -race: the index is read and changed from different goroutines).
func TestClientReadsDuringApply(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	const n = 60
	done := make(chan error, 1)
	var recorded atomic.Int64
	go func() {
		for i := range 3 * n {
			if err := l.Record(ctx, act(clock, i%n, testkit.AppWindows)); err != nil {
				done <- err
				return
			}
			// Apply now, on the applier's goroutine, while Client reads.
			if err := l.Flush(ctx); err != nil {
				done <- err
				return
			}
			recorded.Store(int64(i + 1))
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if c, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows); err != nil || !ok || c.Requests != 3 {
					t.Fatalf("client %d at the end: %+v %v %v", i, c, ok, err)
				}
			}
			return
		default:
		}
		r := int(recorded.Load())
		if r == 0 {
			continue
		}
		i := (r - 1) % n
		want := uint32((r-1)/n + 1)
		c, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows)
		if err != nil || !ok || c.Requests < want {
			t.Fatalf("client %d after %d records: %+v %v %v, want at least %d requests", i, r, c, ok, err, want)
		}
	}
}
