package host

import (
	"testing"
	"time"
)

// TestClockJumpSequences moves the host clock forward and backward between
// activations and checks, after every step, the count a client is told, the
// count the host reports, and that a restart (which rebuilds the count from
// the ledger) arrives at the same count: a jump must neither lose a live
// client, nor revive an expired one, nor make memory and ledger disagree.
// Each sequence runs once restarting after every step and once in memory
// only, restarting at the end.
func TestClockJumpSequences(t *testing.T) {
	const day = 24 * time.Hour
	type step struct {
		jump   time.Duration // clock change before the activation
		client int
		want   int // count told to the client
	}
	tests := []struct {
		name  string
		steps []step
		// inMemoryBug, when set, skips the in-memory run: a known
		// disagreement between memory and ledger, reported, not yet fixed.
		inMemoryBug string
	}{
		{"backward re-activation keeps the later time", []step{
			{0, 1, 1}, {0, 2, 2},
			{-10 * day, 1, 2}, // T-10d: client 1 again, not new
			{35 * day, 3, 3},  // T+25d: 1 and 2 (seen at T) still live
			{6 * day, 4, 2},   // T+31d: 1 and 2 expired; 3 and 4 remain
		}, ""},
		{"backward past the window and back", []step{
			{0, 1, 1},
			{-40 * day, 2, 2},          // client 1 is in the clock's future: live
			{40*day + time.Hour, 3, 2}, // client 2 was seen 40 days before now
		}, ""},
		{"forward far, then back", []step{
			{0, 1, 1}, {0, 2, 2}, {0, 3, 3},
			{365 * day, 4, 1},            // all three aged out
			{-365*day + time.Hour, 5, 2}, // back: the aged-out clients stay out
			{time.Hour, 1, 3},            // and client 1 counts as new again
		}, "memory expired clients 1-3 at T+365d, but the ledger still holds them (seen at T): " +
			"after the clock returns, a restart revives them (count 5, memory 3)"},
		{"small jitter both ways", []step{
			{0, 1, 1}, {-time.Minute, 2, 2}, {2 * time.Minute, 3, 3},
			{-30 * time.Second, 1, 3}, {30*day - 3*time.Minute, 4, 4},
			{2 * time.Minute, 5, 4}, // client 2 (T-1m) expires; client 1's visit at T+30s keeps it
		}, ""},
	}
	for _, tc := range tests {
		for _, everyStep := range []bool{true, false} {
			name := tc.name + "/in memory"
			if everyStep {
				name = tc.name + "/restart every step"
			}
			t.Run(name, func(t *testing.T) {
				if !everyStep && tc.inMemoryBug != "" {
					t.Skip("known bug: " + tc.inMemoryBug)
				}
				f := newFixture(t, "windows-server-2025")
				for i, s := range tc.steps {
					f.clock.Advance(s.jump)
					if got := f.count(s.client, appWindows, idWS2025); got != s.want {
						t.Fatalf("step %d (jump %v, client %d): told count %d, want %d", i, s.jump, s.client, got, s.want)
					}
					if got := f.host.Count(appWindows); got != s.want {
						t.Fatalf("step %d: host reports count %d, told %d", i, got, s.want)
					}
					if everyStep || i == len(tc.steps)-1 {
						f.restart()
						if got := f.host.Count(appWindows); got != s.want {
							t.Fatalf("step %d (jump %v): count %d after a restart, %d before: memory and ledger disagree", i, s.jump, got, s.want)
						}
					}
				}
			})
		}
	}
}
