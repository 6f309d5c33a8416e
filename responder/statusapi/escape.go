package statusapi

import "github.com/kmsdns/kmsdns/plugin/pkg/printable"

// Escape makes every text field of the report printable
// (printable.Escape), map keys included, for a terminal: a report read
// from an admin endpoint is that endpoint's text.
func (r *Report) Escape() {
	esc := func(ps ...*string) {
		for _, p := range ps {
			*p = printable.Escape(*p)
		}
	}
	esc(&r.Schema, &r.HwID, &r.Ledger.Path, &r.Ledger.LastError)
	escapeAll(r.Listeners)
	for i := range r.Groups {
		g := &r.Groups[i]
		esc(&g.Name, &g.EPID)
		escapeAll(g.Activates)
	}
	for i := range r.Counts {
		esc(&r.Counts[i].Application, &r.Counts[i].Thresholds)
	}
	for i := range r.Expiring {
		esc(&r.Expiring[i].Application)
	}
	r.Requests = escapeKeys(r.Requests)
	r.LicenseStates = escapeKeys(r.LicenseStates)
	for i := range r.Registration {
		g := &r.Registration[i]
		esc(&g.Server, &g.Zone, &g.Target, &g.Lease, &g.LastError, &g.Suspended)
		g.Refusals = escapeKeys(g.Refusals)
	}
}

// Escape makes every text field of the summary printable, as
// ClientRow.Escape does for a row.
func (s *ClientSummary) Escape() {
	s.OnTimeWindow = printable.Escape(s.OnTimeWindow)
	for _, l := range [][]SummaryCount{s.Products, s.Networks} {
		for i := range l {
			l[i].Name = printable.Escape(l[i].Name)
		}
	}
}

func escapeAll(l []string) {
	for i := range l {
		l[i] = printable.Escape(l[i])
	}
}

// escapeKeys returns m with its keys escaped; counts of keys that escape
// to the same text are added up.
func escapeKeys(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return nil
	}
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[printable.Escape(k)] += v
	}
	return out
}
