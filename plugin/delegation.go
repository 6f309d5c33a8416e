package vlmcs

import (
	"context"
	"strings"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// Delegations inside the zones of vlmcs. A resolver that iterates towards CoreDNS (BIND with
// a static-stub or a delegation of the zone to CoreDNS, QNAME minimisation) follows an NS
// RRset it receives: once it holds a delegation of a name N strictly below a zone of vlmcs,
// it asks the servers N names, never CoreDNS, for every name at or below N, and
// `_vlmcs._tcp.N` (N a client's search domain) or `_vlmcs._tcp.<zone>` (N = `_tcp.<zone>`) is
// among them. Every name strictly below a zone lies on the path to some `_vlmcs._tcp` name,
// so no answer vlmcs passes on carries NS records owned by a name strictly below a zone of
// vlmcs, in any section, nor the DS records and RRSIGs of such a delegation, nor the glue
// (address records, in the additional section) of the name servers it named. A referral that
// loses its delegation becomes NODATA with aa set: vlmcs answers for its zones, and the
// resolver must not look for the name elsewhere.
//
// The NS RRset at a zone's apex is removed the same way, with its RRSIGs and glue: the next
// plugin's apex NS names the servers of the DNS behind (Active Directory names its domain
// controllers), and an iterating resolver that receives it, authoritative, in an answer of
// vlmcs ranks it above the parent's delegation to CoreDNS and asks those servers, past vlmcs,
// from then on. With vlmcs the zone's NS set is not served from the DNS behind: an NS question
// at the apex gets NODATA with aa.

// delegatedBelow reports whether owner is strictly below a zone of vlmcs: an NS RRset there
// is a delegation over `_vlmcs._tcp` names.
func (v *Vlmcs) delegatedBelow(owner string) bool {
	for _, z := range v.cfg.zones {
		if dnsname.Below(z, owner) {
			return true
		}
	}
	return false
}

// leadsPast reports whether a record of type t (the type covered, for an RRSIG) owned by owner
// leads resolvers past vlmcs: an NS or DS record strictly below a zone of vlmcs, or an NS
// record at a zone's apex.
func (v *Vlmcs) leadsPast(owner string, t uint16) bool {
	switch t {
	case dns.TypeNS:
		return v.delegatedBelow(owner) || v.isApex(owner)
	case dns.TypeDS:
		return v.delegatedBelow(owner)
	}
	return false
}

// isApex reports whether name is a zone of vlmcs.
func (v *Vlmcs) isApex(name string) bool {
	for _, z := range v.cfg.zones {
		if dnsname.Equal(z, name) {
			return true
		}
	}
	return false
}

// hasDelegation is the cheap test: whether m holds a record leadsPast finds.
func (v *Vlmcs) hasDelegation(m *dns.Msg) bool {
	for _, sec := range [3][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if v.leadsPast(rr.Header().Name, rr.Header().Rrtype) {
				return true
			}
		}
	}
	return false
}

// guardDelegations returns m without the delegations delegatedBelow finds (see above), or m
// itself when it holds none (m is left alone: the next plugin may share it).
func (v *Vlmcs) guardDelegations(ctx context.Context, m *dns.Msg) *dns.Msg {
	if !v.hasDelegation(m) {
		return m
	}
	servers := map[string]bool{} // lower-case names of the removed delegations' name servers
	cut := func(rrs []dns.RR, glue bool) []dns.RR {
		out := make([]dns.RR, 0, len(rrs))
		for _, rr := range rrs {
			h := rr.Header()
			t := h.Rrtype
			if sig, ok := rr.(*dns.RRSIG); ok {
				t = sig.TypeCovered
			}
			if v.leadsPast(h.Name, t) {
				if ns, ok := rr.(*dns.NS); ok {
					servers[strings.ToLower(dns.Fqdn(ns.Ns))] = true
					if v.isApex(h.Name) {
						// Routine: the DNS behind puts its apex NS set in most answers, so this
						// is counted, never logged (a line per answer would spend the log's
						// budget that refusals and rogue targets need).
						scrubbedTotal.WithLabelValues(v.serverOf(ctx), v.zoneOf(h.Name), "apex-ns").Inc()
					} else {
						scrubbedTotal.WithLabelValues(v.serverOf(ctx), v.zoneOf(h.Name), "delegation").Inc()
						v.logger.Classf("delegation", "removed NS %s -> %s: a delegation inside %s would lead resolvers past vlmcs for _vlmcs._tcp names", h.Name, ns.Ns, v.zoneOf(h.Name))
					}
				}
				continue
			}
			if glue {
				if _, isAddr := rrAddr(rr); isAddr && servers[strings.ToLower(h.Name)] {
					continue
				}
			}
			out = append(out, rr)
		}
		return out
	}
	out := new(dns.Msg)
	*out = *m // shallow: records are shared, never modified
	out.Answer = cut(m.Answer, false)
	out.Ns = cut(m.Ns, false)
	out.Extra = cut(m.Extra, true)
	if len(m.Answer) == 0 && len(m.Ns) > 0 && !hasType(out.Ns, dns.TypeSOA) && out.Rcode == dns.RcodeSuccess {
		// A referral: answer NODATA for the name instead.
		out.Authoritative = true
		out.Ns = nil
	}
	if len(m.Question) == 1 && m.Question[0].Qtype == dns.TypeNS && v.isApex(m.Question[0].Name) {
		out.Authoritative = true // NODATA for the apex NS set: vlmcs answers for its zones
	}
	return out
}
