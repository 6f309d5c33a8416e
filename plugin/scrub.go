package vlmcs

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// scrubZone is a zone whose `_vlmcs._tcp` answers come from the next plugin and are filtered.
type scrubZone struct {
	zone    string
	srvName string
}

// maxChain bounds the aliases followed from the question name; a longer chain is a loop.
const maxChain = 8

// maxResolve bounds the SRV targets of one answer whose addresses are looked up through the
// next plugin (see judge.lookup); targets beyond it count as having no address.
const maxResolve = 8

// serveScrub lets the next plugin answer a `_vlmcs._tcp` question and filters the answer by
// what the client will use (see scrub). zone labels the metrics.
func (v *Vlmcs) serveScrub(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, zone string) (int, error) {
	nw := nonwriter.New(w)
	ask := r
	if !r.RecursionDesired {
		// Ask for the answer, not a referral: a resolver iterating towards CoreDNS sends
		// RD=0, and a delegation passed back would lead it past vlmcs (delegation.go).
		ask = r.Copy()
		ask.RecursionDesired = true
	}
	rcode, err := plugin.NextOrFailure(v.Name(), v.Next, ctx, nw, ask)
	if nw.Msg == nil {
		return rcode, err
	}
	out := v.guardDelegations(ctx, v.guardAddrs(ctx, v.scrub(ctx, nw.Msg, zone, time.Now())))
	if out.RecursionDesired != r.RecursionDesired {
		if out == nw.Msg {
			c := *out
			out = &c
		}
		out.RecursionDesired = r.RecursionDesired
	}
	w.WriteMsg(out)
	return dns.RcodeSuccess, err
}

// scrub returns m when nothing is removed, else a filtered copy (m itself is left alone: the
// next plugin may share it, e.g. cache).
//
// Every SRV record of the answer, authority and additional sections, at any owner, is judged:
// an unapproved target (or, with scrub_unhealthy, an unhealthy one) is removed with its address
// records in every section, logged and counted. A target is judged with every address the
// answer gives it (in any section) or this server holds for it; when `approve` has network
// rules and the answer gives none, its A and AAAA records are looked up through the next plugin
// (following aliases), and a target whose addresses stay unknown is removed ("unresolved"):
// an address nobody judged never reaches a client. When the question name is an alias (a
// CNAME, or a name below a DNAME, at any depth), the answer is flattened: the approved SRV
// records at the end of the chain are answered at the question name (with the smallest TTL of
// the chain) and the aliases are removed, so that no resolver can cache an alias and later ask
// the alias target, a name vlmcs does not filter. A chain with no approved SRV records at its
// end (all removed, or a chain that leaves for a name whose records the answer does not hold)
// gives NODATA; a chain that loops or is longer than maxChain gives SERVFAIL. DNAMEs that could
// cover a `_vlmcs._tcp` name, and CNAMEs at such names, are removed from every section as
// passGuard does.
func (v *Vlmcs) scrub(ctx context.Context, m *dns.Msg, zone string, now time.Time) *dns.Msg {
	if len(m.Question) != 1 {
		return v.guard(ctx, m, false, "")
	}
	qname := m.Question[0].Name
	end, ttl, aliases, loop := followChain(m.Answer, qname)
	if loop {
		v.logger.Logf("alias loop at %s: answering SERVFAIL", qname)
		scrubbedTotal.WithLabelValues(v.serverOf(ctx), zone, "alias-loop").Inc()
		out := new(dns.Msg)
		out.SetRcode(m, dns.RcodeServerFailure)
		out.Authoritative, out.RecursionAvailable = m.Authoritative, m.RecursionAvailable
		if o := m.IsEdns0(); o != nil {
			out.Extra = []dns.RR{o}
		}
		return out
	}

	glue := map[string][]netip.Addr{}
	for _, sec := range [3][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if ip, ok := rrAddr(rr); ok {
				n := strings.ToLower(rr.Header().Name)
				glue[n] = append(glue[n], ip.Unmap())
			}
		}
	}
	j := &judge{v: v, ctx: ctx, zone: zone, now: now, glue: glue, own: map[string][]dns.RR{}, dropped: map[string]bool{}, kept: map[string]bool{}}
	flatten := aliases > 0
	changed := flatten

	out := new(dns.Msg)
	*out = *m // shallow: records are shared, never modified; the sections are rebuilt
	out.Answer = make([]dns.RR, 0, len(m.Answer))
	for _, rr := range m.Answer {
		srv, isSRV := rr.(*dns.SRV)
		switch {
		case isSRV:
			if !j.keep(srv) {
				changed = true
				continue
			}
			if flatten {
				if !dnsname.Equal(srv.Hdr.Name, end) {
					continue // not what the client uses: only the end of the chain is
				}
				c := dns.Copy(srv).(*dns.SRV)
				c.Hdr.Name, c.Hdr.Ttl = qname, min(c.Hdr.Ttl, ttl)
				rr = c
			}
		case flatten:
			switch rr.Header().Rrtype {
			case dns.TypeCNAME, dns.TypeDNAME:
				scrubbedTotal.WithLabelValues(v.serverOf(ctx), zone, "alias").Inc()
				continue
			case dns.TypeRRSIG:
				continue // the flattened answer is not what was signed
			}
			if !dnsname.Equal(rr.Header().Name, qname) {
				continue // records along the chain
			}
		}
		out.Answer = append(out.Answer, rr)
	}
	ns, nsCut := j.keepSection(m.Ns)
	extra, extraCut := j.keepSection(m.Extra)
	changed = changed || nsCut || extraCut
	if !changed && len(j.added) == 0 {
		return v.guard(ctx, m, false, "")
	}
	if j.removed {
		out.Answer = dropSigs(out.Answer, dns.TypeSRV)
		ns = dropSigs(ns, dns.TypeSRV)
	}
	if flatten {
		ns = nil // the authority of the chain's end, not of the question's zone
		if out.Rcode == dns.RcodeNameError {
			out.Rcode = dns.RcodeSuccess // the question name exists: it was an alias
		}
		if !hasType(out.Answer, dns.TypeSRV) {
			out.Answer = nil // NODATA rather than a dangling chain
			v.logger.Logf("answering NODATA for %s: its alias chain ends at %s without an approved SRV record", qname, end)
		}
	}
	out.Answer = j.dropGlue(out.Answer)
	out.Ns = j.dropGlue(ns)
	out.Extra = append(j.dropGlue(extra), j.added...)
	return v.guard(ctx, out, false, "")
}

