package vlmcs

import (
	"container/heap"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Bounds on the replay memory. Entries are added only after a MAC verified, so only key
// holders fill it; an unexpired entry is never evicted (forgetting it would let its message
// be replayed), so a key whose quota is used up, or any key while the whole memory is full,
// is refused until entries expire.
const (
	maxReplayEntries = 1 << 16 // unexpired MACs remembered, all keys together
	maxReplayPerKey  = 1 << 13 // unexpired MACs remembered per key
)

// tsigDefaultFudge is what miekg/dns verifies a TSIG fudge of 0 as (its tsigBuffer substitutes
// RFC 8945's recommended 300 s before both the MAC and the time check).
const tsigDefaultFudge = 300

// tsigWindow returns the time a verified TSIG record was signed and the end of the window in
// which miekg/dns accepts it: time signed + the fudge it enforces (a fudge of 0 counts as
// 300 s, as tsigBuffer makes it), plus one second because TSIG time counts whole seconds.
func tsigWindow(t *dns.TSIG) (signed, until time.Time) {
	fudge := time.Duration(t.Fudge) * time.Second
	if t.Fudge == 0 {
		fudge = tsigDefaultFudge * time.Second
	}
	signed = time.Unix(int64(t.TimeSigned), 0)
	return signed, signed.Add(fudge + time.Second)
}

// replayVerdict is what the replay memory says about a verified MAC.
type replayVerdict uint8

const (
	replayFirst    replayVerdict = iota // not seen before: now remembered
	replaySeen                          // seen within its window: a replay
	replayKeyFull                       // the key's quota of remembered MACs is used up
	replayFull                          // the whole memory is full
	replayUnstored                      // replay_file could not be written: not remembered
)

// replayGuard remembers the MACs of accepted signed updates until their signature could no
// longer pass the time check (see tsigWindow), so that a captured update replayed within its
// window — a withdraw replayed after the host registered again — is refused.
type replayGuard struct {
	mu     sync.Mutex
	seen   map[string]time.Time // key name + "/" + MAC → end of its window
	perKey map[string]int       // unexpired entries per key name
	byEnd  replayHeap           // every entry, soonest window end first
	store  *replayStore         // replay_file, nil without one
	err    error                // why the last write to store failed, for the refusal
}

type replayEntry struct {
	key, id string
	expires time.Time
}

func newReplayGuard() *replayGuard {
	return &replayGuard{seen: map[string]time.Time{}, perKey: map[string]int{}}
}

// check records the MAC of key (its window ending at expires) and reports whether it was
// seen before, or cannot be remembered because a bound is reached (then it is not recorded
// and the update must be refused).
func (g *replayGuard) check(key, mac string, expires, now time.Time) replayVerdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.byEnd) > 0 && !now.Before(g.byEnd[0].expires) {
		e := heap.Pop(&g.byEnd).(replayEntry)
		if g.seen[e.id].Equal(e.expires) {
			delete(g.seen, e.id)
		}
		if g.perKey[e.key]--; g.perKey[e.key] <= 0 {
			delete(g.perKey, e.key)
		}
	}
	id := key + "/" + mac
	if exp, ok := g.seen[id]; ok && now.Before(exp) {
		return replaySeen
	}
	switch {
	case g.perKey[key] >= maxReplayPerKey:
		return replayKeyFull
	case len(g.byEnd) >= maxReplayEntries:
		return replayFull
	}
	e := replayEntry{key, id, expires}
	if g.store != nil {
		if err := g.store.compact(g.byEnd); err != nil {
			g.err = err
			return replayUnstored
		}
		if err := g.store.add(e); err != nil {
			g.err = err
			return replayUnstored
		}
	}
	g.seen[id] = expires
	g.perKey[key]++
	heap.Push(&g.byEnd, e)
	return replayFirst
}

// persist keeps the memory in the replay file at path from now on, loading its unexpired
// entries (see replayfile.go). A guard keeps one file: persisting again to the same path (a
// reload) does nothing, to another one is an error.
func (g *replayGuard) persist(path string, now time.Time) error {
	path = filepath.Clean(path)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.store != nil {
		if g.store.path == path {
			return nil
		}
		return fmt.Errorf("replay_file: the replay memory is kept in %s already (one file per CoreDNS process)", g.store.path)
	}
	st, entries, err := openReplayStore(path, now)
	if err != nil {
		return err
	}
	if len(entries)+len(g.byEnd) > maxReplayEntries {
		st.f.Close()
		return fmt.Errorf("replay_file: %s holds %d unexpired entries, more than the %d the memory holds", path, len(entries), maxReplayEntries)
	}
	for _, e := range entries {
		if _, ok := g.seen[e.id]; ok {
			continue
		}
		g.seen[e.id] = e.expires
		g.perKey[e.key]++
		heap.Push(&g.byEnd, e)
	}
	if err := st.rewrite(g.byEnd); err != nil {
		st.f.Close()
		return fmt.Errorf("replay_file: %s: %w", path, err)
	}
	g.store = st
	return nil
}

// lastErr returns why the last write to the replay file failed.
func (g *replayGuard) lastErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// size returns the number of remembered entries (expired ones not yet dropped included).
func (g *replayGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byEnd)
}

// replayHeap is a min-heap of entries by window end (container/heap).
type replayHeap []replayEntry

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h replayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *replayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
