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

// guardAddrs returns m without the records guardAddrs's rules remove, or m itself when there
// is none (m is left alone: the next plugin may share it). Alias chains through KMS target
// names are judged first (guardTargetChain); then every address record of a KMS target name,
// and every alias owned by one that is not on a chain judged sound, is judged by its owner.
func (v *Vlmcs) guardAddrs(ctx context.Context, m *dns.Msg) *dns.Msg {
	if !v.addrGuard {
		return m
	}
	var chain map[string]string // lower-case name on the question's alias chain → the KMS target name it is judged as
	if len(m.Question) == 1 {
		var fail bool
		if m, chain, fail = v.guardTargetChain(ctx, m); fail {
			return servfail(m)
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

// guardTargetChain judges the alias chain of m's answer from the question name, whatever the
// question type. A resolver or cache in front follows (and stores) every alias of the chain,
// so from the first KMS target name T on the chain that owns an alias, the chain must end, in
// the answer, at address records approve admits for T; else every record owned by T or a name
// after it on the chain is removed from the answer (a NODATA answer for T's part: no resolver
// in front learns an alias of T it would chase to an address vlmcs never judged). A chain
// longer than maxChain aliases that passes a KMS target name, or whose unfollowed part may
// (an alias owned by a KMS target name is in the answer), cannot be judged: fail is set, and
// the answer is SERVFAIL, as scrub answers it. chain maps the names after T on a sound chain
// to T (their addresses are judged as T's); aliases owned by KMS target names outside it are
// removed by guardAddrSection.
func (v *Vlmcs) guardTargetChain(ctx context.Context, m *dns.Msg) (out *dns.Msg, chain map[string]string, fail bool) {
	q := m.Question[0]
	names := []string{q.Name}
	overflow := false
	for name := q.Name; ; {
		next, ok := nextInChain(m.Answer, name)
		if !ok {
			break
		}
		if len(names) > maxChain {
			overflow = true
			break
		}
		names = append(names, next)
		name = next
	}
	t := -1
	for i, n := range names[:len(names)-1] {
		if v.targetName(n) {
			t = i
			break
		}
	}
	if overflow && (t >= 0 || v.targetAliasIn(m.Answer)) {
		zone := v.zoneOf(q.Name)
		if t >= 0 {
			zone = v.zoneOf(names[t])
		}
		scrubbedTotal.WithLabelValues(v.serverOf(ctx), zone, "alias-loop").Inc()
		v.logger.Classf("address", "answer to %s %s refused (SERVFAIL): its alias chain is longer than %d aliases and may pass a KMS target name", q.Name, dns.TypeToString[q.Qtype], maxChain)
		return m, nil, true
	}
	if t < 0 {
		if v.targetName(q.Name) {
			return m, map[string]string{strings.ToLower(q.Name): q.Name}, false
		}
		return m, nil, false
	}
	target, end := names[t], names[len(names)-1]
	addrs, admitted := 0, true
	for _, rr := range m.Answer {
		if ip, ok := rrAddr(rr); ok && dnsname.Equal(rr.Header().Name, end) {
			addrs++
			admitted = admitted && v.cfg.approve.Addr(target, ip)
		}
	}
	if addrs > 0 && admitted {
		chain = map[string]string{}
		for _, n := range names[t:] {
			chain[strings.ToLower(n)] = target
		}
		return m, chain, false
	}
	from := map[string]bool{}
	for _, n := range names[t:] {
		from[strings.ToLower(n)] = true
	}
	kept := make([]dns.RR, 0, len(m.Answer))
	for _, rr := range m.Answer {
		if !from[strings.ToLower(rr.Header().Name)] {
			kept = append(kept, rr)
		}
	}
	scrubbedTotal.WithLabelValues(v.serverOf(ctx), v.zoneOf(target), "address").Inc()
	v.logger.Classf("address", "removed the alias chain from %s (to %s) from the answer to %s %s: %s is a KMS target name and the chain does not end at addresses approve admits for it", target, end, q.Name, dns.TypeToString[q.Qtype], target)
	out = new(dns.Msg)
	*out = *m // shallow: records are shared, never modified
	out.Answer = kept
	return out, nil, false
}

// targetAliasIn reports whether rrs hold an alias (CNAME) owned by a KMS target name.
func (v *Vlmcs) targetAliasIn(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeCNAME && v.targetName(rr.Header().Name) {
			return true
		}
	}
	return false
}

// servfail returns a SERVFAIL answer to m's question, keeping only its EDNS record.
func servfail(m *dns.Msg) *dns.Msg {
	out := new(dns.Msg)
	*out = *m
	out.Rcode = dns.RcodeServerFailure
	out.Answer, out.Ns, out.Extra = nil, nil, nil
	if o := m.IsEdns0(); o != nil {
		out.Extra = []dns.RR{o}
	}
	return out
}

// guardAddrSection returns rrs without the address records of KMS target names that approve
// does not admit, without the aliases owned by KMS target names that are not on the sound
// chain (chain), and without the RRSIGs over their RRsets; and whether it removed any.
func (v *Vlmcs) guardAddrSection(ctx context.Context, rrs []dns.RR, chain map[string]string) ([]dns.RR, bool) {
	var cut map[string]uint16 // lower-case owner/type whose records were removed (for RRSIGs)
	var out []dns.RR
	for _, rr := range rrs {
		if !v.addrDrop(rr, chain) {
			continue
		}
		h := rr.Header()
		if cut == nil {
			cut = map[string]uint16{}
			out = make([]dns.RR, 0, len(rrs))
		}
		cut[strings.ToLower(h.Name)+"/"+dns.TypeToString[h.Rrtype]] = h.Rrtype
		judged := chain[strings.ToLower(h.Name)]
		if judged == "" {
			judged = h.Name
		}
		scrubbedTotal.WithLabelValues(v.serverOf(ctx), v.zoneOf(judged), "address").Inc()
		if c, ok := rr.(*dns.CNAME); ok {
			v.logger.Classf("address", "removed %s CNAME %s from an answer: %s is a KMS target name and its alias was not judged", h.Name, c.Target, h.Name)
			continue
		}
		ip, _ := rrAddr(rr)
		v.logger.Classf("address", "removed %s %s %s from an answer: %s is a KMS target name and approve does not admit that address for %s", h.Name, dns.TypeToString[h.Rrtype], ip, h.Name, judged)
	}
	if cut == nil {
		return rrs, false
	}
	for _, rr := range rrs {
		h := rr.Header()
		if v.addrDrop(rr, chain) {
			continue
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

// addrDrop reports whether guardAddrSection removes rr: an address record of a KMS target
// name (or of a name on a sound chain after one, judged as it) that approve does not admit, or
// an alias owned by a KMS target name off the sound chain.
func (v *Vlmcs) addrDrop(rr dns.RR, chain map[string]string) bool {
	h := rr.Header()
	ip, isAddr := rrAddr(rr)
	if !isAddr && h.Rrtype != dns.TypeCNAME {
		return false // only aliases and addresses are judged: no chain lookup for the rest
	}
	judged := chain[strings.ToLower(h.Name)]
	if h.Rrtype == dns.TypeCNAME {
		return judged == "" && v.targetName(h.Name)
	}
	if judged == "" && v.targetName(h.Name) {
		judged = h.Name
	}
	return judged != "" && !v.cfg.approve.Addr(judged, ip)
}
