package host

import (
	"time"

	"github.com/kmsdns/kmsdns/responder/guid"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// appCount is one application's client count: the newest clients seen
// within CountWindow, at most capN of them. A real host caches exactly that
// many machine IDs, so the count it reports is the number of cached IDs
// that have not expired.
//
// The set is the capN newest entries in ledger.SortNewestFirst order of all
// clients ever counted; the ledger trims its copy with the same order, so
// the two agree after a restart whatever order concurrent writes landed in.
type appCount struct {
	capN int
	seen map[guid.GUID]time.Time
}

func newAppCount() *appCount { return &appCount{seen: map[guid.GUID]time.Time{}} }

// raiseCap grows the cap to n; it never shrinks.
func (a *appCount) raiseCap(n int) {
	if n > a.capN {
		a.capN = n
	}
}

// expire drops clients last seen at or before cutoff. It costs O(cap).
func (a *appCount) expire(cutoff time.Time) {
	for id, t := range a.seen {
		if !t.After(cutoff) {
			delete(a.seen, id)
		}
	}
}

// add counts cmid as seen at now and returns whether it was new. When the
// set outgrows the cap, the oldest other client leaves it: the requester
// always stays in.
func (a *appCount) add(cmid guid.GUID, now time.Time) (isNew bool) {
	if t, ok := a.seen[cmid]; ok {
		if now.After(t) {
			a.seen[cmid] = now
		}
		return false
	}
	a.seen[cmid] = now
	for len(a.seen) > a.capN && len(a.seen) > 1 {
		var oldest ledger.Seen
		first := true
		for id, t := range a.seen {
			if id == cmid {
				continue
			}
			s := ledger.Seen{CMID: id, LastSeen: t}
			if first || ledger.Newer(oldest, s) {
				oldest, first = s, false
			}
		}
		delete(a.seen, oldest.CMID)
	}
	return true
}

// count is the number of clients in the set.
func (a *appCount) count() int { return len(a.seen) }

// load fills the set from stored entries: the newest capN of those last
// seen after cutoff.
func (a *appCount) load(entries []ledger.Seen, cutoff time.Time) {
	live := make([]ledger.Seen, 0, len(entries))
	for _, s := range entries {
		if s.LastSeen.After(cutoff) {
			live = append(live, s)
		}
	}
	ledger.SortNewestFirst(live)
	if a.capN > 0 && len(live) > a.capN {
		live = live[:a.capN]
	}
	for _, s := range live {
		if t, ok := a.seen[s.CMID]; !ok || s.LastSeen.After(t) {
			a.seen[s.CMID] = s.LastSeen
		}
	}
}
