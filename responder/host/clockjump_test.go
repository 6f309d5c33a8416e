package host

import (
	"context"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
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
	}{
		{"backward re-activation keeps the later time", []step{
			{0, 1, 1}, {0, 2, 2},
			{-10 * day, 1, 2}, // T-10d: client 1 again, not new
			{35 * day, 3, 3},  // T+25d: 1 and 2 (seen at T) still live
			{6 * day, 4, 2},   // T+31d: 1 and 2 expired; 3 and 4 remain
		}},
		{"backward past the window and back", []step{
			{0, 1, 1},
			{-40 * day, 2, 2},          // client 1 is in the clock's future: live
			{40*day + time.Hour, 3, 2}, // client 2 was seen 40 days before now
		}},
		{"forward far, then back", []step{
			{0, 1, 1}, {0, 2, 2}, {0, 3, 3},
			{365 * day, 4, 1},            // all three aged out
			{-365*day + time.Hour, 5, 2}, // back: the aged-out clients stay out
			{time.Hour, 1, 3},            // and client 1 counts as new again
		}},
		{"small jitter both ways", []step{
			{0, 1, 1}, {-time.Minute, 2, 2}, {2 * time.Minute, 3, 3},
			{-30 * time.Second, 1, 3}, {30*day - 3*time.Minute, 4, 4},
			{2 * time.Minute, 5, 4}, // client 2 (T-1m) expires; client 1's visit at T+30s keeps it
		}},
	}
	for _, tc := range tests {
		for _, everyStep := range []bool{true, false} {
			name := tc.name + "/in memory"
			if everyStep {
				name = tc.name + "/restart every step"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, "windows-server-2025")
				for i, s := range tc.steps {
					f.clock.Advance(s.jump)
					if got := f.count(s.client, testkit.AppWindows, idWS2025); got != s.want {
						t.Fatalf("step %d (jump %v, client %d): told count %d, want %d", i, s.jump, s.client, got, s.want)
					}
					if got := f.host.Count(testkit.AppWindows); got != s.want {
						t.Fatalf("step %d: host reports count %d, told %d", i, got, s.want)
					}
					if everyStep || i == len(tc.steps)-1 {
						f.restart()
						if got := f.host.Count(testkit.AppWindows); got != s.want {
							t.Fatalf("step %d (jump %v): count %d after a restart, %d before: memory and ledger disagree", i, s.jump, got, s.want)
						}
					}
				}
			})
		}
	}
}

// TestReadsAndPrunesDoNotExpire: while the clock is far ahead, reading the
// count (status, metrics) and the ledger's periodic prune must not expire
// anyone, since only counted activations expire clients; when the clock
// comes back without an activation in between, memory and a restart still
// count the same clients.
func TestReadsAndPrunesDoNotExpire(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	for i := 1; i <= 3; i++ {
		f.count(i, testkit.AppWindows, idWS2025)
	}
	f.clock.Advance(365 * 24 * time.Hour)
	if got := f.host.Count(testkit.AppWindows); got != 0 {
		t.Fatalf("a year on: count %d, want 0 (all expired from view)", got)
	}
	if st := f.host.Status(); len(st.Apps) == 0 || st.Apps[0].Count != 0 {
		t.Fatalf("a year on: status apps %+v, want a count of 0", st.Apps)
	}
	if err := f.store.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(-365*24*time.Hour + time.Hour)
	if got := f.host.Count(testkit.AppWindows); got != 3 {
		t.Fatalf("clock back: count %d, want 3", got)
	}
	f.restart()
	if got := f.host.Count(testkit.AppWindows); got != 3 {
		t.Fatalf("clock back, after a restart: count %d, want 3 as before it", got)
	}
}
