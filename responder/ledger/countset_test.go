package ledger

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestCountSetMatchesModel drives CountSet with random adds, cap raises,
// clock moves and expiries and compares it with a naive cache: a map from
// which the oldest other client (ledger order) is evicted whenever it holds
// more than the cap, and expired clients are dropped.
func TestCountSetMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		a := NewCountSet()
		model := map[guid.GUID]time.Time{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		capN := 10
		a.RaiseCap(capN)
		for step := range 400 {
			switch r := rng.IntN(100); {
			case r < 5:
				capN = 50
				a.RaiseCap(capN)
			case r < 15:
				now = now.Add(time.Duration(rng.IntN(10*24)) * time.Hour)
			case r < 18:
				now = now.Add(-time.Duration(rng.IntN(48)) * time.Hour)
			}
			id := testkit.CMID(rng.IntN(80))
			cutoff := now.Add(-DefaultCountWindow)
			live := 0
			for _, ts := range a.seen {
				if ts.After(cutoff) {
					live++
				}
			}
			if got := a.Live(cutoff); got != live {
				t.Fatalf("round %d step %d: Live = %d, want %d", round, step, got, live)
			}
			a.Expire(cutoff)
			_, known := a.seen[id]
			isNew := a.Add(id, now)
			if isNew == known {
				t.Fatalf("round %d step %d: add returned isNew=%v for a client known=%v", round, step, isNew, known)
			}
			for m, ts := range model {
				if !ts.After(cutoff) {
					delete(model, m)
				}
			}
			if t0, ok := model[id]; !ok || now.After(t0) {
				model[id] = now
			}
			for len(model) > capN {
				var victim Seen
				first := true
				for m, ts := range model {
					s := Seen{CMID: m, LastSeen: ts}
					if m != id && (first || older(s, victim)) {
						victim, first = s, false
					}
				}
				delete(model, victim.CMID)
			}
			if a.Len() != len(model) {
				t.Fatalf("round %d step %d: count %d, want %d", round, step, a.Len(), len(model))
			}
			for m, ts := range model {
				if got, ok := a.seen[m]; !ok || !got.Equal(ts) {
					t.Fatalf("round %d step %d: %v missing or stale", round, step, m)
				}
			}
			if len(a.seen) != len(a.order) {
				t.Fatalf("map has %d entries, order %d", len(a.seen), len(a.order))
			}
			for i := 1; i < len(a.order); i++ {
				if !older(a.order[i-1], a.order[i]) {
					t.Fatalf("order not sorted at %d", i)
				}
			}
		}
	}
}

// TestStoredCountReplaysCountSet records random counted activations while
// the clock jumps both ways, with periodic prunes, batched applies and
// reopens, and checks that the stored count always equals a CountSet that
// saw the same activations: the store replays the host's count, so a
// restarted host counts the clients the running one did.
func TestStoredCountReplaysCountSet(t *testing.T) {
	const day = 24 * time.Hour
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})
	model := NewCountSet()
	check := func(step int) {
		t.Helper()
		cs, err := l.Counts()
		if err != nil {
			t.Fatal(err)
		}
		cutoff := clock.Now().Add(-DefaultCountWindow)
		var stored []Seen
		for _, c := range cs {
			if c.App == testkit.AppWindows {
				stored = c.Clients
			}
		}
		want := map[guid.GUID]time.Time{}
		for _, s := range model.Entries() {
			if s.LastSeen.After(cutoff) {
				want[s.CMID] = s.LastSeen
			}
		}
		if len(stored) != len(want) || len(stored) != model.Live(cutoff) {
			t.Fatalf("step %d: stored count %d, model %d (%d live)", step, len(stored), len(want), model.Live(cutoff))
		}
		for _, s := range stored {
			if w, ok := want[s.CMID]; !ok || !w.Equal(s.LastSeen) {
				t.Fatalf("step %d: stored %v at %v, model has %v (%v)", step, s.CMID, s.LastSeen, w, ok)
			}
		}
	}
	for step := range 300 {
		switch r := rng.IntN(100); {
		case r < 10:
			clock.Advance(time.Duration(rng.IntN(60)) * day)
		case r < 18:
			clock.Advance(-time.Duration(rng.IntN(60)) * day)
		case r < 22:
			if err := l.Prune(ctx); err != nil {
				t.Fatal(err)
			}
		case r < 25:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTest(t, dir, clock, Options{})
			// A reopened store drops what is outside the window, as a
			// restarted host does when it loads its count.
			fresh := NewCountSet()
			fresh.RaiseCap(model.Cap())
			fresh.Load(model.Entries(), clock.Now().Add(-DefaultCountWindow))
			model = fresh
		}
		clock.Advance(time.Minute)
		a := act(clock, rng.IntN(40), testkit.AppWindows)
		if rng.IntN(4) == 0 {
			a.Cap = 50
		}
		model.RaiseCap(a.Cap)
		model.Expire(a.Time.Add(-DefaultCountWindow))
		model.Add(a.CMID, a.Time)
		if err := l.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
		if step%7 == 0 {
			check(step)
		}
	}
	check(300)
}
