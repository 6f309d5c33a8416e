package vlmcs

import (
	"sync"
	"time"
)

// registry keeps pools and the replay memory across Corefile reloads. It is the one piece of
// package-level mutable state (besides the prometheus collectors): CoreDNS builds a new plugin
// instance on every reload, and the registered members, their leases and health, and the MACs
// of accepted signed updates must survive that. Pools are keyed by what identifies them, the
// listener (transport and port, see listenerKey) and the zone, so a reload that changes a
// block's other zones or its bind addresses keeps them; blocks on one listener that publish a
// zone with different configurations add their bind addresses (poolTags), whatever their order. Entries are reference-counted: a new instance acquires its pools
// during setup, the old one releases them in OnShutdown, and the last release forgets the pool.
// A reload that fails after vlmcs's setup leaves one reference behind (the failed instance is
// never shut down): the pool then lives until the process ends, which costs nothing else.
var registry = &poolRegistry{pools: map[string]*registryEntry{}, replay: newReplayGuard(), started: time.Now()}

type poolRegistry struct {
	mu    sync.Mutex
	pools map[string]*registryEntry

	// replay remembers accepted signed updates for every pool of the process: a pool dropped
	// by one reload and created again by the next still refuses a replay.
	replay *replayGuard
	// started is when the process started: signed updates timed before it are refused, so a
	// restart, which forgets replay, cannot reopen a replay window.
	started time.Time
}

type registryEntry struct {
	pool *pool
	refs int
}

// acquire returns the pool under key, creating it with mk when absent.
func (r *poolRegistry) acquire(key string, mk func() *pool) *pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.pools[key]
	if !ok {
		e = &registryEntry{pool: mk()}
		r.pools[key] = e
	}
	e.refs++
	return e.pool
}

// release drops one reference to the pool under key.
func (r *poolRegistry) release(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.pools[key]
	if !ok {
		return
	}
	if e.refs--; e.refs <= 0 {
		delete(r.pools, key)
	}
}
