package ledger

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestCommitFailureThatTookEffect: a store commit that reports failure may
// still have taken effect (bbolt's last sync failed after its new meta page
// was written). The applier's retry must then neither apply the batch twice
// (a renewal counted twice, a client added twice) nor treat a renewed
// client as new and overwrite its record with the retried requests alone.
func TestCommitFailureThatTookEffect(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l, failNext := openWithCommitFault(t, dir, clock)
	ctx := context.Background()
	for range 2 {
		if err := l.Record(ctx, act(clock, 1, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// One renewal of client 1 and a new client 2, applied by a commit
	// that takes effect and reports failure.
	for _, i := range []int{1, 2} {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	failNext.Store(true)
	if err := l.Flush(ctx); err == nil {
		t.Fatal("Flush reported no error for the failed commit")
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush after the failed commit: %v", err)
	}
	c, ok, err := l.Client(testkit.CMID(1), testkit.AppWindows)
	if err != nil || !ok || c.Requests != 3 {
		t.Fatalf("client 1 after the retry: ok=%v requests=%d err=%v, want 3 requests", ok, c.Requests, err)
	}
	if c, ok, err := l.Client(testkit.CMID(2), testkit.AppWindows); err != nil || !ok || c.Requests != 1 {
		t.Fatalf("client 2 after the retry: ok=%v requests=%d err=%v, want 1 request", ok, c.Requests, err)
	}
	if s := l.Stats(); s.Clients != 2 {
		t.Fatalf("clients counter %d after the retry, want 2", s.Clients)
	}
	if !l.Healthy() {
		t.Fatalf("unhealthy after a successful retry: %v", l.LastError())
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK {
		t.Fatalf("Check after the retry: %+v %v", rep, err)
	}
}

// openWithCommitFault opens a ledger in dir whose next store commit, once
// the returned flag is set, takes effect and reports failure (as when
// bbolt's last sync fails after its meta page was written).
func openWithCommitFault(t *testing.T, dir string, clock *testkit.Clock) (*Ledger, *atomic.Bool) {
	t.Helper()
	failNext := new(atomic.Bool)
	l := openTest(t, dir, clock, Options{commitFault: func() error {
		if failNext.CompareAndSwap(true, false) {
			return errors.New("injected: sync after the meta page failed")
		}
		return nil
	}})
	return l, failNext
}
