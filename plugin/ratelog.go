package vlmcs

import (
	"fmt"
	"sync"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin(pluginName)

// rateLog writes at most burst lines per period, plus the first line of each class (a kind of
// event, from a fixed set) not yet written in the period, and reports how many it suppressed:
// a flood of one kind (unsigned updates, which cost an attacker nothing) cannot flood the log,
// nor keep another kind (a bad signature on a real key, a rogue target) out of it.
type rateLog struct {
	mu         sync.Mutex
	burst      int
	period     time.Duration
	start      time.Time
	n          int
	suppressed int
	classes    map[string]bool // classes written in the current period
	out        func(string)    // log.Warning by default; tests capture
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
func (l *rateLog) Logf(format string, args ...any) { l.Classf("", format, args...) }

// maxLogClasses bounds the classes remembered per period; callers pass a fixed set.
const maxLogClasses = 64

// Classf is Logf for a line of class (a constant kind of event): the first line of a class in
// each period is written even when the period's budget is spent. "" is no class.
func (l *rateLog) Classf(class, format string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	var summary string
	if now.Sub(l.start) >= l.period {
		if l.suppressed > 0 {
			summary = fmt.Sprintf("%d similar messages suppressed", l.suppressed)
		}
		l.start, l.n, l.suppressed = now, 0, 0
		clear(l.classes)
	}
	ok := l.n < l.burst
	if class != "" && !l.classes[class] && len(l.classes) < maxLogClasses {
		if l.classes == nil {
			l.classes = map[string]bool{}
		}
		l.classes[class] = true
		ok = true
	}
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
