package vlmcs

import (
	"testing"
	"time"
)

func TestHealthCheck(t *testing.T) {
	pc := probeConfig{interval: 100 * time.Millisecond, fails: 2, passes: 2}
	type step struct {
		ok      bool
		state   health
		changed bool
		next    time.Duration // with jitter 0
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"up after PASSES", []step{{true, healthPending, false, 100 * time.Millisecond}, {true, healthUp, true, 100 * time.Millisecond}, {true, healthUp, false, 100 * time.Millisecond}}},
		{"down after FAILS, then backing off to 8 intervals", []step{
			{false, healthPending, false, 100 * time.Millisecond},
			{false, healthDown, true, 100 * time.Millisecond},
			{false, healthDown, false, 200 * time.Millisecond},
			{false, healthDown, false, 400 * time.Millisecond},
			{false, healthDown, false, 800 * time.Millisecond},
			{false, healthDown, false, 800 * time.Millisecond},
		}},
		{"a pass breaks a failure run", []step{{false, healthPending, false, 100 * time.Millisecond}, {true, healthPending, false, 100 * time.Millisecond}, {false, healthPending, false, 100 * time.Millisecond}}},
		{"recovery needs PASSES in a row", []step{
			{false, healthPending, false, 100 * time.Millisecond}, {false, healthDown, true, 100 * time.Millisecond},
			{true, healthDown, false, 100 * time.Millisecond}, {true, healthUp, true, 100 * time.Millisecond},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h healthCheck
			for i, s := range tc.steps {
				if changed := h.observe(s.ok, pc); changed != s.changed || h.state != s.state {
					t.Fatalf("step %d (ok %v): state %s changed %v, want %s %v", i, s.ok, h.state, changed, s.state, s.changed)
				}
				if n := h.next(pc, 0); n != s.next {
					t.Fatalf("step %d: next %s, want %s", i, n, s.next)
				}
				if n := h.next(pc, 0.999); h.state == healthDown && (n < s.next*3/4 || n > s.next) {
					t.Fatalf("step %d: jittered next %s outside [3/4, 1] of %s", i, n, s.next)
				}
			}
		})
	}
}
