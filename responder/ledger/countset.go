package ledger

import (
	"sort"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// CountSet is one application's client count as a KMS host keeps it: the
// machine IDs seen within the count window, at most Cap of them. A real host
// caches exactly that many machine IDs, so the count it reports is the
// number of cached IDs that have not expired.
//
// The host's memory and the ledger's store both run every counted
// activation through a CountSet, in the same order (the order of the log):
// Expire with the activation's cutoff, then Add. Because the two apply the
// same operations in the same order, they hold the same set whatever the
// clock did in between; a count rebuilt from the store after a restart is
// the count the host had. Expiry is an operation, not a view: once a client
// has left the set it does not come back when the clock goes back.
//
// Entries are kept oldest first (SortNewestFirst order reversed) in a
// slice of at most Cap entries (typically 10 or 50) with a map for
// membership, so expiry and eviction work at the front and a new client is
// usually appended at the back. A CountSet is not safe for concurrent use.
type CountSet struct {
	capN  int
	seen  map[guid.GUID]time.Time
	order []Seen // oldest first
}

// NewCountSet returns an empty set with no cap.
func NewCountSet() *CountSet { return &CountSet{seen: map[guid.GUID]time.Time{}} }

// RaiseCap grows the cap to n; it never shrinks.
func (c *CountSet) RaiseCap(n int) {
	if n > c.capN {
		c.capN = n
	}
}

// Cap is the set's cap: at most this many clients are kept.
func (c *CountSet) Cap() int { return c.capN }

// Len is the number of clients in the set, expired or not.
func (c *CountSet) Len() int { return len(c.order) }

// Live is the number of clients in the set last seen after cutoff. Unlike
// Expire it changes nothing, so reading a count never alters what a later
// activation or a restart sees.
func (c *CountSet) Live(cutoff time.Time) int {
	return len(c.order) - sort.Search(len(c.order), func(i int) bool { return c.order[i].LastSeen.After(cutoff) })
}

// Entries returns the clients in the set, oldest first.
func (c *CountSet) Entries() []Seen { return append([]Seen(nil), c.order...) }

// older reports whether x sorts before y (is older).
func older(x, y Seen) bool { return Newer(y, x) }

// index returns the position of s in order, or where it would go.
func (c *CountSet) index(s Seen) int {
	return sort.Search(len(c.order), func(i int) bool { return !older(c.order[i], s) })
}

func (c *CountSet) insert(s Seen) {
	i := c.index(s)
	c.order = append(c.order, Seen{})
	copy(c.order[i+1:], c.order[i:])
	c.order[i] = s
	c.seen[s.CMID] = s.LastSeen
}

func (c *CountSet) remove(s Seen) {
	i := c.index(s)
	if i < len(c.order) && c.order[i] == s {
		c.order = append(c.order[:i], c.order[i+1:]...)
	}
	delete(c.seen, s.CMID)
}

// Expire drops the clients last seen at or before cutoff.
func (c *CountSet) Expire(cutoff time.Time) {
	n := 0
	for n < len(c.order) && !c.order[n].LastSeen.After(cutoff) {
		delete(c.seen, c.order[n].CMID)
		n++
	}
	if n > 0 {
		c.order = append(c.order[:0], c.order[n:]...)
	}
}

// Add counts cmid as seen at now and reports whether it was new. A known
// client's time only moves forward. When the set outgrows its cap, the
// oldest other client leaves it: the requester always stays in.
func (c *CountSet) Add(cmid guid.GUID, now time.Time) (isNew bool) {
	if t, ok := c.seen[cmid]; ok {
		if now.After(t) {
			c.remove(Seen{CMID: cmid, LastSeen: t})
			c.insert(Seen{CMID: cmid, LastSeen: now})
		}
		return false
	}
	c.insert(Seen{CMID: cmid, LastSeen: now})
	for len(c.order) > c.capN && len(c.order) > 1 {
		victim := c.order[0]
		if victim.CMID == cmid {
			// Only after the clock went back: keep the requester.
			victim = c.order[1]
		}
		c.remove(victim)
	}
	return true
}

// AddUndo is what one Add changed, for Revert.
type AddUndo struct {
	cmid    guid.GUID
	now     time.Time
	prev    time.Time // the client's time before, when known
	known   bool
	evicted []Seen
}

// AddWithUndo is Add that also returns what it changed, so that a caller
// whose activation could not be recorded can take it back (Revert).
func (c *CountSet) AddWithUndo(cmid guid.GUID, now time.Time) (isNew bool, u AddUndo) {
	u = AddUndo{cmid: cmid, now: now}
	u.prev, u.known = c.seen[cmid]
	if u.known {
		c.Add(cmid, now)
		return false, u
	}
	c.insert(Seen{CMID: cmid, LastSeen: now})
	for len(c.order) > c.capN && len(c.order) > 1 {
		victim := c.order[0]
		if victim.CMID == cmid {
			victim = c.order[1]
		}
		c.remove(victim)
		u.evicted = append(u.evicted, victim)
	}
	return true, u
}

// Revert takes back the Add that returned u: a new client leaves the set
// (and the clients it pushed out come back while there is room), a known
// one gets its former time back. Adds of other clients since are kept; if
// the client has been counted again since, Revert changes nothing.
func (c *CountSet) Revert(u AddUndo) {
	t, ok := c.seen[u.cmid]
	if !ok || !t.Equal(u.now) {
		return
	}
	c.remove(Seen{CMID: u.cmid, LastSeen: t})
	if u.known {
		c.insert(Seen{CMID: u.cmid, LastSeen: u.prev})
		return
	}
	for _, s := range u.evicted {
		if _, in := c.seen[s.CMID]; !in && (c.capN == 0 || len(c.order) < c.capN) {
			c.insert(s)
		}
	}
}

// Load fills the set from stored entries: the newest Cap of those last
// seen after cutoff (all of them when the cap is 0). A client already in
// the set keeps the later of its two times.
func (c *CountSet) Load(entries []Seen, cutoff time.Time) {
	live := make([]Seen, 0, len(entries))
	for _, s := range entries {
		if s.LastSeen.After(cutoff) {
			live = append(live, s)
		}
	}
	SortNewestFirst(live)
	if c.capN > 0 && len(live) > c.capN {
		live = live[:c.capN]
	}
	for _, s := range live {
		if t, ok := c.seen[s.CMID]; ok {
			if !s.LastSeen.After(t) {
				continue
			}
			c.remove(Seen{CMID: s.CMID, LastSeen: t})
		}
		c.insert(s)
	}
}
