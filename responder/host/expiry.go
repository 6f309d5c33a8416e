package host

import (
	"sort"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Expiring is how many of an application's counted clients leave the count
// within a period unless they come back: a shrinking count, seen before it
// drops below a product's threshold.
type Expiring struct {
	AppID guid.GUID
	Name  string
	// Count is the current count; Leaving how many of those clients' last
	// counted request is so old that they leave the count within the
	// period; Next is when the first of them leaves (zero if none).
	Count, Leaving int
	Next           time.Time
}

// ExpiringWithin returns, per application with a count, how many counted
// clients leave the count within d of now (by the host's clock).
func (h *Host) ExpiringWithin(d time.Duration) []Expiring {
	now := h.cfg.clock()
	cutoff := now.Add(-CountWindow)
	soon := cutoff.Add(d)
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Expiring
	for app, set := range h.apps {
		e := Expiring{AppID: app, Name: app.String(), Count: set.Live(cutoff)}
		if a, ok := h.cat.Application(app); ok {
			e.Name = a.Name
		}
		e.Leaving = e.Count - set.Live(soon)
		if e.Leaving > 0 {
			for _, s := range set.Entries() { // oldest first
				if s.LastSeen.After(cutoff) {
					e.Next = s.LastSeen.Add(CountWindow)
					break
				}
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
