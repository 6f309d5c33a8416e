package vlmcs

import (
	"fmt"
	"sync"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin(pluginName)

// rateLog writes at most burst lines per period and reports how many it suppressed, so
// that a flood of refused updates or rogue records cannot flood the log.
type rateLog struct {
	mu         sync.Mutex
	burst      int
	period     time.Duration
	start      time.Time
	n          int
	suppressed int
	out        func(string) // log.Warning by default; tests capture
}

// newRateLog is a rateLog at warning level, for refusals and rogue records.
func newRateLog(burst int, period time.Duration) *rateLog {
	return &rateLog{burst: burst, period: period, out: func(s string) { log.Warning(s) }}
}

// newEventLog is a rateLog at info level, for pool events (members joining, leaving, changing
// health).
func newEventLog(burst int, period time.Duration) *rateLog {
	return &rateLog{burst: burst, period: period, out: func(s string) { log.Info(s) }}
}

// Logf logs (at the log's level) unless the budget of the current period is spent.
func (l *rateLog) Logf(format string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	var summary string
	if now.Sub(l.start) >= l.period {
		if l.suppressed > 0 {
			summary = fmt.Sprintf("%d similar messages suppressed", l.suppressed)
		}
		l.start, l.n, l.suppressed = now, 0, 0
	}
	ok := l.n < l.burst
	if ok {
		l.n++
	} else {
		l.suppressed++
	}
	out := l.out
	l.mu.Unlock()
	if summary != "" {
		out(summary)
	}
	if ok {
		out(fmt.Sprintf(format, args...))
	}
}
