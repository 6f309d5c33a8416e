package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/kmsdns/kmsdns/responder/ledger"
)

// Bounds of a summary: its maps are keyed by client-chosen values.
const (
	summaryMaxProducts = 256  // distinct products tallied; the rest are "other"
	summaryMaxNetworks = 4096 // distinct /24 or /64 networks tallied
	summaryTopNetworks = 20   // networks listed, most clients first
)

// summaryCount is one line of a per-product or per-network tally.
type summaryCount struct {
	Name    string `json:"name"`
	Clients int    `json:"clients"`
	Counted int    `json:"counted"`
}

// clientSummary is what a person wants first about the clients: how many,
// of what, from where, and whether the count is about to shrink.
type clientSummary struct {
	AsOf    time.Time `json:"as_of"`
	Clients int       `json:"clients"`
	Counted int       `json:"counted"`
	Expired int       `json:"expired"`
	Refused int       `json:"refused"`
	// Products and Networks tally clients per product and per /24 (IPv4)
	// or /64 (IPv6) network; Networks lists the largest ones.
	Products      []summaryCount `json:"products"`
	Networks      []summaryCount `json:"networks"`
	NetworksTotal int            `json:"networks_total"`
	// OtherClients counts clients of products or networks beyond the
	// tally's bound.
	OtherClients int `json:"clients_beyond_tally_bounds,omitempty"`
	// OnTimeWindow is the renewal interval plus the activation (retry)
	// interval: an activated client whose last request is younger renews
	// on time; an older one stopped coming.
	OnTimeWindow   string `json:"on_time_window"`
	RenewingOnTime int    `json:"renewing_on_time"`
	StoppedComing  int    `json:"stopped_coming"`
	// StoppedCounted are those that stopped coming but still count;
	// Leaving7d of them leave the count within 7 days; FirstLeaving and
	// LastLeaving bound when.
	StoppedCounted int       `json:"stopped_coming_still_counted"`
	Leaving7d      int       `json:"leaving_count_next_7_days"`
	FirstLeaving   time.Time `json:"first_leaving,omitzero"`
	LastLeaving    time.Time `json:"last_leaving,omitzero"`
	// Conflicts counts rows whose machine ID was seen from several
	// workstation names or addresses.
	Conflicts int `json:"cmid_conflicts"`
}

// summarizer builds a clientSummary in bounded memory.
type summarizer struct {
	s        clientSummary
	now      time.Time
	onTime   time.Duration
	products map[string]*summaryCount
	networks map[netip.Prefix]*summaryCount
}

func newSummarizer(now time.Time, onTime time.Duration) *summarizer {
	return &summarizer{s: clientSummary{AsOf: now.UTC(), OnTimeWindow: days(onTime)}, now: now, onTime: onTime,
		products: map[string]*summaryCount{}, networks: map[netip.Prefix]*summaryCount{}}
}

// network returns the /24 or /64 of a row's address.
func network(addr string) (netip.Prefix, bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false
	}
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

func (z *summarizer) add(r *clientRow) {
	s := &z.s
	s.Clients++
	counted := r.State == stateCounted
	switch r.State {
	case stateCounted:
		s.Counted++
	case stateExpired:
		s.Expired++
	default:
		s.Refused++
	}
	other := false
	name := r.Product
	if name == "" {
		name = "unknown counted ID " + r.CountedID
	}
	pc := z.products[name]
	if pc == nil && len(z.products) < summaryMaxProducts {
		pc = &summaryCount{Name: name}
		z.products[name] = pc
	}
	if pc != nil {
		pc.Clients++
		if counted {
			pc.Counted++
		}
	} else {
		other = true
	}
	if p, ok := network(r.Address); ok {
		nc := z.networks[p]
		if nc == nil && len(z.networks) < summaryMaxNetworks {
			nc = &summaryCount{Name: p.String()}
			z.networks[p] = nc
		}
		if nc != nil {
			nc.Clients++
			if counted {
				nc.Counted++
			}
		} else {
			other = true
		}
	}
	if other {
		s.OtherClients++
	}
	if r.CMIDConflict != "" {
		s.Conflicts++
	}
	if r.LastResult != "S_OK" {
		return
	}
	if z.now.Sub(r.LastRequest) <= z.onTime {
		s.RenewingOnTime++
		return
	}
	s.StoppedComing++
	if !counted {
		return
	}
	s.StoppedCounted++
	if r.CountedUntil.Sub(z.now) <= 7*24*time.Hour {
		s.Leaving7d++
	}
	if s.FirstLeaving.IsZero() || r.CountedUntil.Before(s.FirstLeaving) {
		s.FirstLeaving = r.CountedUntil
	}
	if r.CountedUntil.After(s.LastLeaving) {
		s.LastLeaving = r.CountedUntil
	}
}

// sorted returns the tallies most clients first, then by name.
func sorted(m map[string]*summaryCount) []summaryCount {
	out := make([]summaryCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Clients != out[j].Clients {
			return out[i].Clients > out[j].Clients
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (z *summarizer) summary() clientSummary {
	s := z.s
	s.Products = sorted(z.products)
	nets := make(map[string]*summaryCount, len(z.networks))
	for _, c := range z.networks {
		nets[c.Name] = c
	}
	s.Networks = sorted(nets)
	s.NetworksTotal = len(s.Networks)
	if len(s.Networks) > summaryTopNetworks {
		s.Networks = s.Networks[:summaryTopNetworks]
	}
	return s
}

// summarize serves GET /clients/summary (same filters as /clients): one
// pass over the ledger in chunks, like an export.
func (s *clientsService) summarize(w http.ResponseWriter, r *http.Request) {
	f, ok := s.begin(w, r)
	if !ok {
		return
	}
	defer func() { <-s.exports }()
	z := newSummarizer(s.now(), s.renewal+s.retry)
	keep := f.keep(s.cat)
	rc := http.NewResponseController(w)
	var after []byte
	for {
		began := time.Now()
		// Nothing is written until the pass ends: keep the connection's
		// write deadline ahead of it, chunk by chunk.
		_ = rc.SetWriteDeadline(time.Now().Add(clientsChunkWrite))
		page, err := s.store.ClientsPage(ledger.ClientsQuery{After: after, Since: f.since, Limit: s.pageSize, Scan: max(s.pageSize, clientsChunkScan), Keep: keep})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for i := range page.Entries {
			row := newClientRow(&page.Entries[i], s.cat, s.host.Conflict)
			z.add(&row)
		}
		if after = page.Next; after == nil {
			break
		}
		if !rest(r, time.Since(began)) {
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(z.summary())
}

// days formats d as "7d2h" (or "90m" under an hour).
func days(d time.Duration) string {
	if d < time.Hour {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	out := ""
	if n := d / (24 * time.Hour); n > 0 {
		out = strconv.Itoa(int(n)) + "d"
		d -= n * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		out += strconv.Itoa(int(h)) + "h"
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		out += strconv.Itoa(int(m)) + "m"
	}
	return out
}
