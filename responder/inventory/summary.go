package inventory

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// Bounds of a summary: its maps are keyed by client-chosen values.
const (
	summaryMaxProducts = 256  // distinct products tallied; the rest are "other"
	summaryMaxNetworks = 4096 // distinct /24 or /64 networks tallied
	summaryTopNetworks = 20   // networks listed, most clients first
)

// summarizer builds a statusapi.ClientSummary in bounded memory.
type summarizer struct {
	s        statusapi.ClientSummary
	now      time.Time
	onTime   time.Duration
	products map[string]*statusapi.SummaryCount
	networks map[netip.Prefix]*statusapi.SummaryCount
}

func newSummarizer(now time.Time, onTime time.Duration) *summarizer {
	return &summarizer{s: statusapi.ClientSummary{AsOf: now.UTC(), OnTimeWindow: days(onTime)}, now: now, onTime: onTime,
		products: map[string]*statusapi.SummaryCount{}, networks: map[netip.Prefix]*statusapi.SummaryCount{}}
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

func (z *summarizer) add(r *statusapi.ClientRow) {
	s := &z.s
	s.Clients++
	counted := r.State == statusapi.StateCounted
	switch r.State {
	case statusapi.StateCounted:
		s.Counted++
	case statusapi.StateExpired:
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
		pc = &statusapi.SummaryCount{Name: name}
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
			nc = &statusapi.SummaryCount{Name: p.String()}
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
func sorted(m map[string]*statusapi.SummaryCount) []statusapi.SummaryCount {
	out := make([]statusapi.SummaryCount, 0, len(m))
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

func (z *summarizer) summary() statusapi.ClientSummary {
	s := z.s
	s.Products = sorted(z.products)
	nets := make(map[string]*statusapi.SummaryCount, len(z.networks))
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

// Summary serves GET /clients/summary (same filters as /clients): one
// pass over the ledger in chunks, like an export.
func (s *Service) Summary(w http.ResponseWriter, r *http.Request) {
	f, ok := s.begin(w, r)
	if !ok {
		return
	}
	defer func() { <-s.exports }()
	z := newSummarizer(s.now(), s.renewal+s.retry)
	keep := f.keep(s.cat)
	pace := newPacer(s)
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
		if !pace.rest(r, time.Since(began)) {
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
