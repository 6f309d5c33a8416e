package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// listAll pages through the listing with q (After ignored) and returns the
// entries in order and the number of pages.
func listAll(t *testing.T, l *Ledger, q ClientsQuery) ([]ClientEntry, int) {
	t.Helper()
	var all []ClientEntry
	pages := 0
	q.After = nil
	for {
		p, err := l.ClientsPage(q)
		if err != nil {
			t.Fatalf("ClientsPage: %v", err)
		}
		pages++
		if len(p.Entries) > q.Limit {
			t.Fatalf("page of %d entries, limit %d", len(p.Entries), q.Limit)
		}
		all = append(all, p.Entries...)
		if p.Next == nil {
			return all, pages
		}
		if len(p.Next) != CursorLen {
			t.Fatalf("cursor of %d bytes", len(p.Next))
		}
		if pages > 1000 {
			t.Fatal("listing does not end")
		}
		q.After = p.Next
	}
}

// TestClientsPage: the listing is newest first, pages resume without gaps
// or repeats, Since ends it, a selective Keep reads at most Scan entries per
// page, and each entry's count standing follows the count window by the
// ledger's clock (an injected clock: 31 days later nobody counts).
func TestClientsPage(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	start := clock.Now()
	for i := range 25 {
		a := act(clock, i, testkit.AppWindows)
		if i == 3 { // a refusal: recorded, never counted
			a.Counted, a.Cap, a.Result = false, 0, 0xC004F042
		}
		if err := l.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	all, pages := listAll(t, l, ClientsQuery{Limit: 7})
	if len(all) != 25 || pages != 4 {
		t.Fatalf("%d entries in %d pages, want 25 in 4", len(all), pages)
	}
	seen := map[[16]byte]bool{}
	for i, e := range all {
		if seen[e.CMID] {
			t.Fatalf("entry %d (%s) listed twice", i, e.CMID)
		}
		seen[e.CMID] = true
		want := testkit.CMID(24 - i) // newest first
		if e.CMID != want {
			t.Fatalf("entry %d is %s, want %s", i, e.CMID, want)
		}
		// The cap is 10: the 10 newest counted clients count (the refusal
		// is number 3, far outside them).
		if counted := i < 10; e.Counted != counted {
			t.Errorf("entry %d (client %d): counted %v, want %v", i, 24-i, e.Counted, counted)
		}
		if e.Counted && (!e.LastCounted.Equal(e.LastSeen) || !e.CountedUntil.Equal(e.LastSeen.Add(DefaultCountWindow))) {
			t.Errorf("entry %d: last counted %v until %v, last seen %v", i, e.LastCounted, e.CountedUntil, e.LastSeen)
		}
	}

	since, _ := listAll(t, l, ClientsQuery{Limit: 100, Since: start.Add(20 * time.Minute)})
	if len(since) != 5 || since[4].CMID != testkit.CMID(20) {
		t.Fatalf("since minute 20: %d entries, want clients 24..20", len(since))
	}

	q := ClientsQuery{Limit: 100, Scan: 4, Keep: func(e *ClientEntry) bool { return e.Workstation[len(e.Workstation)-1]%2 == 0 }}
	even, pages := listAll(t, l, q)
	if len(even) != 13 || pages < 7 {
		t.Fatalf("even clients: %d in %d pages, want 13 in at least 7 (4 scanned per page)", len(even), pages)
	}

	clock.Advance(31 * 24 * time.Hour)
	later, _ := listAll(t, l, ClientsQuery{Limit: 50})
	for _, e := range later {
		if e.Counted {
			t.Fatalf("client %s still counted 31 days after its last request", e.CMID)
		}
	}

	if _, err := l.ClientsPage(ClientsQuery{After: []byte("short"), Limit: 1}); err == nil {
		t.Fatal("a 5-byte cursor was accepted")
	}

	// The refused-only client (kept apart from audit records) activates:
	// its record moves, and it is listed once, at the head.
	if err := l.Record(ctx, act(clock, 3, testkit.AppWindows)); err != nil {
		t.Fatal(err)
	}
	moved, _ := listAll(t, l, ClientsQuery{Limit: 6})
	if len(moved) != 25 || moved[0].CMID != testkit.CMID(3) || moved[0].Requests != 2 || !moved[0].Counted {
		t.Fatalf("after client 3 activated: %d entries, head %+v", len(moved), moved[0])
	}
}

// TestClientsPageRenewalDuringListing: a client that renews between two
// pages moves to the head and is not listed twice; every other client is
// listed once.
func TestClientsPageRenewalDuringListing(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	for i := range 10 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	p, err := l.ClientsPage(ClientsQuery{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := map[[16]byte]int{}
	for _, e := range p.Entries {
		got[e.CMID]++
	}
	if err := l.Record(ctx, act(clock, 8, testkit.AppWindows)); err != nil { // listed already
		t.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for after := p.Next; after != nil; after = p.Next {
		if p, err = l.ClientsPage(ClientsQuery{After: after, Limit: 4}); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			got[e.CMID]++
		}
	}
	if len(got) != 10 {
		t.Fatalf("%d distinct clients listed, want 10", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("client %x listed %d times", id, n)
		}
	}
}
