package vlmcs

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// passGuard wraps the ResponseWriter of queries vlmcs passes on (questions that are not a
// `_vlmcs._tcp` name of its zones). A cache in front of CoreDNS (BIND, dnsmasq, Windows DNS
// forwarding) stores every RRset of an answer by owner and later answers from it, so
// whatever the question, an answer must not carry records that would answer a `_vlmcs._tcp`
// question of vlmcs's zones without vlmcs judging them:
//
//   - when the alias chain from the question name reaches a `_vlmcs._tcp` name N of a zone of
//     vlmcs (`lure CNAME _vlmcs._tcp.<zone>`), the part of the answer from N on is scrubbed as
//     the answer to N would be (scrub: unapproved targets and their addresses removed, an
//     alias at N flattened), and the aliases that lead to N stay. A cache that stores N's
//     records so stores what vlmcs would answer for N;
//   - every other record owned by such a name, in any section, is removed (nothing follows
//     it);
//   - each DNAME whose owner is at or below a zone of vlmcs, or above one, is removed with its
//     RRSIGs: a DNAME at owner O covers `_vlmcs._tcp.O`, and one above a zone covers the zone's
//     own `_vlmcs._tcp` name, so a resolver that cached it would rewrite such a question itself
//     and ask the DNAME target, which vlmcs does not see. The synthesized CNAME of the asked
//     name stays, so the answer still leads where the DNAME led for that name (RFC 6672 §3.4
//     lets clients use the CNAME alone).
//
// Answers that hold neither a DNAME nor a record at a `_vlmcs._tcp` name pass untouched and
// unallocated.
type passGuard struct {
	dns.ResponseWriter
	v   *Vlmcs
	ctx context.Context // for the look-ups of scrub
}

// WriteMsg implements dns.ResponseWriter.
func (g *passGuard) WriteMsg(m *dns.Msg) error {
	if g.v.needsGuard(m) {
		m = g.v.guardPassed(g.ctx, m)
	}
	m = g.v.guardDelegations(g.ctx, g.v.guardAddrs(g.ctx, m))
	return g.ResponseWriter.WriteMsg(m)
}

// guardPassed applies passGuard's rules to m, an answer to a question vlmcs passed on.
func (v *Vlmcs) guardPassed(ctx context.Context, m *dns.Msg) *dns.Msg {
	keep := ""
	if len(m.Question) == 1 {
		if n, before := v.chainToSRVName(m.Answer, m.Question[0].Name); n != "" {
			m, keep = v.scrubFrom(ctx, m, n, before), n
		}
	}
	return v.guard(ctx, m, true, keep)
}

// chainToSRVName follows the aliases from qname through answer (as followChain does) and
// returns the first `_vlmcs._tcp` name of a zone of vlmcs it reaches, with the names before
// it on the chain; "" when it reaches none.
func (v *Vlmcs) chainToSRVName(answer []dns.RR, qname string) (string, []string) {
	var before []string
	name := qname
	for range maxChain + 1 {
		if v.srvZone(name) != "" {
			return name, before
		}
		before = append(before, name)
		next, ok := nextInChain(answer, name)
		if !ok {
			return "", nil
		}
		name = next
	}
	return "", nil
}

// scrubFrom returns m with the records from n on (all but those owned by the names before n
// on the chain, and DNAMEs) replaced by what vlmcs answers for n: the pool's records when n
// is a publish zone's `_vlmcs._tcp` name, else what scrub makes of them as the answer to n.
func (v *Vlmcs) scrubFrom(ctx context.Context, m *dns.Msg, n string, before []string) *dns.Msg {
	var prefix, rest []dns.RR
	for _, rr := range m.Answer {
		h := rr.Header()
		sig, isSig := rr.(*dns.RRSIG)
		if h.Rrtype == dns.TypeDNAME || isSig && sig.TypeCovered == dns.TypeDNAME || slices.ContainsFunc(before, func(b string) bool { return dnsname.Equal(b, h.Name) }) {
			prefix = append(prefix, rr)
		} else {
			rest = append(rest, rr)
		}
	}
	for _, p := range v.pools {
		if dnsname.Equal(n, p.srvName) {
			return v.poolFrom(ctx, m, prefix, p)
		}
	}
	sub := new(dns.Msg)
	*sub = *m // shallow: records are shared, never modified
	sub.Question = []dns.Question{{Name: n, Qtype: m.Question[0].Qtype, Qclass: m.Question[0].Qclass}}
	sub.Answer = rest
	s := v.scrub(ctx, sub, v.srvZone(n), time.Now())
	if s == sub {
		return m
	}
	out := new(dns.Msg)
	*out = *s
	out.Question = m.Question
	if s.Rcode != dns.RcodeServerFailure { // an alias loop from n: SERVFAIL for the whole answer
		out.Answer = append(prefix, s.Answer...)
	}
	return out
}

