package vlmcs

import (
	"sync"
	"time"
)

// maxReplayEntries bounds the memory of the replay guard. Only holders of a valid key can
// fill it (entries are added after the MAC verified); when full the oldest entry goes.
const maxReplayEntries = 1 << 16

// replayGuard remembers the MACs of accepted signed updates until their signature could no
// longer pass the time check (time signed + fudge), so that a captured update replayed within
// its window — a withdraw replayed after the host registered again — is refused.
type replayGuard struct {
	mu    sync.Mutex
	seen  map[string]time.Time // key name + MAC → when it stops mattering
	order []replayEntry        // insertion order, for eviction and expiry
	head  int
}

type replayEntry struct {
	id      string
	expires time.Time
}

func newReplayGuard() *replayGuard { return &replayGuard{seen: map[string]time.Time{}} }

// first records id (valid until expires) and reports whether it was not seen before.
func (g *replayGuard) first(id string, expires, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Drop expired entries from the front.
	for g.head < len(g.order) {
		e := g.order[g.head]
		if now.Before(e.expires) && len(g.order)-g.head < maxReplayEntries {
			break
		}
		if g.seen[e.id].Equal(e.expires) {
			delete(g.seen, e.id)
		}
		g.head++
	}
	if g.head > len(g.order)/2 && g.head > 1024 {
		g.order = append(g.order[:0], g.order[g.head:]...)
		g.head = 0
	}
	if exp, ok := g.seen[id]; ok && now.Before(exp) {
		return false
	}
	g.seen[id] = expires
	g.order = append(g.order, replayEntry{id, expires})
	return true
}
