package audit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Removal is one record a fix deletes: an SRV record, or the CNAME or
// DNAME record through which an audited name reaches SRV records. Every
// removal's owner lies at or below an audited domain: a fix never touches
// a record outside them, such as the far end of an alias.
type Removal struct {
	// Zone is the zone holding Owner, where the UPDATE goes.
	Zone  string
	Owner string
	// Type is "SRV", "CNAME" or "DNAME".
	Type string
	// SRV is the record's data for an SRV removal.
	SRV *Record
	// Target is the alias target for a CNAME or DNAME removal.
	Target string
	// Records are the bad SRV records the removal takes from clients.
	Records []Record
}

// RData is the removed record's data in presentation form.
func (m Removal) RData() string {
	if m.SRV != nil {
		return m.SRV.RData()
	}
	return m.Target
}

// RR is the removed record (class and TTL as an RFC 2136 delete of one
// RR wants them set by dns.Msg.Remove).
func (m Removal) RR() dns.RR {
	h := dns.RR_Header{Name: m.Owner, Class: dns.ClassINET}
	switch m.Type {
	case "CNAME":
		h.Rrtype = dns.TypeCNAME
		return &dns.CNAME{Hdr: h, Target: m.Target}
	case "DNAME":
		h.Rrtype = dns.TypeDNAME
		return &dns.DNAME{Hdr: h, Target: m.Target}
	}
	h.Rrtype = dns.TypeSRV
	r := m.SRV
	return &dns.SRV{Hdr: h, Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: r.Target}
}

// inDomains reports whether name is at or below one of domains.
func inDomains(name string, domains []string) bool {
	for _, d := range domains {
		if dns.IsSubDomain(d, name) {
			return true
		}
	}
	return false
}

// Removals returns what a fix deletes for the bad records, one removal
// per record (an alias shared by several bad records once), and, as
// sentences, the bad records it cannot remove inside the audited domains
// (a zone that is unknown, an alias above the audited domains, an alias
// that also leads to healthy records).
func (rep *Report) Removals() ([]Removal, []string) {
	var (
		out     []Removal
		skipped []string
		aliases = map[string]int{} // alias key -> index in out
	)
	// An alias is removed only when every record it leads to is bad.
	healthyVia := map[string]bool{}
	for _, f := range rep.Findings {
		if !f.Class.Bad() && f.Alias != nil {
			healthyVia[aliasKey(f.Alias)] = true
		}
	}
	for _, r := range rep.Bad() {
		if a := r.Alias; a != nil {
			k := aliasKey(a)
			if i, ok := aliases[k]; ok {
				out[i].Records = append(out[i].Records, r)
				continue
			}
			switch {
			case !inDomains(a.Owner, rep.Domains):
				skipped = append(skipped, fmt.Sprintf("%s reaches %s SRV %s through the %s at %s, which lies outside the audited domains: remove it by hand",
					trimDot(r.Name), trimDot(r.Owner), r.RData(), a.Type, trimDot(a.Owner)))
			case healthyVia[k]:
				skipped = append(skipped, fmt.Sprintf("the %s %s -> %s also leads to healthy approved hosts: not deleted; fix %s SRV %s where it lives",
					a.Type, trimDot(a.Owner), trimDot(a.Target), trimDot(r.Owner), r.RData()))
			case a.Zone == "":
				skipped = append(skipped, fmt.Sprintf("the zone holding the %s at %s is unknown (no SOA found): remove it by hand", a.Type, trimDot(a.Owner)))
			default:
				aliases[k] = len(out)
				out = append(out, Removal{Zone: a.Zone, Owner: a.Owner, Type: a.Type, Target: a.Target, Records: []Record{r}})
			}
			continue
		}
		switch {
		case !inDomains(r.Owner, rep.Domains):
			skipped = append(skipped, fmt.Sprintf("%s SRV %s lies outside the audited domains: not deleted", trimDot(r.Owner), r.RData()))
		case r.Zone == "":
			skipped = append(skipped, fmt.Sprintf("the zone holding %s is unknown (no SOA found): delete %s SRV %s by hand", trimDot(r.Owner), trimDot(r.Owner), r.RData()))
		default:
			rc := r
			out = append(out, Removal{Zone: r.Zone, Owner: r.Owner, Type: "SRV", SRV: &rc, Records: []Record{r}})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Zone < out[j].Zone })
	return out, skipped
}

func aliasKey(a *Alias) string {
	return a.Type + " " + strings.ToLower(a.Owner) + " " + strings.ToLower(a.Target)
}

// removalZones lists the zones of removals, in order.
func removalZones(rs []Removal) []string {
	var out []string
	for _, r := range rs {
		if len(out) == 0 || out[len(out)-1] != r.Zone {
			out = append(out, r.Zone)
		}
	}
	return out
}
