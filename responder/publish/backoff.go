package publish

import "time"

// backoff returns the delay before the next attempt after failures
// consecutive failures (failures >= 1): lo doubled per earlier failure,
// capped at hi, then jittered into [d/2, d] by r in [0, 1) so that
// responders that failed together do not retry together.
func backoff(failures int, lo, hi time.Duration, r float64) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// refreshDelay returns when to refresh a registration granted for lease:
// between 40% and 50% of it, by r in [0, 1), so refreshes of many
// responders spread out and always land well before the lease ends.
func refreshDelay(lease time.Duration, r float64) time.Duration {
	half := lease / 2
	return half - time.Duration(r*float64(half/5))
}
