package ledger

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

var benchClients = flag.Int("ledger.clients", 100000, "distinct clients for BenchmarkClients (1000000 for the 1M figure)")

// benchActivation is client i's activation, a microsecond after client
// i-1's: activations arrive in time order, and the store's keys follow it.
func benchActivation(i int, now time.Time) Activation {
	return Activation{
		Time: now.Add(time.Duration(i) * time.Microsecond), CMID: testkit.CMID(i), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
		Workstation: fmt.Sprintf("DESKTOP-%07d.corp.example.com", i), Source: "10.1.2.3:49152",
		Protocol: 6, Counted: true, Cap: 50,
	}
}

// BenchmarkRecordSerial is one connection's view: every Record waits for
// its own log sync. ns/op is the per-request ledger latency.
func BenchmarkRecordSerial(b *testing.B) {
	l := openTest(b, b.TempDir(), nil, Options{})
	ctx := context.Background()
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Record(ctx, benchActivation(i, now)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s := l.Stats()
	b.ReportMetric(float64(s.Records)/float64(s.Batches), "records/sync")
}

// BenchmarkRecordParallel64 records from 64 goroutines at once, as 64
// client connections would; group commit batches them into shared log
// syncs, and the applier writes them to the store in large transactions.
func BenchmarkRecordParallel64(b *testing.B) {
	l := openTest(b, b.TempDir(), nil, Options{})
	ctx := context.Background()
	now := time.Now()
	var next atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((64 + procs - 1) / procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Record(ctx, benchActivation(int(next.Add(1)), now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	s := l.Stats()
	b.ReportMetric(float64(s.Records)/float64(s.Batches), "records/sync")
}

// BenchmarkClients fills a store with -ledger.clients distinct clients (64
// concurrent writers) and reports how long that took, the store's size on
// disk, the Go heap a reopened ledger keeps, and how long reopening and
// loading the counts takes. Run it with -benchtime=1x.
func BenchmarkClients(b *testing.B) {
	n := *benchClients
	if testing.Short() && n > 100000 {
		b.Skip("more than 100k clients in -short mode")
	}
	for range b.N {
		dir := b.TempDir()
		l, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1))
					if i > n {
						return
					}
					if err := l.Record(context.Background(), benchActivation(i, now)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		fill := time.Since(now)
		if err := l.Prune(context.Background()); err != nil {
			b.Fatal(err)
		}
		s := l.Stats()
		if s.Clients != uint64(n) {
			b.Fatalf("%d clients stored, want %d", s.Clients, n)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		l, err = Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Counts(); err != nil {
			b.Fatal(err)
		}
		reopen := time.Since(start)
		// Two collections also empty sync.Pool victim caches; HeapAlloc
		// is then what the reopened ledger keeps live.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(l.Stats().FileSize)/(1<<20), "disk-MiB")
		b.ReportMetric(float64(l.Stats().FileSize)/float64(n), "disk-B/client")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(fill.Milliseconds()), "fill-ms")
		b.ReportMetric(float64(reopen.Milliseconds()), "reopen-ms")
		st := l.db.Stats()
		b.ReportMetric(100*float64(st.FreePageN+st.PendingPageN)*float64(l.db.Info().PageSize)/float64(l.Stats().FileSize), "free-%")
		b.ReportMetric(float64(s.Records)/float64(s.Batches), "records/sync")
		l.Close()
	}
}

var benchApplyBatch = flag.Int("ledger.applybatch", 8192, "logged activations per store transaction in BenchmarkApplyEntries")

// BenchmarkApplyEntries is the applier alone: b.N new clients applied to
// the store in transactions of -ledger.applybatch logged activations.
// ns/op is the store's cost per activation: run it with -benchtime=Nx and
// compare batch sizes and allocs/op.
func BenchmarkApplyEntries(b *testing.B) {
	l := openTest(b, b.TempDir(), nil, Options{})
	now := time.Now()
	acts := make([]Activation, b.N)
	entries := make([]entry, b.N)
	for i := range acts {
		acts[i] = benchActivation(i, now)
		entries[i] = entry{seq: uint64(i + 1), act: &acts[i]}
	}
	n := max(*benchApplyBatch, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < b.N; start += n {
		if err := l.applyEntries(entries[start:min(start+n, b.N)]); err != nil {
			b.Fatal(err)
		}
	}
}
