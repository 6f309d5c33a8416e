package ledger

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The engine comparison: the same store work per
// activation (audit record, retention index, count entry) done by (a) the
// write-ahead log with group commit in front of bbolt (Record), and by (c)
// bbolt alone, one transaction per activation group-committed with
// bolt.DB.Batch (or Update, for one serial client, where Batch would wait
// out its batch delay on every call). Run with
//
//	go test -run '^$' -bench 'Engine' -benchtime 4000x ./responder/ledger/
//
// and compare ns/op and the p50/p99 latencies of the same run.

// engineWorkload runs n activations from conns goroutines through rec and
// reports the per-activation latency percentiles.
func engineWorkload(b *testing.B, conns int, rec func(i int) error) {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	for range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				start := time.Now()
				if err := rec(i); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func benchLog(b *testing.B, conns int) {
	l := openTest(b, b.TempDir(), nil, Options{})
	now := time.Now()
	engineWorkload(b, conns, func(i int) error {
		return l.Record(context.Background(), benchActivation(i, now))
	})
}

// boltAlone is (c): the ledger's store with every activation applied in
// its own (group-committed) bbolt transaction, no log.
func benchBolt(b *testing.B, conns int, batch bool) {
	l := openTest(b, b.TempDir(), nil, Options{})
	// Stop the ledger's own goroutines from interfering: nothing is
	// recorded through the log in this case.
	now := time.Now()
	var seq atomic.Uint64
	var countMu sync.Mutex // applyAudit's client counter is not atomic across txs
	apply := func(tx *bolt.Tx, i int) error {
		a := benchActivation(i, now)
		bk := buckets{meta: tx.Bucket(bucketMeta), records: tx.Bucket(bucketRecords),
			count: tx.Bucket(bucketCount), cap: tx.Bucket(bucketCap)}
		es := []entry{{seq: seq.Add(1), act: &a}}
		countMu.Lock()
		defer countMu.Unlock()
		_, changes, err := l.applyAudit(&bk, es)
		if err != nil {
			return err
		}
		// Index changes are taken before the commit: a benchmark has no
		// readers and does not roll back.
		for _, c := range changes {
			l.index.apply(c)
		}
		return l.applyCounts(&bk, es)
	}
	l.db.MaxBatchDelay = time.Millisecond
	engineWorkload(b, conns, func(i int) error {
		if batch {
			return l.db.Batch(func(tx *bolt.Tx) error { return apply(tx, i) })
		}
		return l.db.Update(func(tx *bolt.Tx) error { return apply(tx, i) })
	})
}

func BenchmarkEngineLogSerial(b *testing.B)        { benchLog(b, 1) }
func BenchmarkEngineLog64(b *testing.B)            { benchLog(b, 64) }
func BenchmarkEngineBoltUpdateSerial(b *testing.B) { benchBolt(b, 1, false) }
func BenchmarkEngineBoltBatchSerial(b *testing.B)  { benchBolt(b, 1, true) }
func BenchmarkEngineBoltBatch64(b *testing.B)      { benchBolt(b, 64, true) }
