package vlmcs

import (
	"context"
	"strings"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// Address records of KMS target names. A client that got a target in an SRV answer (from
// vlmcs, or from a cache that kept it longer than the target's address record) resolves the
// target itself, so every address answer for a name `approve` admits as a KMS target is held
// to approve's address rules, on every path vlmcs passes answers on: an A or AAAA record owned
// by such a name whose address the networks (or the name's NAME=ADDRESS binding) do not admit
// is removed, in any section. When the question is an address question for such a name, the
// names of its alias chain are judged as the question name (the client uses the chain's end
// as the name it asked). Only names inside the zones of vlmcs are judged. With `approve
// *.SUFFIX` and networks, this holds every host name below SUFFIX to the networks.

// targetName reports whether name is a KMS target name whose addresses vlmcs judges: inside a
// zone of vlmcs and admitted by approve's name rules. A name outside the zones belongs to
// another zone's servers (it is judged inside each SRV answer that names it).
func (v *Vlmcs) targetName(name string) bool {
	return v.zoneOf(name) != "" && v.cfg.approve.Name(name)
}

// zoneOf returns the closest zone of vlmcs that name is at or below, else "".
func (v *Vlmcs) zoneOf(name string) string {
	zone := ""
	for _, z := range v.cfg.zones {
		if len(z) > len(zone) && dnsname.InZone(z, name) {
			zone = z
		}
	}
	return zone
}

// addrGuardOn reports whether approve has a rule an address can fail (networks or bindings):
// without one, no address record of an approved name is ever removed.
func (v *Vlmcs) addrGuardOn() bool {
	return v.cfg.approve.HasNetworks() || len(v.cfg.approve.BoundNames()) > 0
}

// guardAddrs returns m without the address records guardAddrs's rules remove, or m itself
// when there is none (m is left alone: the next plugin may share it).
func (v *Vlmcs) guardAddrs(ctx context.Context, m *dns.Msg) *dns.Msg {
	if !v.addrGuard {
		return m
	}
	var chain map[string]string // lower-case name on the question's alias chain → the question name
	if len(m.Question) == 1 {
		q := m.Question[0]
		if (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) && v.targetName(q.Name) {
			chain = map[string]string{strings.ToLower(q.Name): q.Name}
			name := q.Name
			for range maxChain {
				next, ok := nextInChain(m.Answer, name)
				if !ok {
					break
				}
				chain[strings.ToLower(next)] = q.Name
				name = next
			}
		}
	}
	ans, cutA := v.guardAddrSection(ctx, m.Answer, chain)
	ns, cutN := v.guardAddrSection(ctx, m.Ns, chain)
	extra, cutE := v.guardAddrSection(ctx, m.Extra, chain)
	if !cutA && !cutN && !cutE {
		return m
	}
	out := new(dns.Msg)
	*out = *m // shallow: records are shared, never modified
	out.Answer, out.Ns, out.Extra = ans, ns, extra
	return out
}

// guardAddrSection returns rrs without the address records of KMS target names that approve
// does not admit (and the RRSIGs over their RRsets), and whether it removed any.
func (v *Vlmcs) guardAddrSection(ctx context.Context, rrs []dns.RR, chain map[string]string) ([]dns.RR, bool) {
	var cut map[string]uint16 // lower-case owner → a type whose records were removed (for RRSIGs)
	var out []dns.RR
	for _, rr := range rrs {
		ip, ok := rrAddr(rr)
		if !ok {
			continue
		}
		owner := rr.Header().Name
		judged := chain[strings.ToLower(owner)]
		if judged == "" && v.targetName(owner) {
			judged = owner
		}
		if judged == "" || v.cfg.approve.Addr(judged, ip) {
			continue
		}
		if cut == nil {
			cut = map[string]uint16{}
			out = make([]dns.RR, 0, len(rrs))
		}
		cut[strings.ToLower(owner)+"/"+dns.TypeToString[rr.Header().Rrtype]] = rr.Header().Rrtype
		zone := v.zoneOf(judged)
		scrubbedTotal.WithLabelValues(v.serverOf(ctx), zone, "address").Inc()
		v.logger.Classf("address", "removed %s %s %s from an answer: %s is a KMS target name and approve does not admit that address for %s", owner, dns.TypeToString[rr.Header().Rrtype], ip, owner, judged)
	}
	if cut == nil {
		return rrs, false
	}
	for _, rr := range rrs {
		h := rr.Header()
		if ip, ok := rrAddr(rr); ok {
			judged := chain[strings.ToLower(h.Name)]
			if judged == "" && v.targetName(h.Name) {
				judged = h.Name
			}
			if judged != "" && !v.cfg.approve.Addr(judged, ip) {
				continue
			}
		}
		if sig, ok := rr.(*dns.RRSIG); ok {
			if _, gone := cut[strings.ToLower(h.Name)+"/"+dns.TypeToString[sig.TypeCovered]]; gone {
				continue // the RRset it signed lost a record
			}
		}
		out = append(out, rr)
	}
	return out, true
}