// judge decides for the SRV records of one answer.
type judge struct {
	v       *Vlmcs
	ctx     context.Context
	zone    string
	now     time.Time
	glue    map[string][]netip.Addr // addresses in the answer (any section), by lower-case name
	own     map[string][]dns.RR     // address records this server holds or looked up, by lower-case target
	dropped map[string]bool         // targets of removed records
	kept    map[string]bool         // targets of kept records
	added   []dns.RR                // glue from this server for kept targets the answer left bare
	lookups int                     // targets looked up through the next plugin
	removed bool
}

// keepSection returns the records of an authority or additional section whose SRV records
// keep allows, and whether it removed any.
func (j *judge) keepSection(rrs []dns.RR) ([]dns.RR, bool) {
	out := make([]dns.RR, 0, len(rrs))
	cut := false
	for _, rr := range rrs {
		if srv, ok := rr.(*dns.SRV); ok && !j.keep(srv) {
			cut = true
			continue
		}
		out = append(out, rr)
	}
	return out, cut
}

// dropGlue removes from rrs the address records of targets that were removed and not kept
// at another port.
func (j *judge) dropGlue(rrs []dns.RR) []dns.RR {
	if len(j.dropped) == 0 {
		return rrs
	}
	out := rrs[:0:0]
	for _, rr := range rrs {
		n := strings.ToLower(rr.Header().Name)
		if j.dropped[n] && !j.kept[n] {
			if _, ok := rrAddr(rr); ok {
				scrubbedTotal.WithLabelValues(j.v.serverOf(j.ctx), j.zone, "glue").Inc()
				continue
			}
		}
		out = append(out, rr)
	}
	return out
}

// lookup returns the address records of target (lower case) found through the next plugin,
// for at most maxResolve targets per answer; nil when there are none or the budget is spent.
func (j *judge) lookup(target string) []dns.RR {
	v := j.v
	if j.ctx == nil || v.Next == nil || j.lookups >= maxResolve {
		return nil
	}
	j.lookups++
	var rrs []dns.RR
	for _, ip := range v.resolve(j.ctx, target) {
		rrs = append(rrs, addrRR(target, ip, v.cfg.ttl))
	}
	return rrs
}

