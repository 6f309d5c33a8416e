package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestClockJumpsKeepRecordsAndWindow moves the ledger's clock backward and
// forward between writes, prunes and a reopen: a backward jump must not
// move a client's last-seen time back nor prune a record it puts in the
// future, and a forward jump must drop clients from the count window and
// the audit store exactly when their own time says so.
func TestClockJumpsKeepRecordsAndWindow(t *testing.T) {
	const day = 24 * time.Hour
	ctx := context.Background()
	clock := testkit.NewClock()
	t0 := clock.Now()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})

	record := func(i int) {
		t.Helper()
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatalf("Record client %d at %v: %v", i, clock.Now(), err)
		}
	}
	// present checks which of the clients exist in the audit store.
	present := func(step string, want map[int]bool) {
		t.Helper()
		for i, w := range want {
			_, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows)
			if err != nil {
				t.Fatalf("%s: Client %d: %v", step, i, err)
			}
			if ok != w {
				t.Fatalf("%s: client %d stored = %v, want %v (clock %v)", step, i, ok, w, clock.Now().Sub(t0))
			}
		}
	}
	// counted returns how many clients of testkit.AppWindows are in the window.
	counted := func(step string) int {
		t.Helper()
		cs, err := l.Counts()
		if err != nil {
			t.Fatalf("%s: Counts: %v", step, err)
		}
		for _, c := range cs {
			if c.App == testkit.AppWindows {
				return len(c.Clients)
			}
		}
		return 0
	}
	prune := func(step string) {
		t.Helper()
		if err := l.Prune(ctx); err != nil {
			t.Fatalf("%s: Prune: %v", step, err)
		}
	}

	record(1)
	record(2)

	// Back ten days: client 1 again. Its last-seen time stays t0.
	clock.Advance(-10 * day)
	record(1)
	c, ok, err := l.Client(testkit.CMID(1), testkit.AppWindows)
	if err != nil || !ok {
		t.Fatalf("client 1: %v %v", ok, err)
	}
	if !c.LastSeen.Equal(t0) || !c.FirstSeen.Equal(t0.Add(-10*day)) || c.Requests != 2 {
		t.Fatalf("client 1 after a backward jump: first %v last %v requests %d; want first t0-10d, last t0, 2",
			c.FirstSeen.Sub(t0), c.LastSeen.Sub(t0), c.Requests)
	}

	// Back to t0-40d: both clients are in the clock's future. Nothing is
	// pruned and both still count.
	clock.Advance(-30 * day)
	prune("t0-40d")
	present("t0-40d", map[int]bool{1: true, 2: true})
	if n := counted("t0-40d"); n != 2 {
		t.Fatalf("t0-40d: %d counted, want 2", n)
	}

	// Forward to t0+29d: still in the window.
	clock.Advance(69 * day)
	if n := counted("t0+29d"); n != 2 {
		t.Fatalf("t0+29d: %d counted, want 2", n)
	}
	// t0+31d: out of the 30-day window, still kept for the audit.
	clock.Advance(2 * day)
	prune("t0+31d")
	if n := counted("t0+31d"); n != 0 {
		t.Fatalf("t0+31d: %d counted, want 0", n)
	}
	present("t0+31d", map[int]bool{1: true, 2: true})

	// t0+181d: past the 180-day retention; a new client arrives.
	clock.Advance(150 * day)
	record(3)
	prune("t0+181d")
	present("t0+181d", map[int]bool{1: false, 2: false, 3: true})

	// The clock falls back to t0 across a restart: the open-time prune
	// keeps client 3 (in the future) and does not revive 1 and 2.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(-181 * day)
	l = openTest(t, dir, clock, Options{})
	present("reopened at t0", map[int]bool{1: false, 2: false, 3: true})
	if n := counted("reopened at t0"); n != 1 {
		t.Fatalf("reopened at t0: %d counted, want 1 (client 3, seen at t0+181d)", n)
	}
}
