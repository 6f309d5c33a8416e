package vlmcs

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// passGuard wraps the ResponseWriter of queries vlmcs passes on (questions that are not a
// `_vlmcs._tcp` name of its zones). A cache in front of CoreDNS (BIND, dnsmasq, Windows DNS
// forwarding) stores every RRset of an answer by owner and later answers from it, so
// whatever the question, an answer must not carry records that would answer a `_vlmcs._tcp`
// question of vlmcs's zones without vlmcs judging them. The guard removes, from every section:
//
//   - each DNAME whose owner is at or below a zone of vlmcs, or above one (with its RRSIGs):
//     a DNAME at owner O covers `_vlmcs._tcp.O`, and one above a zone covers the zone's own
//     `_vlmcs._tcp` name, so a resolver that cached it would rewrite such a question itself
//     and ask the DNAME target, which vlmcs does not see. The synthesized CNAME of the asked
//     name stays, so the answer still leads where the DNAME led for that name (RFC 6672 §3.4
//     lets clients use the CNAME alone);
//   - each record owned by a `_vlmcs._tcp` name at or below a zone of vlmcs (SRV, CNAME,
//     RRSIG, anything): such a record is in a passed-on answer only when an alias chain
//     (`lure CNAME _vlmcs._tcp.<zone>`) or an odd upstream put it there. The chain is cut at
//     that name: a resolver following it asks the `_vlmcs._tcp` name itself, which vlmcs
//     answers or judges.
//
// Answers that hold neither pass untouched and unallocated.
type passGuard struct {
	dns.ResponseWriter
	v *Vlmcs
}

// WriteMsg implements dns.ResponseWriter.
func (g *passGuard) WriteMsg(m *dns.Msg) error {
	if g.v.needsGuard(m) {
		m = g.v.guard(m, true)
	}
	return g.ResponseWriter.WriteMsg(m)
}

// needsGuard is the cheap test of the common case: whether m holds a DNAME or a record whose
// owner starts with `_vlmcs._tcp.` in any section.
func (v *Vlmcs) needsGuard(m *dns.Msg) bool {
	for _, sec := range [3][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeDNAME || hasSRVLabel(h.Name) {
				return true
			}
		}
	}
	return false
}

// hasSRVLabel reports whether name starts with `_vlmcs._tcp.`, ignoring ASCII case.
func hasSRVLabel(name string) bool {
	return len(name) > len(srvLabel) && strings.EqualFold(name[:len(srvLabel)], srvLabel)
}

// srvZone returns the closest zone of vlmcs at or above X when name is `_vlmcs._tcp.X`, else
// "". Clients ask such names for a zone or a search domain inside it.
func (v *Vlmcs) srvZone(name string) string {
	if !hasSRVLabel(name) {
		return ""
	}
	rest, zone := name[len(srvLabel):], ""
	for _, z := range v.cfg.zones {
		if len(z) > len(zone) && dnsname.InZone(z, rest) {
			zone = z
		}
	}
	return zone
}

// relatedZone returns a zone of vlmcs that name is at, below or above, else "": the zone
// whose `_vlmcs._tcp` names a DNAME at name can cover, or whose records a transfer of name
// holds.
func (v *Vlmcs) relatedZone(owner string) string {
	for _, z := range v.cfg.zones {
		if dnsname.InZone(z, owner) || dnsname.InZone(owner, z) {
			return z
		}
	}
	return ""
}

// guard returns m without the records passGuard removes, or m itself when there is none;
// m is left alone (the next plugin, cache, may share it). With all false only DNAMEs and the
// CNAMEs of `_vlmcs._tcp` names go (a scrubbed answer, whose SRV records scrub judged).
func (v *Vlmcs) guard(m *dns.Msg, all bool) *dns.Msg {
	ans, cutA := v.guardSection(m.Answer, all)
	ns, cutN := v.guardSection(m.Ns, all)
	extra, cutE := v.guardSection(m.Extra, all)
	if !cutA && !cutN && !cutE {
		return m
	}
	out := new(dns.Msg)
	*out = *m // shallow: records are shared, never modified
	out.Answer, out.Ns, out.Extra = ans, ns, extra
	return out
}

// guardSection returns rrs without the records guard removes, and whether it removed any.
func (v *Vlmcs) guardSection(rrs []dns.RR, all bool) ([]dns.RR, bool) {
	var out []dns.RR
	cut := false
	for i, rr := range rrs {
		h := rr.Header()
		drop := false
		switch rr := rr.(type) {
		case *dns.DNAME:
			if z := v.relatedZone(h.Name); z != "" {
				drop = true
				scrubbedTotal.WithLabelValues(v.server, z, "dname").Inc()
				v.logger.Logf("removed DNAME %s -> %s: it would redirect _vlmcs._tcp names of %s past vlmcs", h.Name, rr.Target, z)
			}
		case *dns.RRSIG:
			drop = rr.TypeCovered == dns.TypeDNAME && v.relatedZone(h.Name) != ""
		}
		if !drop && hasSRVLabel(h.Name) {
			if z := v.srvZone(h.Name); z != "" {
				t := h.Rrtype
				if sig, ok := rr.(*dns.RRSIG); ok {
					t = sig.TypeCovered
				}
				if all || t == dns.TypeCNAME {
					drop = true
					if h.Rrtype != dns.TypeRRSIG {
						scrubbedTotal.WithLabelValues(v.server, z, "passthrough").Inc()
						v.logger.Logf("removed %s %s from an answer to another question: %s is judged only when asked", dns.TypeToString[h.Rrtype], h.Name, h.Name)
					}
				}
			}
		}
		if drop {
			if !cut {
				out = append(make([]dns.RR, 0, len(rrs)), rrs[:i]...)
				cut = true
			}
			continue
		}
		if cut {
			out = append(out, rr)
		}
	}
	if !cut {
		return rrs, false
	}
	return out, true
}
