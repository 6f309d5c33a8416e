//go:build unix

package ledger

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

var benchOpenDir = flag.String("ledger.opendir", "", "data directory BenchmarkOpen fills with -ledger.clients clients when it has no store, and opens; empty: a temporary one")

// BenchmarkOpen is serve's start on a big ledger: b.N Opens (and Closes)
// of a data directory holding -ledger.clients clients, filled once through
// the applier in transactions of 32,768 (kept in -ledger.opendir between
// runs). It reports wall time and the process's CPU (user+system, all
// threads, Close and the garbage collection between Opens left out) per
// Open; run it with -benchtime=3x and -cpuprofile to see
// where an Open goes.
func BenchmarkOpen(b *testing.B) {
	dir := *benchOpenDir
	if dir == "" {
		dir = b.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); errors.Is(err, fs.ErrNotExist) {
		fillBenchStore(b, dir, *benchClients)
	} else if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		cpu0 := processCPU(b)
		l, err := Open(dir, Options{})
		cpu += processCPU(b) - cpu0
		if err != nil {
			b.Fatal(err)
		}
		if got := l.index.len(); got != *benchClients {
			b.Fatalf("Open indexed %d clients, want %d", got, *benchClients)
		}
		b.StopTimer()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// fillBenchStore writes n new clients to the store in dir through the
// applier, as serve's would, and closes it.
func fillBenchStore(b *testing.B, dir string, n int) {
	l, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	const batch = 32768
	acts := make([]Activation, batch)
	entries := make([]entry, batch)
	for start := 0; start < n; start += batch {
		m := min(batch, n-start)
		for i := range m {
			acts[i] = benchActivation(start+i, now)
			entries[i] = entry{seq: uint64(start + i + 1), act: &acts[i]}
		}
		if err := l.applyEntries(entries[:m]); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
