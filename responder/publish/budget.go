package publish

import (
	"math"
	"time"
)

// LeaseFloor is the shortest granted lease the Publisher schedules refreshes
// by (or the requested lease, when that is shorter): a server that grants
// less is refreshed as if it had granted the floor, and the records lapse
// there between refreshes, which State and the log show, rather than the
// responder sending signed UPDATEs as fast as the server asks.
const LeaseFloor = 30 * time.Second

// updateBurst is how many UPDATEs a Publisher sends one server back to back
// before the budget paces it (updateBudget).
const updateBurst = 6

// floor is the lease floor for these settings: LeaseFloor, or the requested
// lease when that is shorter (an operator's explicit choice).
func (s *settings) floor() time.Duration {
	return min(LeaseFloor, time.Duration(s.lease)*time.Second)
}

// scheduleLease is the lease refreshes are scheduled by: granted, raised
// to the floor.
func (s *settings) scheduleLease(granted time.Duration) time.Duration {
	return max(granted, s.floor())
}

// updateBudget bounds the UPDATEs (registrations and the withdrawals of a
// suspension) sent to one server whatever it answers: a bucket of
// updateBurst, refilled with one UPDATE every refill, the earliest a
// refresh at the floor lease can come (40% of it). Refreshes, retries after
// refusals and re-registrations after presence checks all draw from it.
// The final Withdraw does not: it is sent once, at stop.
type updateBudget struct {
	refill time.Duration
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newUpdateBudget(floor time.Duration) updateBudget {
	return updateBudget{refill: max(floor*2/5, time.Millisecond), tokens: updateBurst}
}

// take spends one UPDATE at now and returns 0, or returns how long to wait
// until one is available (spending nothing).
func (b *updateBudget) take(now time.Time) time.Duration {
	if !b.at.IsZero() && now.After(b.at) {
		b.tokens = min(updateBurst, b.tokens+float64(now.Sub(b.at))/float64(b.refill))
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return max(time.Duration(math.Ceil((1-b.tokens)*float64(b.refill))), 1)
}
