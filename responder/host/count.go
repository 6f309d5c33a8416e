package host

import (
	"sort"
	"time"

	"github.com/kmsdns/kmsdns/responder/guid"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// appCount is one application's client count: the newest clients seen
// within CountWindow, at most capN of them. A real host caches exactly that
// many machine IDs, so the count it reports is the number of cached IDs
// that have not expired.
//
// The set is the capN newest entries, in ledger.SortNewestFirst order, of
// all clients ever counted; the ledger trims its copy with the same order,
// so the two agree after a restart whatever order concurrent writes landed
// in. Entries are kept oldest first in a slice (at most capN, typically 10
// or 50) with a map for membership, so expiry and eviction work at the
// front and a new client is usually appended at the back.
type appCount struct {
	capN  int
	seen  map[guid.GUID]time.Time
	order []ledger.Seen // oldest first
}

func newAppCount() *appCount { return &appCount{seen: map[guid.GUID]time.Time{}} }

// raiseCap grows the cap to n; it never shrinks.
func (a *appCount) raiseCap(n int) {
	if n > a.capN {
		a.capN = n
	}
}

// older reports whether x sorts before y (is older).
func older(x, y ledger.Seen) bool { return ledger.Newer(y, x) }

// index returns the position of s in order, or where it would go.
func (a *appCount) index(s ledger.Seen) int {
	return sort.Search(len(a.order), func(i int) bool { return !older(a.order[i], s) })
}

func (a *appCount) insert(s ledger.Seen) {
	i := a.index(s)
	a.order = append(a.order, ledger.Seen{})
	copy(a.order[i+1:], a.order[i:])
	a.order[i] = s
	a.seen[s.CMID] = s.LastSeen
}

func (a *appCount) remove(s ledger.Seen) {
	i := a.index(s)
	if i < len(a.order) && a.order[i] == s {
		a.order = append(a.order[:i], a.order[i+1:]...)
	}
	delete(a.seen, s.CMID)
}

// expire drops clients last seen at or before cutoff.
func (a *appCount) expire(cutoff time.Time) {
	n := 0
	for n < len(a.order) && !a.order[n].LastSeen.After(cutoff) {
		delete(a.seen, a.order[n].CMID)
		n++
	}
	if n > 0 {
		a.order = append(a.order[:0], a.order[n:]...)
	}
}

// add counts cmid as seen at now and returns whether it was new. When the
// set outgrows the cap, the oldest other client leaves it: the requester
// always stays in.
func (a *appCount) add(cmid guid.GUID, now time.Time) (isNew bool) {
	if t, ok := a.seen[cmid]; ok {
		if now.After(t) {
			a.remove(ledger.Seen{CMID: cmid, LastSeen: t})
			a.insert(ledger.Seen{CMID: cmid, LastSeen: now})
		}
		return false
	}
	a.insert(ledger.Seen{CMID: cmid, LastSeen: now})
	for len(a.order) > a.capN && len(a.order) > 1 {
		victim := a.order[0]
		if victim.CMID == cmid {
			// Only after the clock went back: keep the requester.
			victim = a.order[1]
		}
		a.remove(victim)
	}
	return true
}

// count is the number of clients in the set.
func (a *appCount) count() int { return len(a.order) }

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
		if t, ok := a.seen[s.CMID]; ok {
			if !s.LastSeen.After(t) {
				continue
			}
			a.remove(ledger.Seen{CMID: s.CMID, LastSeen: t})
		}
		a.insert(s)
	}
}