// keep judges one SRV record; a record to remove is counted and, when rogue, logged.
func (j *judge) keep(srv *dns.SRV) bool {
	v, cfg := j.v, j.v.cfg
	target := strings.ToLower(srv.Target)
	addrs := j.glue[target]
	if len(addrs) == 0 {
		if _, seen := j.own[target]; !seen {
			j.own[target] = v.ownHost(target, j.now)
			if j.own[target] == nil && cfg.approve.HasNetworks() && cfg.approve.Name(target) {
				j.own[target] = j.lookup(target)
			}
		}
		for _, rr := range j.own[target] {
			if ip, ok := rrAddr(rr); ok {
				addrs = append(addrs, ip.Unmap())
			}
		}
	}
	reason := ""
	switch {
	case !cfg.approve.Name(target): // also refuses names a host cannot have (evil\.kms...)
		reason = "unapproved"
	case cfg.approve.HasNetworks() && len(addrs) == 0:
		reason = "unresolved" // network rules, and no address to judge
	case !cfg.approve.Host(target, addrs):
		reason = "unapproved"
	case v.scrubHC != nil && !cfg.portAllowed(srv.Port):
		reason = "unhealthy" // a port outside `ports` is never probed: it cannot be shown healthy
	case v.scrubHC != nil:
		if ok, tracked := v.scrubHC.observe(memberKey{target, srv.Port}, j.zone, addrs, j.now); !ok {
			reason = "unhealthy"
			if !tracked {
				v.logger.Logf("scrubbed KMS host %s port %d from %s: scrub_unhealthy tracks %d targets already, an untracked one is not kept", srv.Target, srv.Port, srv.Hdr.Name, maxScrubTargets)
			}
		}
	}
	if reason == "" {
		if !j.kept[target] && len(j.glue[target]) == 0 {
			j.added = append(j.added, j.own[target]...)
		}
		j.kept[target] = true
		return true
	}
	j.removed = true
	j.dropped[target] = true
	scrubbedTotal.WithLabelValues(v.serverOf(j.ctx), j.zone, reason).Inc()
	switch reason {
	case "unapproved":
		rogueTargets.observe(v.serverOf(j.ctx), j.zone, target, j.now)
		v.logger.Classf("rogue", "scrubbed rogue KMS host %s port %d from %s (addresses %v)", srv.Target, srv.Port, srv.Hdr.Name, addrs)
	case "unresolved":
		v.logger.Classf("unresolved", "scrubbed KMS host %s port %d from %s: no address known to judge against the approved networks", srv.Target, srv.Port, srv.Hdr.Name)
	}
	return false
}

// followChain follows the aliases from qname through answer: a CNAME at the current name, or a
// DNAME at one of its ancestors (whose synthesized CNAME may be missing). It returns the name
// at the end, the smallest TTL of the aliases followed, their number, and whether the chain
// loops or is longer than maxChain.
func followChain(answer []dns.RR, qname string) (end string, ttl uint32, aliases int, loop bool) {
	end, ttl = qname, ^uint32(0)
	hasAlias := false
	for _, rr := range answer {
		if t := rr.Header().Rrtype; t == dns.TypeCNAME || t == dns.TypeDNAME {
			hasAlias = true
			break
		}
	}
	if !hasAlias {
		return end, ttl, 0, false
	}
	seen := []string{}
	for {
		c, err := dnsname.Canonical(end)
		if err != nil || slices.Contains(seen, c) {
			return end, ttl, aliases, true
		}
		seen = append(seen, c)
		next, found, t := step(answer, end)
		if !found {
			return end, ttl, aliases, false
		}
		ttl = min(ttl, t)
		if aliases++; aliases > maxChain {
			return end, ttl, aliases, true
		}
		end = next
	}
}

// nextInChain returns the name the alias at name leads to (a CNAME at name, or a DNAME at one
// of its ancestors) and whether answer holds one.
func nextInChain(answer []dns.RR, name string) (string, bool) {
	next, found, _ := step(answer, name)
	return next, found
}

// step is nextInChain with the TTL of the alias followed.
func step(answer []dns.RR, name string) (next string, found bool, ttl uint32) {
	for _, rr := range answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			if dnsname.Equal(rr.Hdr.Name, name) {
				return dns.Fqdn(rr.Target), true, rr.Hdr.Ttl
			}
		case *dns.DNAME:
			if rel, ok := dnsname.TrimZone(rr.Hdr.Name, name); ok && rel != "" {
				if dns.Fqdn(rr.Target) == "." {
					return rel + ".", true, rr.Hdr.Ttl
				}
				return rel + "." + dns.Fqdn(rr.Target), true, rr.Hdr.Ttl
			}
		}
	}
	return "", false, 0
}

