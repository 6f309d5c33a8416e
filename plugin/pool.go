package vlmcs

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// memberKey identifies a member: one SRV target and port.
type memberKey struct {
	target string // lower case, fully qualified
	port   uint16
}

// member is one SRV record of the pool with its registration and health.
type member struct {
	memberKey
	priority, weight uint16
	static           bool
	staticAddrs      []netip.Addr
	expires          time.Time  // lease end of a registered member
	owner            string     // TSIG key that registered it; "" when unsigned or static
	sender           netip.Addr // who registered it unsigned (member_limit counts per sender)

	healthCheck
	resolved   []netip.Addr // found through the next plugin when none are registered
	resolvedAt time.Time    // when resolved was looked up
	run        *probeRun    // the probing whose schedule covers this member
}

// hostRecord holds the registered addresses of one target name.
type hostRecord struct {
	addrs   []netip.Addr
	expires time.Time
	owner   string     // TSIG key of the last update that added addresses; "" when unsigned
	sender  netip.Addr // who added them unsigned (member_limit counts per sender)
}

// answer is the prepared reply content of a publish zone, shared read-only by all queries.
type answer struct {
	srv        []dns.RR // clipped: appending copies
	extra      []dns.RR // clipped: appending copies
	soa        []dns.RR
	hosts      map[string][]dns.RR // address records of approved live targets, by lower-case name
	kind       string              // answersTotal label: members, last_known or empty
	zone       string              // the pool's zone
	server     string              // the pool's server label, for which served and empty are resolved
	served     prometheus.Counter  // answersTotal for kind, resolved once per rebuild
	empty      prometheus.Counter  // answersTotal for NODATA answers
	validUntil time.Time           // the earliest lease end; the answer must be rebuilt then
	qname      string              // the lower-case question name of packed
	packed     [][]byte            // the SRV answer pre-packed in several member orders (fastpath.go)
}

// pool is the member set of one publish zone. It outlives a Corefile reload (see registry.go).
type pool struct {
	zone    string
	srvName string
	server  string // metrics label

	mu        sync.Mutex
	cfg       *config
	members   map[memberKey]*member
	hosts     map[string]*hostRecord
	serial    uint32
	evaluated bool

	ans    atomic.Pointer[answer]
	bufs   sync.Pool     // *packedBuf for the fast path (fastpath.go)
	kick   chan struct{} // wakes the pool loop when a member needs a first probe
	events *rateLog      // members joining, leaving and changing health
}

func newPool(zone, server string, cfg *config) *pool {
	p := &pool{
		zone:    zone,
		srvName: srvLabel + zone,
		bufs:    sync.Pool{New: newPackedBuf},
		server:  server,
		members: map[memberKey]*member{},
		hosts:   map[string]*hostRecord{},
		serial:  uint32(time.Now().Unix()),
		kick:    make(chan struct{}, 1),
		events:  newEventLog(20, time.Second),
	}
	// Exported from the start, so that a rate sees the first change.
	for _, h := range []health{healthUp, healthDown} {
		healthChanges.WithLabelValues(server, zone, h.String())
	}
	p.configure(cfg, time.Now())
	return p
}

// configure applies a (re)loaded configuration: static members are replaced, keeping the
// health of those that stay; registered members are kept and re-judged against the new rules.
func (p *pool) configure(cfg *config, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	keep := map[memberKey]bool{}
	for _, s := range cfg.static {
		k := memberKey{s.target, s.port}
		keep[k] = true
		m, ok := p.members[k]
		if !ok || !m.static {
			m = &member{memberKey: k, static: true}
			p.members[k] = m
		}
		m.priority, m.weight, m.staticAddrs = s.priority, s.weight, s.addrs
		m.expires, m.owner = time.Time{}, ""
	}
	for k, m := range p.members {
		if m.static && !keep[k] {
			delete(p.members, k)
		}
	}
	p.dropOrphansLocked(cfg)
	if !cfg.probe.enabled {
		p.evaluated = true
	}
	p.rebuildLocked(now)
}

