package host

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/guid"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// TestAppCountMatchesModel drives appCount with random adds, cap raises,
// clock moves and expiries and compares it with a naive cache: a map from
// which the oldest other client (ledger order) is evicted whenever it holds
// more than the cap, and expired clients are dropped.
func TestAppCountMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		a := newAppCount()
		model := map[guid.GUID]time.Time{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		capN := 10
		a.raiseCap(capN)
		for step := range 400 {
			switch r := rng.IntN(100); {
			case r < 5:
				capN = 50
				a.raiseCap(capN)
			case r < 15:
				now = now.Add(time.Duration(rng.IntN(10*24)) * time.Hour)
			case r < 18:
				now = now.Add(-time.Duration(rng.IntN(48)) * time.Hour)
			}
			id := cmid(rng.IntN(80))
			cutoff := now.Add(-CountWindow)
			a.expire(cutoff)
			_, known := a.seen[id]
			isNew := a.add(id, now)
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
				var victim ledger.Seen
				first := true
				for m, ts := range model {
					s := ledger.Seen{CMID: m, LastSeen: ts}
					if m != id && (first || older(s, victim)) {
						victim, first = s, false
					}
				}
				delete(model, victim.CMID)
			}
			if a.count() != len(model) {
				t.Fatalf("round %d step %d: count %d, want %d", round, step, a.count(), len(model))
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