// hasType reports whether rrs hold a record of type t.
func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// ownHost returns the address records this server holds for target (lower case): those of an
// approved, registered or static member of a publish zone, else the addresses an `approve
// NAME=ADDRESS` rule binds to it; nil when none.
func (v *Vlmcs) ownHost(target string, now time.Time) []dns.RR {
	if rrs := v.poolHost(target, now); rrs != nil {
		return rrs
	}
	bound := v.cfg.approve.Bound(target)
	if bound == nil {
		return nil
	}
	rrs := make([]dns.RR, len(bound))
	for i, ip := range bound {
		rrs[i] = addrRR(target, ip, v.cfg.ttl)
	}
	return rrs
}

// poolHost returns the address records a publish zone of this server answers for target
// (lower case): those of an approved, registered or static member; nil when none holds it.
func (v *Vlmcs) poolHost(target string, now time.Time) []dns.RR {
	for _, p := range v.pools {
		if dns.IsSubDomain(p.zone, target) {
			if rrs := p.current(now).hosts[target]; rrs != nil {
				return rrs
			}
		}
	}
	return nil
}

// dropSigs removes RRSIGs covering type t.
func dropSigs(rrs []dns.RR, t uint16) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == t {
			continue
		}
		out = append(out, rr)
	}
	return out
}

// scrubHealth tracks the health of approved targets seen in scrub-zone answers, so that
// scrub_unhealthy can drop those that fail probes. Targets unseen for scrubForget are forgotten.
type scrubHealth struct {
	mu      sync.Mutex
	targets map[memberKey]*scrubTarget
	pruned  time.Time // when observe last forgot stale targets to make room
}

type scrubTarget struct {
	zone  string // the scrub zone whose answer first held the target: its probes' metrics zone
	addrs []netip.Addr
	seen  time.Time
	run   *probeRun // the probing whose schedule covers this target
	healthCheck
}

const scrubForget = 10 * time.Minute

// maxScrubTargets bounds the targets tracked for scrub_unhealthy.
const maxScrubTargets = 4096

func newScrubHealth() *scrubHealth { return &scrubHealth{targets: map[memberKey]*scrubTarget{}} }

// observe records a sighting in an answer of zone and reports whether the target may stay (not known down), and
// whether it is tracked. A
// target the full table cannot track is not kept: no probe would ever judge it, and keeping
// it would let whoever fills the table with other names (anyone registering approved names in
// the DNS behind) pass dead or hijacked hosts. Room is made by forgetting targets unseen for
// scrubForget (at most once a second); a target that is down is never forgotten earlier.
func (h *scrubHealth) observe(k memberKey, zone string, addrs []netip.Addr, now time.Time) (keep, tracked bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.targets[k]
	if !ok {
		if len(h.targets) >= maxScrubTargets && now.Sub(h.pruned) >= time.Second {
			h.pruned = now
			for k, st := range h.targets {
				if now.Sub(st.seen) > scrubForget {
					delete(h.targets, k)
				}
			}
		}
		if len(h.targets) >= maxScrubTargets {
			return false, false
		}
		t = &scrubTarget{zone: zone}
		h.targets[k] = t
	}
	t.seen = now
	if len(addrs) > 0 {
		t.addrs = addrs
	}
	return t.state != healthDown, true
}

// unscheduled forgets targets unseen for scrubForget and returns those that no schedule of
// run covers yet, marking them covered.
func (h *scrubHealth) unscheduled(run *probeRun, now time.Time) map[memberKey]*scrubTarget {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[memberKey]*scrubTarget{}
	for k, st := range h.targets {
		if now.Sub(st.seen) > scrubForget {
			delete(h.targets, k)
			continue
		}
		if st.run != run {
			st.run = run
			out[k] = st
		}
	}
	return out
}

// job returns the addresses to probe for st (the approved ones its answers carried) and
// whether its probe yields to those of up targets (see probeAddrs); false once st is forgotten.
func (h *scrubHealth) job(k memberKey, st *scrubTarget) (addrs []netip.Addr, yield, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.targets[k] != st {
		return nil, false, false
	}
	return st.addrs, st.state != healthUp, true
}

// report applies one probe result to st and returns the wait before its next probe.
func (h *scrubHealth) report(st *scrubTarget, ok bool, pc probeConfig) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.observe(ok, pc)
	return st.next(pc, jitter())
}