// dropOrphansLocked re-judges registrations against a (re)loaded configuration: what a key
// registered stays only while that key is still granted the name, and what an unsigned sender
// registered only while its address is still in an `unsigned` network. The rest goes at once
// (a key or grant removed from the Corefile must not keep answering until its lease lapses).
func (p *pool) dropOrphansLocked(cfg *config) {
	allowed := func(owner, name string, sender netip.Addr) bool {
		if owner != "" {
			return cfg.granted(owner, name)
		}
		return cfg.unsignedFrom(sender, true)
	}
	for k, m := range p.members {
		if !m.static && !allowed(m.owner, m.target, m.sender) {
			delete(p.members, k)
			p.events.Logf("%s port %d dropped from %s: its registrant (key %q, sender %v) may no longer register it", m.target, m.port, p.srvName, m.owner, m.sender)
		}
	}
	for n, h := range p.hosts {
		if !allowed(h.owner, n, h.sender) {
			delete(p.hosts, n)
			p.events.Logf("addresses of %s dropped: their registrant (key %q, sender %v) may no longer register them", n, h.owner, h.sender)
		}
	}
}

// addrsLocked returns the addresses of a member: registered, else configured (`static`, then
// an `approve NAME=ADDRESS` binding), else resolved.
func (p *pool) addrsLocked(m *member, now time.Time) []netip.Addr {
	if own := p.ownAddrsLocked(m, now); len(own) > 0 {
		return own
	}
	return m.resolved
}

// ownAddrsLocked returns the addresses this server holds for m: registered, else configured
// (`static`, then an `approve NAME=ADDRESS` binding); addresses resolved through the next
// plugin are not its own to answer for.
func (p *pool) ownAddrsLocked(m *member, now time.Time) []netip.Addr {
	if h, ok := p.hosts[m.target]; ok && now.Before(h.expires) && len(h.addrs) > 0 {
		return h.addrs
	}
	if len(m.staticAddrs) > 0 {
		return m.staticAddrs
	}
	return p.cfg.approve.Bound(m.target)
}

// answerAddrsLocked returns the addresses vlmcs answers A/AAAA queries for m's target with:
// those a key registered, else the configured ones. Addresses registered unsigned are not: an
// unsigned sender registers only at names the zone behind already holds, and that zone
// answers for them.
func (p *pool) answerAddrsLocked(m *member, now time.Time) []netip.Addr {
	if h, ok := p.hosts[m.target]; ok && now.Before(h.expires) && len(h.addrs) > 0 {
		if h.owner == "" {
			return nil
		}
		return h.addrs
	}
	if len(m.staticAddrs) > 0 {
		return m.staticAddrs
	}
	return p.cfg.approve.Bound(m.target)
}

// countServed counts an answer with members (kind members or last_known) for server, the
// listener the query came in on. The counter of the pool's own server label is resolved once
// per rebuild; a pool shared by listeners with other bind addresses resolves theirs per query.
func (a *answer) countServed(server string) {
	if server == a.server {
		a.served.Inc()
		return
	}
	answersTotal.WithLabelValues(server, a.zone, a.kind).Inc()
}

// countEmpty counts a NODATA answer for server (see countServed).
func (a *answer) countEmpty(server string) {
	if server == a.server {
		a.empty.Inc()
		return
	}
	answersTotal.WithLabelValues(server, a.zone, "empty").Inc()
}

// live reports whether m is registered at now (static members always are).
func (m *member) live(now time.Time) bool { return m.static || now.Before(m.expires) }