// poolFrom returns m with its answer cut after prefix and the pool's SRV records and glue
// in their place (for an SRV or ANY question; none else); the rest of the additional
// section, but EDNS, goes with the records it belonged to.
func (v *Vlmcs) poolFrom(ctx context.Context, m *dns.Msg, prefix []dns.RR, p *pool) *dns.Msg {
	a := p.current(time.Now())
	out := new(dns.Msg)
	*out = *m
	out.Answer, out.Ns, out.Extra = prefix, nil, nil
	if qt := m.Question[0].Qtype; qt == dns.TypeSRV || qt == dns.TypeANY {
		out.Answer = append(slices.Clip(prefix), a.srv...)
		out.Extra = append(out.Extra, a.extra...)
	}
	if o := m.IsEdns0(); o != nil {
		out.Extra = append(out.Extra, o)
	}
	scrubbedTotal.WithLabelValues(v.serverOf(ctx), p.zone, "passthrough").Inc()
	return out
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

// guard returns m without the DNAMEs passGuard removes and without the records owned by a
// `_vlmcs._tcp` name of a zone of vlmcs other than keep (all of them with all, else only
// CNAMEs: a scrubbed answer, whose SRV records scrub judged), or m itself when there is none
// of them; m is left alone (the next plugin, cache, may share it).
func (v *Vlmcs) guard(ctx context.Context, m *dns.Msg, all bool, keep string) *dns.Msg {
	ans, cutA := v.guardSection(ctx, m.Answer, all, keep)
	ns, cutN := v.guardSection(ctx, m.Ns, all, keep)
	extra, cutE := v.guardSection(ctx, m.Extra, all, keep)
	if !cutA && !cutN && !cutE {
		return m
	}
	out := new(dns.Msg)
	*out = *m // shallow: records are shared, never modified
	out.Answer, out.Ns, out.Extra = ans, ns, extra
	return out
}

// guardSection returns rrs without the records guard removes, and whether it removed any.
func (v *Vlmcs) guardSection(ctx context.Context, rrs []dns.RR, all bool, keep string) ([]dns.RR, bool) {
	var out []dns.RR
	cut := false
	for i, rr := range rrs {
		h := rr.Header()
		drop := false
		switch rr := rr.(type) {
		case *dns.DNAME:
			if z := v.relatedZone(h.Name); z != "" {
				drop = true
				scrubbedTotal.WithLabelValues(v.serverOf(ctx), z, "dname").Inc()
				v.logger.Logf("removed DNAME %s -> %s: it would redirect _vlmcs._tcp names of %s past vlmcs", h.Name, rr.Target, z)
			}
		case *dns.RRSIG:
			drop = rr.TypeCovered == dns.TypeDNAME && v.relatedZone(h.Name) != ""
		}
		if !drop && hasSRVLabel(h.Name) && (keep == "" || !dnsname.Equal(h.Name, keep)) {
			if z := v.srvZone(h.Name); z != "" {
				t := h.Rrtype
				if sig, ok := rr.(*dns.RRSIG); ok {
					t = sig.TypeCovered
				}
				if all || t == dns.TypeCNAME {
					drop = true
					if h.Rrtype != dns.TypeRRSIG {
						scrubbedTotal.WithLabelValues(v.serverOf(ctx), z, "passthrough").Inc()
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
