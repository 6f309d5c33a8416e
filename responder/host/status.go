package host

import (
	"fmt"
	"sort"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// licenseStates names the licence states a KMS client reports.
var licenseStates = [...]string{
	"Unlicensed", "Licensed", "OOB grace", "OOT grace", "Non-genuine grace", "Notification", "Extended grace",
}

// unknownLicenseState is the one statistics bucket of every licence state
// value outside licenseStates: the value is client-chosen (2^32 of them),
// so it must not key a map.
const unknownLicenseState = uint32(len(licenseStates))

// UnknownLicenseStates is the status key that counts requests whose
// licence state is none of the known ones.
const UnknownLicenseStates = "Unknown (any other value)"

// LicenseStateName returns the name of a client licence state, or
// "Unknown (n)".
func LicenseStateName(n uint32) string {
	if int(n) < len(licenseStates) {
		return licenseStates[n]
	}
	return fmt.Sprintf("Unknown (%d)", n)
}

// licenseBucket is the statistics key of a licence state: itself when
// known, else unknownLicenseState.
func licenseBucket(n uint32) uint32 {
	return min(n, unknownLicenseState)
}

// counters are the request statistics; guarded by Host.mu.
type counters struct {
	byResult       map[kms.HRESULT]uint64
	byLicense      [unknownLicenseState + 1]uint64 // by licenseBucket
	byGroup        []uint64                        // by index in settings.groups
	ledgerFailures uint64
	last           time.Time
}

// newCounters returns empty statistics for a host of the given number of
// groups.
func newCounters(groups int) counters {
	return counters{
		byGroup:  make([]uint64, groups),
		byResult: map[kms.HRESULT]uint64{},
	}
}

// record counts one answered or refused request; group is the index of
// the group that activated it, or -1.
func (c *counters) record(in *Input, res *Result, group int, now time.Time) {
	c.byResult[res.HRESULT]++
	c.byLicense[licenseBucket(in.LicenseStatus)]++
	if group >= 0 {
		c.byGroup[group]++
	}
	if now.After(c.last) {
		c.last = now
	}
}

// Status is the host's part of what `kms-responder status` shows, the
// counterpart of `slmgr /dlv` on a KMS host. It is not a wire format: the
// admin endpoint's GET /status (schema kmsdns-status/v1, responder/README)
// is built from it by the responder.
type Status struct {
	Groups             []GroupStatus
	HwID               string
	Apps               []AppStatus
	ActivationInterval int
	RenewalInterval    int
	RequestsByResult   map[string]uint64
	RequestsByLicense  map[string]uint64
	RequestsByGroup    map[string]uint64
	// LedgerFailures counts requests left unanswered because the ledger
	// could not write them.
	LedgerFailures uint64
	LastRequest    time.Time
	Ledger         LedgerStatus
}

// GroupStatus describes one configured host key group.
type GroupStatus struct {
	Name        string
	Description string
	AppID       string
	EPID        string
	Activates   []Product
}

// Product is a counted ID a group activates.
type Product struct {
	CountedID string
	Name      string
	Threshold int
}

// AppStatus is one application's count.
type AppStatus struct {
	AppID string
	Name  string
	// Count is the current count; Cap the most it can reach now.
	Count int
	Cap   int
	// Thresholds are the distinct counts that clients of the products the
	// configured groups activate for this application need.
	Thresholds []int
}

// LedgerStatus reports the durable store. Clients counts the audit records
// in the store, which trails the acknowledged activations by at most the
// ledger's apply interval.
type LedgerStatus struct {
	Enabled   bool
	Healthy   bool
	LastError string
	Clients   uint64
	// Refusals is the number of records of clients only ever refused,
	// kept within the ledger's refusal budget.
	Refusals uint64
	FileSize int64
}

// Status returns a snapshot of the host's configuration, identity, counts
// and request statistics.
func (h *Host) Status() Status {
	st := Status{
		HwID:               hwidString(h.hwid),
		ActivationInterval: h.cfg.activation,
		RenewalInterval:    h.cfg.renewal,
		RequestsByResult:   map[string]uint64{},
		RequestsByLicense:  map[string]uint64{},
		RequestsByGroup:    map[string]uint64{},
	}
	thresholds := map[guid.GUID]map[int]bool{}
	for _, g := range h.cfg.groups {
		gs := GroupStatus{Name: g.Name, Description: g.Description, AppID: g.AppID.String(), EPID: h.epids[g.Name]}
		for _, id := range g.Activates {
			p := Product{CountedID: id.String()}
			if c, ok := h.cat.CountedID(id); ok {
				p.Name, p.Threshold = c.Name, c.Threshold
				if thresholds[g.AppID] == nil {
					thresholds[g.AppID] = map[int]bool{}
				}
				thresholds[g.AppID][c.Threshold] = true
			}
			gs.Activates = append(gs.Activates, p)
		}
		st.Groups = append(st.Groups, gs)
	}
	cutoff := h.cfg.clock().Add(-CountWindow)
	h.mu.Lock()
	apps := map[guid.GUID]AppStatus{}
	for id, ac := range h.apps {
		apps[id] = AppStatus{Count: ac.Live(cutoff), Cap: ac.Cap()}
	}
	for r, n := range h.stats.byResult {
		st.RequestsByResult[r.Error()] = n
	}
	for l, n := range h.stats.byLicense {
		if n == 0 {
			continue // a state never seen is not listed
		}
		name := UnknownLicenseStates
		if l := uint32(l); l != unknownLicenseState {
			name = LicenseStateName(l)
		}
		st.RequestsByLicense[name] += n
	}
	for g, n := range h.stats.byGroup {
		if n > 0 {
			st.RequestsByGroup[h.cfg.groups[g].Name] = n
		}
	}
	st.LedgerFailures = h.stats.ledgerFailures
	st.LastRequest = h.stats.last
	h.mu.Unlock()
	// Every application a configured group serves is listed, counted or not.
	for id := range thresholds {
		if _, ok := apps[id]; !ok {
			apps[id] = AppStatus{}
		}
	}
	for id, as := range apps {
		as.AppID = id.String()
		if a, ok := h.cat.Application(id); ok {
			as.Name = a.Name
		}
		for t := range thresholds[id] {
			as.Thresholds = append(as.Thresholds, t)
		}
		sort.Ints(as.Thresholds)
		st.Apps = append(st.Apps, as)
	}
	sort.Slice(st.Apps, func(i, j int) bool { return st.Apps[i].AppID < st.Apps[j].AppID })
	if h.store != nil {
		s := h.store.Stats()
		st.Ledger = LedgerStatus{Enabled: true, Healthy: h.store.Healthy(), Clients: s.Clients, Refusals: s.Refusals, FileSize: s.FileSize}
		if err := h.store.LastError(); err != nil {
			st.Ledger.LastError = err.Error()
		}
	}
	return st
}

// Healthy reports whether the host can answer: its ledger (if any) last
// committed successfully.
func (h *Host) Healthy() bool { return h.store == nil || h.store.Healthy() }

// Count returns the current count of an application.
func (h *Host) Count(app guid.GUID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	ac := h.apps[app]
	if ac == nil {
		return 0
	}
	return ac.Live(h.cfg.clock().Add(-CountWindow))
}

// EPIDs returns the ePID of every configured group, by group name.
func (h *Host) EPIDs() map[string]string {
	m := make(map[string]string, len(h.epids))
	for k, v := range h.epids {
		m[k] = v
	}
	return m
}

// HwID returns the host's hardware ID.
func (h *Host) HwID() [8]byte { return h.hwid }
