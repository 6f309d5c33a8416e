package ledger

import (
	"context"
	"testing"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestRefusalBudget: records of clients only ever
// refused stay within MaxRefusals, oldest dropped; a refused client that is
// later answered becomes an ordinary audit record, outside the budget.
func TestRefusalBudget(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{MaxRefusals: 100})
	ctx := context.Background()
	refuse := func(i int) {
		a := logActivation(i, clock.Now())
		a.Result, a.Counted, a.Cap = 0xC004F042, false, 0
		if err := l.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
		clock.Advance(1e6)
	}
	for i := range 1000 {
		refuse(i)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Client 999 is refused, then answered: it leaves the budget.
	a := logActivation(999, clock.Now())
	if err := l.Record(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	if s.Refusals != 99 || s.RefusalsDropped != 900 {
		t.Fatalf("refusal records %d, dropped %d; want 99 and 900", s.Refusals, s.RefusalsDropped)
	}
	if c, ok, _ := l.Client(testkit.CMID(999), testkit.AppWindows); !ok || c.Requests != 2 || c.LastResult != 0 {
		t.Fatalf("answered client's record %+v (found %v): want both requests, last answered", c, ok)
	}
	if _, ok, _ := l.Client(testkit.CMID(899), testkit.AppWindows); ok {
		t.Fatal("the oldest refusal records were kept")
	}
	if _, ok, _ := l.Client(testkit.CMID(900), testkit.AppWindows); !ok {
		t.Fatal("a recent refusal record was dropped")
	}
	// Reopening keeps the budget's counter.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, clock, Options{MaxRefusals: 100})
	if s := l.Stats(); s.Refusals != 99 {
		t.Fatalf("%d refusal records after reopen, want 99", s.Refusals)
	}
}
