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

// health is a member's probe state.
type health uint8

const (
	healthPending health = iota // registered, not yet probed up or down
	healthUp
	healthDown
)

func (h health) String() string {
	switch h {
	case healthUp:
		return "up"
	case healthDown:
		return "down"
	}
	return "pending"
}

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
	expires          time.Time // lease end of a registered member
	owner            string    // TSIG key that registered it; "" when unsigned or static

	state         health
	fails, passes int
	resolved      []netip.Addr // found through the next plugin when none are registered
}

// hostRecord holds the registered addresses of one target name.
type hostRecord struct {
	addrs   []netip.Addr
	expires time.Time
	owner   string // TSIG key of the last update that added addresses; "" when unsigned
}

// answer is the prepared reply content of a publish zone, shared read-only by all queries.
type answer struct {
	srv        []dns.RR // clipped: appending copies
	extra      []dns.RR // clipped: appending copies
	soa        []dns.RR
	hosts      map[string][]dns.RR // address records of approved live targets, by lower-case name
	kind       string              // answersTotal label: members, last_known or empty
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
	kick   chan struct{} // wakes the prober when a member needs a first probe
	replay *replayGuard  // MACs of accepted signed updates, kept across reloads with the pool
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
		replay:  newReplayGuard(),
		events:  newEventLog(20, time.Second),
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
	if !cfg.probe.enabled {
		p.evaluated = true
	}
	p.rebuildLocked(now)
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
	counts := map[string]float64{"up": 0, "down": 0, "pending": 0, "unapproved": 0}
	var until time.Time
	for _, m := range p.members {
		if !m.live(now) {
			continue
		}
		if !m.static && (until.IsZero() || m.expires.Before(until)) {
			until = m.expires
		}
		if !cfg.approve.Host(m.target, p.addrsLocked(m, now)) {
			counts["unapproved"]++
			continue
		}
		if cfg.probe.enabled {
			counts[m.state.String()]++
		} else {
			counts["up"]++ // not probed: served as up
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
		if own := p.ownAddrsLocked(m, now); len(own) > 0 {
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
	a.served = answersTotal.WithLabelValues(p.server, p.zone, a.kind)
	a.empty = answersTotal.WithLabelValues(p.server, p.zone, "empty")
	a.srv, a.extra = slices.Clip(a.srv), slices.Clip(a.extra)
	a.qname, a.packed = strings.ToLower(p.srvName), packAnswers(p.srvName, a.srv, a.extra)
	p.ans.Store(a)
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

// probeTarget is one member to probe in a round.
type probeTarget struct {
	key   memberKey
	addrs []netip.Addr
}

// targets sweeps lapsed registrations and lists the members to probe.
func (p *pool) targets(now time.Time) (ts []probeTarget, unresolved []memberKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sweepLocked(now) {
		p.rebuildLocked(now)
	}
	for k, m := range p.members {
		addrs := p.addrsLocked(m, now)
		if len(addrs) == 0 {
			unresolved = append(unresolved, k)
		}
		ts = append(ts, probeTarget{key: k, addrs: slices.Clone(addrs)})
	}
	return ts, unresolved
}

// setResolved stores addresses found for a member that registered none.
func (p *pool) setResolved(k memberKey, addrs []netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.members[k]; ok && !slices.Equal(m.resolved, addrs) {
		m.resolved = addrs
		p.rebuildLocked(time.Now())
	}
}

// report records one probe result and rebuilds the answer when the state changes.
func (p *pool) report(k memberKey, ok bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, found := p.members[k]
	if !found {
		return
	}
	pc := p.cfg.probe
	old := m.state
	if ok {
		m.fails = 0
		m.passes++
		if m.state != healthUp && m.passes >= pc.passes {
			m.state = healthUp
		}
	} else {
		m.passes = 0
		m.fails++
		if m.state != healthDown && m.fails >= pc.fails {
			m.state = healthDown
		}
	}
	if m.state != old {
		p.events.Logf("%s port %d is %s (%d failed, %d passed probes in a row)", m.target, m.port, m.state, m.fails, m.passes)
		p.rebuildLocked(now)
	}
}

// roundDone marks the pool evaluated once a full probe round has finished.
func (p *pool) roundDone() {
	p.mu.Lock()
	p.evaluated = true
	p.mu.Unlock()
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
