package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestReview4PruneAfterFailedPruneCommit: a prune whose commit reports
// failure but took effect marks the store stale (updateIndexed), yet only
// an apply with pending activations reloads it (applyPending returns before
// applyStale when nothing is pending). A following prune with no
// activations in between then starts from the stale clients counter
// (pruneAudit's l.clients.Load()) and writes it, less what it removes, to
// the store: the count of clients is wrong for good, in memory and on
// disk. Rule: every store write that follows a failed commit (prune
// included) reloads first, i.e. applyStale runs before anything that
// reads the index or the counters, not only before applying activations.
func TestReview4PruneAfterFailedPruneCommit(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l, failNext := openWithCommitFault(t, dir, clock)
	ctx := context.Background()
	record := func(i int) {
		t.Helper()
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	record(1)
	record(2)
	clock.Advance(time.Hour)
	record(5)
	// Clients 1 and 2 fall out of retention, 5 an hour later; client 3 is
	// answered now, so the clock is plausible for pruning.
	clock.Advance(DefaultRetention - 30*time.Minute)
	record(3)
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Clients != 4 {
		t.Fatalf("clients %d before pruning, want 4", s.Clients)
	}
	failNext.Store(true)
	if err := l.Prune(ctx); err == nil {
		t.Fatal("Prune reported no error for the failed commit")
	}
	clock.Advance(time.Hour) // client 5 falls out too
	if err := l.Prune(ctx); err != nil {
		t.Fatalf("Prune after the failed commit: %v", err)
	}
	if _, ok, err := l.Client(testkit.CMID(3), testkit.AppWindows); err != nil || !ok {
		t.Fatalf("client 3: ok=%v err=%v", ok, err)
	}
	if s := l.Stats(); s.Clients != 1 {
		t.Errorf("clients counter %d after the prunes, want 1 (client 3 alone is left)", s.Clients)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, dir, clock, Options{})
	if s := l2.Stats(); s.Clients != 1 {
		t.Fatalf("clients counter %d in the store after reopening, want 1", s.Clients)
	}
}