// current returns the answer for now, rebuilding it first when a lease has lapsed.
func (p *pool) current(now time.Time) *answer {
	a := p.ans.Load()
	if a.validUntil.IsZero() || now.Before(a.validUntil) {
		return a
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if a = p.ans.Load(); !a.validUntil.IsZero() && !now.Before(a.validUntil) { // not done meanwhile
		p.sweepLocked(now)
		p.rebuildLocked(now)
	}
	return p.ans.Load()
}

// sweepLocked drops lapsed registrations and reports whether it dropped any.
func (p *pool) sweepLocked(now time.Time) bool {
	changed := false
	for k, m := range p.members {
		if !m.live(now) {
			delete(p.members, k)
			leaseExpiries.WithLabelValues(p.server, p.zone).Inc()
			p.events.Logf("%s port %d left %s: lease lapsed", m.target, m.port, p.srvName)
			changed = true
		}
	}
	for n, h := range p.hosts {
		if !now.Before(h.expires) {
			delete(p.hosts, n)
			changed = true
		}
	}
	return changed
}

// rebuildLocked prepares the answer from the members and updates the member gauges.
func (p *pool) rebuildLocked(now time.Time) {
	cfg := p.cfg
	var healthy, registered []*member
	counts := newStateCounts()
	var until time.Time
	for _, m := range p.members {
		if !m.live(now) {
			continue
		}
		if !m.static && (until.IsZero() || m.expires.Before(until)) {
			until = m.expires
		}
		state := p.classifyLocked(m, now)
		counts[state]++
		if state == "unapproved" || state == "unprobeable" { // never served, not even as last known
			continue
		}
		registered = append(registered, m)
		if !cfg.probe.enabled || m.state == healthUp {
			healthy = append(healthy, m)
		}
	}
	for _, h := range p.hosts {
		if until.IsZero() || h.expires.Before(until) {
			until = h.expires
		}
	}
	for s, n := range counts {
		membersGauge.WithLabelValues(p.server, p.zone, s).Set(n)
	}

	chosen, kind := healthy, "members"
	if len(chosen) == 0 && cfg.allDown == allDownLastKnown && len(registered) > 0 {
		chosen, kind = registered, "last_known"
	}
	slices.SortFunc(chosen, func(a, b *member) int {
		if c := strings.Compare(a.target, b.target); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	})
	a := &answer{kind: kind, validUntil: until, hosts: map[string][]dns.RR{}}
	for _, m := range registered { // health is told by the SRV answer; names resolve regardless
		if _, ok := a.hosts[m.target]; ok {
			continue
		}
		if own := p.answerAddrsLocked(m, now); len(own) > 0 {
			rrs := make([]dns.RR, 0, len(own))
			for _, ip := range own {
				rrs = append(rrs, addrRR(m.target, ip, cfg.ttl))
			}
			a.hosts[m.target] = rrs
		}
	}
	glued := map[string]bool{}
	for _, m := range chosen {
		a.srv = append(a.srv, &dns.SRV{
			Hdr:      dns.RR_Header{Name: p.srvName, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: cfg.ttl},
			Priority: m.priority, Weight: m.weight, Port: m.port, Target: m.target,
		})
		if glued[m.target] {
			continue
		}
		glued[m.target] = true
		for _, ip := range p.addrsLocked(m, now) {
			a.extra = append(a.extra, addrRR(m.target, ip, cfg.ttl))
		}
	}
	if len(a.srv) == 0 {
		a.kind = "empty"
	}
	p.serial++
	a.soa = []dns.RR{p.soaLocked()}
	a.zone, a.server = p.zone, p.server
	a.served = answersTotal.WithLabelValues(p.server, p.zone, a.kind)
	a.empty = answersTotal.WithLabelValues(p.server, p.zone, "empty")
	a.srv, a.extra = slices.Clip(a.srv), slices.Clip(a.extra)
	a.qname, a.packed = strings.ToLower(p.srvName), packAnswers(p.srvName, a.srv, a.extra)
	p.ans.Store(a)
}

// memberStates are the values of the members gauge's state label (see classifyLocked).
var memberStates = [...]string{"up", "down", "pending", "unapproved", "unprobeable"}

// newStateCounts returns a zero count for every member state, so that each gauge is set.
func newStateCounts() map[string]float64 {
	counts := make(map[string]float64, len(memberStates))
	for _, s := range memberStates {
		counts[s] = 0
	}
	return counts
}

// classifyLocked returns the members gauge state of live member m: unapproved, unprobeable,
// or its health (up when probes are off).
func (p *pool) classifyLocked(m *member, now time.Time) string {
	addrs := p.addrsLocked(m, now)
	switch {
	case !p.cfg.approve.Host(m.target, addrs):
		return "unapproved"
	case !p.probeableLocked(m, addrs):
		return "unprobeable"
	case !p.cfg.probe.enabled:
		return "up"
	}
	return m.state.String()
}

// gaugesLocked updates the members gauge alone, for changes that leave the answer as it is.
func (p *pool) gaugesLocked(now time.Time) {
	counts := newStateCounts()
	for _, m := range p.members {
		if m.live(now) {
			counts[p.classifyLocked(m, now)]++
		}
	}
	for s, n := range counts {
		membersGauge.WithLabelValues(p.server, p.zone, s).Set(n)
	}
}

// soaLocked synthesizes the zone's SOA for negative answers: MNAME is the zone, RNAME
// hostmaster.<zone>, the serial counts pool changes, and TTL and MINIMUM are the answer TTL.
func (p *pool) soaLocked() *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: p.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: p.cfg.ttl},
		Ns:      p.zone,
		Mbox:    "hostmaster." + p.zone,
		Serial:  p.serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  p.cfg.ttl,
	}
}

