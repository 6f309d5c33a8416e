package admin

import (
	"sync"
	"time"
)

// logLimiter lets one log line a second through and counts the ones it
// held back, so a flood of refusals cannot flood the log (or fill the disk
// that holds it) while the count still tells how many there were.
type logLimiter struct {
	mu    sync.Mutex
	last  time.Time
	quiet int // held back since the last line let through
}

// allow reports whether a line may be logged now and, if so, how many were
// held back since the previous one.
func (l *logLimiter) allow(now time.Time) (ok bool, heldBack int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < time.Second {
		l.quiet++
		return false, 0
	}
	heldBack = l.quiet
	l.last, l.quiet = now, 0
	return true, heldBack
}
