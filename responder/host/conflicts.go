package host

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Bounds of the machine-ID conflict tracker.
const (
	// MaxTrackedCMIDs is how many client machine IDs the conflict tracker
	// remembers with their first workstation name and address (about 150
	// bytes each, so at most about 10 MB). Beyond it, an arbitrary unflagged
	// one is forgotten for each new one: a CMID shared by many machines
	// comes back often and is caught again, a rare one may be missed.
	MaxTrackedCMIDs = 65536
	// MaxConflicts is how many conflicting machine IDs are kept with the
	// names and addresses they were seen from; more are counted only.
	MaxConflicts = 4096
	// conflictNames is how many distinct workstation names (and, apart,
	// addresses) are kept per conflicting machine ID.
	conflictNames = 4
)

// Conflict is a client machine ID seen from more than one workstation name
// or more than one address since the host started: usually an image that
// was not generalized (sysprep /generalize), so several machines share one
// CMID and the host counts them as one (a count stuck at 1).
type Conflict struct {
	// Workstations and Addresses are the distinct names and addresses seen
	// (at most four of each, the first ones seen).
	Workstations []string
	Addresses    []string
}

// Names reports whether several workstation names were seen; Addresses
// alone also change with DHCP and roaming, names do not.
func (c Conflict) Names() bool { return len(c.Workstations) > 1 }

// cmidSeen is what the tracker keeps of one unflagged machine ID: its first
// workstation name and address (unmapped; kept as a value and formatted
// only when it becomes a conflict, which is rare).
// counted marks one counted as a conflict after MaxConflicts were kept.
type cmidSeen struct {
	ws      string
	addr    netip.Addr
	counted bool
}

// conflictTracker finds machine IDs seen from several workstations or
// addresses, in bounded memory. Safe for concurrent use.
type conflictTracker struct {
	mu        sync.Mutex
	seen      map[guid.GUID]cmidSeen
	conflicts map[guid.GUID]*Conflict
	names     int // conflicts with several workstation names
	addrs     int // conflicts with one name and several addresses
	untracked uint64
}

func newConflictTracker() *conflictTracker {
	return &conflictTracker{seen: map[guid.GUID]cmidSeen{}, conflicts: map[guid.GUID]*Conflict{}}
}

// observe notes one request of cmid from workstation ws at address peer.
func (t *conflictTracker) observe(cmid guid.GUID, ws string, peer netip.Addr) {
	addr := peer.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.conflicts[cmid]; c != nil {
		wasNames := c.Names()
		c.Workstations = addDistinct(c.Workstations, strings.Clone(ws), true)
		c.Addresses = addDistinct(c.Addresses, addr.String(), false)
		if !wasNames && c.Names() {
			t.names++
			t.addrs--
		}
		return
	}
	s, ok := t.seen[cmid]
	if !ok {
		if len(t.seen) >= MaxTrackedCMIDs {
			for k := range t.seen { // an arbitrary one: map order is random
				delete(t.seen, k)
				t.untracked++
				break
			}
		}
		t.seen[cmid] = cmidSeen{ws: strings.Clone(ws), addr: addr}
		return
	}
	// Windows compares computer names case-insensitively.
	sameName := strings.EqualFold(s.ws, ws)
	if sameName && s.addr == addr || s.counted {
		return
	}
	if len(t.conflicts) >= MaxConflicts {
		// Counted only; remember the new pair so it is not counted again.
		if !sameName {
			t.names++
		} else {
			t.addrs++
		}
		s.counted = true
		t.seen[cmid] = s
		return
	}
	delete(t.seen, cmid)
	c := &Conflict{
		Workstations: addDistinct([]string{s.ws}, strings.Clone(ws), true),
		Addresses:    addDistinct([]string{s.addr.String()}, addr.String(), false),
	}
	t.conflicts[cmid] = c
	if c.Names() {
		t.names++
	} else {
		t.addrs++
	}
}

func addDistinct(list []string, v string, fold bool) []string {
	for _, x := range list {
		if x == v || fold && strings.EqualFold(x, v) {
			return list
		}
	}
	if len(list) >= conflictNames {
		return list
	}
	return append(list, v)
}

// Conflict returns the conflict recorded for cmid, if any.
func (h *Host) Conflict(cmid guid.GUID) (Conflict, bool) {
	t := h.conflicts
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.conflicts[cmid]
	if c == nil {
		return Conflict{}, false
	}
	return Conflict{Workstations: append([]string(nil), c.Workstations...), Addresses: append([]string(nil), c.Addresses...)}, true
}

// ConflictStats are the conflict tracker's counters.
type ConflictStats struct {
	// Workstations counts machine IDs seen from several workstation names,
	// Addresses those seen from one name but several addresses.
	Workstations, Addresses int
	// Tracked is how many machine IDs the tracker remembers now; Forgotten
	// how many it dropped to stay within MaxTrackedCMIDs.
	Tracked   int
	Forgotten uint64
}

// ConflictStats returns the tracker's counters.
func (h *Host) ConflictStats() ConflictStats {
	t := h.conflicts
	t.mu.Lock()
	defer t.mu.Unlock()
	return ConflictStats{Workstations: t.names, Addresses: t.addrs, Tracked: len(t.seen) + len(t.conflicts), Forgotten: t.untracked}
}