// addrRR returns an A or AAAA record for ip.
func addrRR(name string, ip netip.Addr, ttl uint32) dns.RR {
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	if ip.Is4() {
		hdr.Rrtype = dns.TypeA
		return &dns.A{Hdr: hdr, A: ip.AsSlice()}
	}
	hdr.Rrtype = dns.TypeAAAA
	return &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()}
}

// probeableLocked reports whether the prober may connect to member m with addresses addrs
// (approved already): a registered member must use an allowed port, and with probes on there
// must be an address to probe. A member that cannot be probed is not served.
func (p *pool) probeableLocked(m *member, addrs []netip.Addr) bool {
	if !m.static && !p.cfg.portAllowed(m.port) {
		return false
	}
	return !p.cfg.probe.enabled || len(addrs) > 0
}

// unscheduled sweeps lapsed registrations and returns the members that no schedule of run
// covers yet, marking them covered. It also marks the pool evaluated once no member is
// waiting for its first probe.
func (p *pool) unscheduled(run *probeRun, now time.Time) []*member {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sweepLocked(now) {
		p.rebuildLocked(now)
	}
	var out []*member
	waiting := false
	for _, m := range p.members {
		if m.run != run {
			m.run = run
			out = append(out, m)
		}
		if m.state == healthPending && p.cfg.probe.enabled {
			addrs := p.addrsLocked(m, now)
			unresolved := len(addrs) == 0 && m.resolvedAt.IsZero()
			if unresolved || (p.cfg.approve.Host(m.target, addrs) && p.probeableLocked(m, addrs)) {
				waiting = true
			}
		}
	}
	if !waiting {
		p.evaluated = true
	}
	return out
}

// probeJob is what one step of a member's schedule does.
type probeJob struct {
	resolve bool         // look the target up through the next plugin first
	addrs   []netip.Addr // approved addresses to probe; none: skip the probe
	yield   bool         // m is not up: its probe yields to up members' under probe_rate
}

// probeJob returns the next step for m; false when m has left the pool.
func (p *pool) probeJob(m *member, now time.Time) (probeJob, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.members[m.memberKey] != m || !m.live(now) {
		return probeJob{}, false
	}
	var j probeJob
	if len(p.ownAddrsLocked(m, now)) == 0 && (m.resolvedAt.IsZero() || now.Sub(m.resolvedAt) >= resolveEvery) {
		j.resolve = true
	}
	addrs := p.addrsLocked(m, now)
	if p.cfg.approve.Host(m.target, addrs) && p.probeableLocked(m, addrs) {
		j.addrs = slices.Clone(addrs)
	}
	j.yield = m.state != healthUp
	return j, true
}

// setResolved stores the addresses found through the next plugin for m.
func (p *pool) setResolved(m *member, addrs []netip.Addr, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m.resolvedAt = now
	if !slices.Equal(m.resolved, addrs) {
		m.resolved = addrs
		if p.members[m.memberKey] == m {
			p.rebuildLocked(now)
		}
	}
}

// report records one probe result of m, rebuilds the answer when its state changes and
// returns the wait before m's next probe.
func (p *pool) report(m *member, ok bool, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := m.state
	if m.observe(ok, p.cfg.probe) && p.members[m.memberKey] == m {
		healthChanges.WithLabelValues(p.server, p.zone, m.state.String()).Inc()
		p.events.Logf("%s port %d is %s (%d failed, %d passed probes in a row)", m.target, m.port, m.state, m.fails, m.passes)
		if old == healthUp || m.state == healthUp {
			p.rebuildLocked(now)
		} else {
			// Pending to down (or back) leaves the answer as it is: what is served is the up
			// members, or else (last_known) every probeable member whatever its state. This
			// keeps a crowd of dead registrations from rebuilding the answer each.
			p.gaugesLocked(now)
		}
	}
	return m.next(p.cfg.probe, jitter())
}

// ready reports whether the pool has been evaluated at least once.
func (p *pool) ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.evaluated
}

// wake asks the prober for a round now (non-blocking).
func (p *pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}
