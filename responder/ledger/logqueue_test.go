package ledger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// holdFirstWrite returns a WriteFault that blocks the log writer's first
// append until release is called, and a channel closed once it is blocked.
// Defer release, so that a test failing early still lets Close return.
func holdFirstWrite() (fault func(int64, int, int64) error, held chan struct{}, release func()) {
	held, gate := make(chan struct{}), make(chan struct{})
	var once, freed sync.Once
	fault = func(int64, int, int64) error {
		once.Do(func() {
			close(held)
			<-gate
		})
		return nil
	}
	release = func() { freed.Do(func() { close(gate) }) }
	return fault, held, release
}

// A full batch makes Enqueue wait for the writer to take it: a caller whose
// context ends first gets ctx.Err() and its activation is not logged, one
// that waits is logged after the full batch; every acknowledged activation
// carries the count the log holds right after it.
func TestEnqueueWaitsForRoom(t *testing.T) {
	clock := testkit.NewClock()
	fault, held, release := holdFirstWrite()
	defer release()
	l := openTest(t, t.TempDir(), clock, Options{MaxBatch: 2, WriteFault: fault})
	ctx := context.Background()

	var ps []Pending
	enqueue := func(i int) {
		t.Helper()
		p, err := l.Enqueue(ctx, act(clock, i, testkit.AppWindows))
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		ps = append(ps, p)
	}
	enqueue(1)
	<-held // the writer is inside the first batch's write
	enqueue(2)
	enqueue(3) // the next batch is now full

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Enqueue(short, act(clock, 4, testkit.AppWindows)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue into a full batch with an ending context: %v, want %v", err, context.DeadlineExceeded)
	}
	type result struct {
		p   Pending
		err error
	}
	late := make(chan result, 1)
	go func() {
		p, err := l.Enqueue(ctx, act(clock, 5, testkit.AppWindows))
		late <- result{p, err}
	}()
	release()
	r := <-late
	if r.err != nil {
		t.Fatalf("Enqueue waiting for room: %v", r.err)
	}
	ps = append(ps, r.p)
	for i, p := range ps {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("Wait %d: %v", i, err)
		}
		if got, want := p.Count(), i+1; got != want {
			t.Errorf("activation %d: Count %d, want %d", i, got, want)
		}
	}
	if s := l.Stats(); s.Records != 4 || s.Batches != 3 {
		t.Errorf("Stats: %d records in %d batches, want 4 in 3 ([1], [2 3], [5])", s.Records, s.Batches)
	}
}

// Close logs and syncs what is queued before it returns; after it, Enqueue
// refuses.
func TestCloseLogsQueued(t *testing.T) {
	clock := testkit.NewClock()
	fault, held, release := holdFirstWrite()
	defer release()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{WriteFault: fault})
	ctx := context.Background()
	first, err := l.Enqueue(ctx, act(clock, 1, testkit.AppWindows))
	if err != nil {
		t.Fatal(err)
	}
	<-held
	second, err := l.Enqueue(ctx, act(clock, 2, testkit.AppWindows))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	release()
	for i, p := range []Pending{first, second} {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("Wait %d across Close: %v", i, err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Enqueue(ctx, act(clock, 3, testkit.AppWindows)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
	}
	r := openTest(t, dir, clock, Options{})
	for i := 1; i <= 2; i++ {
		if _, ok, err := r.Client(testkit.CMID(i), testkit.AppWindows); err != nil || !ok {
			t.Errorf("client %d after reopen: found %v, %v", i, ok, err)
		}
	}
}
