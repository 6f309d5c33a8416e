// Package vlmcs is a CoreDNS plugin that publishes only approved, healthy KMS hosts in
// `_vlmcs._tcp` SRV answers. Hosts register by RFC 2136 UPDATE (TSIG-signed, with an RFC 9664
// lease) or are configured statically; active DCE/RPC probes keep the answer to hosts that
// work; in scrub zones the plugin removes unapproved SRV targets from another plugin's answers.
package vlmcs

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// Vlmcs is the plugin handler of one server block.
type Vlmcs struct {
	// Next is the next plugin in the chain.
	Next plugin.Handler

	cfg       *config
	server    string
	plainDNS  bool // the server block serves plain DNS (UDP/TCP), where miekg/dns verifies TSIG
	regKey    string
	pools     []*pool  // one per publish zone
	poolKeys  []string // the registry key of each pool ("" for private pools)
	scrubs    []*scrubZone
	probe     probeFunc
	logger    *rateLog
	scrubHC   *scrubHealth        // nil unless scrub_unhealthy
	limit     *rate.Limiter       // probe connections of the whole block
	replay    *replayGuard        // MACs of accepted signed updates (the registry's: kept across reloads)
	started   time.Time           // signed updates timed before this are refused (the process start)
	addrGuard bool                // approve has networks or bindings: address records of approved names are judged (addrguard.go)
	bound     map[string][]dns.RR // address records of `approve NAME=ADDRESS` names inside the zones, by lower-case name

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// newVlmcs builds the handler. With a non-empty regKey the pools come from the
// reload-safe registry; with an empty one they are private (tests).
func newVlmcs(cfg *config, server, regKey string, probe probeFunc) *Vlmcs {
	if probe == nil {
		probe = defaultProbe
	}
	v := &Vlmcs{cfg: cfg, server: server, plainDNS: strings.HasPrefix(server, "dns://"), regKey: regKey, probe: probe, logger: newRateLog(10, time.Second),
		limit: rate.NewLimiter(rate.Limit(cfg.probe.rate), max(1, cfg.probe.rate/10))}
	if regKey != "" {
		v.replay, v.started = registry.replay, registry.started
	} else {
		v.replay = newReplayGuard() // started stays zero: tests sign with made-up times
	}
	for _, z := range cfg.publish {
		var p *pool
		if regKey != "" {
			// A pool that already exists (a reload) takes this configuration in start, once
			// the whole Corefile has been accepted: a reload that fails must not change it.
			k := regKey + "|" + z
			p = registry.acquire(k, func() *pool { return newPool(z, server, cfg) })
			v.poolKeys = append(v.poolKeys, k)
		} else {
			p = newPool(z, server, cfg)
		}
		v.pools = append(v.pools, p)
	}
	for _, z := range cfg.scrub {
		v.scrubs = append(v.scrubs, &scrubZone{zone: z, srvName: srvLabel + z})
	}
	for _, n := range cfg.approve.BoundNames() {
		for _, z := range cfg.zones {
			if dnsname.InZone(z, n) {
				if v.bound == nil {
					v.bound = map[string][]dns.RR{}
				}
				for _, ip := range cfg.approve.Bound(n) {
					v.bound[n] = append(v.bound[n], addrRR(n, ip, cfg.ttl))
				}
				break
			}
		}
	}
	v.addrGuard = v.addrGuardOn()
	if cfg.scrubUnhealthy && len(cfg.scrub) > 0 && cfg.probe.enabled {
		v.scrubHC = newScrubHealth()
	}
	return v
}

// Name implements plugin.Handler.
func (v *Vlmcs) Name() string { return pluginName }

// ServeDNS implements plugin.Handler. Every UPDATE is handled (and never passed on) in
// update.go; zone transfers that would hold a zone of vlmcs are refused (transfer.go); queries
// for `_vlmcs._tcp.<publish zone>` are answered from the pool; queries for
// `_vlmcs._tcp.<scrub zone>` are passed on and their answer filtered; the rest passes through
// passGuard (passguard.go).
func (v *Vlmcs) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if r.Opcode == dns.OpcodeUpdate {
		return v.serveUpdate(ctx, w, r)
	}
	if r.Opcode != dns.OpcodeQuery {
		if z := v.opcodeZone(r); z != "" {
			return v.refuseOpcode(ctx, w, r, z)
		}
		return v.passOn(ctx, w, r)
	}
	if len(r.Question) != 1 {
		return v.passOn(ctx, w, r)
	}
	q := r.Question[0]
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		if z := v.relatedZone(q.Name); z != "" {
			return v.refuseTransfer(ctx, w, r, z)
		}
	}
	for _, p := range v.pools {
		if strings.EqualFold(q.Name, p.srvName) {
			return v.answer(ctx, w, r, p)
		}
	}
	for _, p := range v.pools {
		if strings.EqualFold(q.Name, p.srvName[len("_vlmcs."):]) {
			return v.answerENT(w, r, p)
		}
	}
	for _, s := range v.scrubs {
		if strings.EqualFold(q.Name, s.srvName) {
			return v.serveScrub(ctx, w, r, s.zone)
		}
	}
	if zone := v.vlmcsBelow(q.Name); zone != "" {
		return v.serveScrub(ctx, w, r, zone)
	}
	// A name the configuration owns (static, bound) is answered by vlmcs whatever the type:
	// the next plugin's records at it (an alias, above all) would lead resolvers elsewhere.
	if addrQ := q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY; addrQ || v.ownsName(q.Name) {
		for _, p := range v.pools {
			// A string test, not a label-wise one: a name that passes it wrongly (an escaped
			// dot before the zone) is no host name, so it is in no pool's hosts.
			if !hasSuffixFold(q.Name, p.zone) && !strings.EqualFold(q.Name, p.zone) {
				continue
			}
			// A rebuild only drops names (lapsed leases); updates rebuild at once. So a name
			// absent from the current answer needs no clock reading.
			n := strings.ToLower(q.Name)
			if p.ans.Load().hosts[n] == nil {
				continue
			}
			if a := p.current(time.Now()); a.hosts[n] != nil {
				return v.serveHost(ctx, w, r, a, n)
			}
		}
	}
	if v.bound != nil {
		if rrs := v.bound[strings.ToLower(q.Name)]; rrs != nil {
			return v.answerBound(w, r, rrs)
		}
	}
	for _, p := range v.pools {
		if hasSuffixFold(q.Name, p.srvName) && dnsname.Below(p.srvName, q.Name) {
			return v.answerBelow(w, r, p)
		}
	}
	return v.passOn(ctx, w, r)
}

// ownsName reports whether the configuration owns name: a `static` target or an `approve
// NAME=ADDRESS` name inside the zones.
func (v *Vlmcs) ownsName(name string) bool {
	n := strings.ToLower(name)
	return v.bound[n] != nil || v.cfg.isStatic(n)
}

// passOn hands a query to the next plugin, guarding its answer (passguard.go).
func (v *Vlmcs) passOn(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(v.Name(), v.Next, ctx, &passGuard{ResponseWriter: w, v: v, ctx: ctx}, r)
}

// vlmcsBelow returns the zone when name is `_vlmcs._tcp.<name>` for a name strictly below a
// publish or scrub zone (a client's search domain inside the zone): the next plugin answers
// it and the answer is filtered as in a scrub zone. It returns "" otherwise.
func (v *Vlmcs) vlmcsBelow(name string) string {
	if len(name) <= len(srvLabel) || !strings.EqualFold(name[:len(srvLabel)], srvLabel) {
		return ""
	}
	rest, zone := name[len(srvLabel):], ""
	for _, z := range v.cfg.zones { // the closest enclosing zone labels the metrics
		if len(z) > len(zone) && dnsname.Below(z, rest) {
			zone = z
		}
	}
	return zone
}

// serverOf returns the metrics "server" label of a request: the listener it came in on, as
// CoreDNS's metrics.WithServer reports it; the block's own label (serverLabel) for a context
// that carries no server (a handler called outside a CoreDNS server, as in unit tests).
func (v *Vlmcs) serverOf(ctx context.Context) string {
	if s := metrics.WithServer(ctx); s != "" {
		return s
	}
	return v.server
}

// hasSuffixFold reports whether name ends with "." + suffix, ignoring ASCII case: a cheap
// test before the label-wise one.
func hasSuffixFold(name, suffix string) bool {
	return len(name) > len(suffix) && name[len(name)-len(suffix)-1] == '.' && strings.EqualFold(name[len(name)-len(suffix):], suffix)
}

// answerBelow answers a name below `_vlmcs._tcp.<zone>`, which vlmcs owns: NXDOMAIN with the
// synthesized SOA (NODATA when a member's target name lies below it).
func (v *Vlmcs) answerBelow(w dns.ResponseWriter, r *dns.Msg, p *pool) (int, error) {
	a := p.current(time.Now())
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeNameError)
	m.Authoritative = true
	for n := range a.hosts {
		if dnsname.Below(r.Question[0].Name, n) {
			m.Rcode = dns.RcodeSuccess
			break
		}
	}
	m.Ns = a.soa
	w.WriteMsg(m)
	return m.Rcode, nil
}

// answerENT answers `_tcp.<zone>`, the empty non-terminal above a publish zone's
// `_vlmcs._tcp` name: NODATA with aa and the synthesized SOA, whatever the next plugin holds.
// An NXDOMAIN there (a next plugin without the pool's records) would tell a resolver that
// minimises question names that `_vlmcs._tcp.<zone>` does not exist either (RFC 8020).
func (v *Vlmcs) answerENT(w dns.ResponseWriter, r *dns.Msg, p *pool) (int, error) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Ns = p.current(time.Now()).soa
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// answer writes the pool's answer: SRV records in a fresh random order plus glue, or NODATA
// with the synthesized SOA.
func (v *Vlmcs) answer(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, p *pool) (int, error) {
	a := p.current(time.Now())
	if writePacked(w, r, a, &p.bufs) {
		a.countServed(v.serverOf(ctx))
		return dns.RcodeSuccess, nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	qt := r.Question[0].Qtype
	if len(a.srv) > 0 && (qt == dns.TypeSRV || qt == dns.TypeANY) {
		m.Answer = make([]dns.RR, len(a.srv))
		copy(m.Answer, a.srv)
		for i := len(m.Answer) - 1; i > 0; i-- { // Fisher-Yates, without a closure to allocate
			j := rand.IntN(i + 1)
			m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i]
		}
		m.Extra = a.extra
		a.countServed(v.serverOf(ctx))
	} else {
		m.Ns = a.soa
		a.countEmpty(v.serverOf(ctx))
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// answerBound answers every question for a name an `approve NAME=ADDRESS` rule binds: its
// bound addresses, whatever the next plugin holds (the configuration owns the name). A type it
// has no address of (CNAME, TXT...) gets NODATA, with the synthesized SOA in a publish zone.
func (v *Vlmcs) answerBound(w dns.ResponseWriter, r *dns.Msg, rrs []dns.RR) (int, error) {
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	for _, rr := range rrs {
		if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		for _, p := range v.pools {
			if dnsname.InZone(p.zone, q.Name) {
				m.Ns = p.current(time.Now()).soa
				break
			}
		}
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// answerHost writes the address records the pool holds for a member's target name, or
// NODATA with the synthesized SOA when it holds none of the asked type.
func (v *Vlmcs) answerHost(w dns.ResponseWriter, r *dns.Msg, a *answer) (int, error) {
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	for _, rr := range a.hosts[strings.ToLower(q.Name)] {
		if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = a.soa
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// rekey moves the pools to the registry keys tags gives (publish zone → key suffix, see
// poolTags), known only once the whole Corefile is read: a pool under the new key is
// acquired (kept across a reload that still holds it), the one under the old key released.
// Called from OnStartup, before start.
func (v *Vlmcs) rekey(tags map[string]string) {
	if v.regKey == "" {
		return
	}
	for i, p := range v.pools {
		k := v.regKey + "|" + p.zone + tags[p.zone]
		if k == v.poolKeys[i] {
			continue
		}
		z := p.zone
		v.pools[i] = registry.acquire(k, func() *pool { return newPool(z, v.server, v.cfg) })
		registry.release(v.poolKeys[i])
		v.poolKeys[i] = k
	}
}

// start applies the configuration to the pools and launches the probers; called from
// OnStartup, i.e. only when the whole Corefile was accepted.
func (v *Vlmcs) start() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cancel != nil {
		return
	}
	now := time.Now()
	for _, p := range v.pools {
		p.configure(v.cfg, now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel, v.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	run := &probeRun{ctx: ctx, wg: &wg}
	for _, p := range v.pools {
		wg.Go(func() { v.poolLoop(run, p) })
	}
	if v.scrubHC != nil {
		wg.Go(func() { v.scrubLoop(run) })
	}
	go func() {
		wg.Wait()
		close(v.done)
	}()
}

// stop ends the probe schedules and waits for them; called from OnShutdown (also on reload,
// where the new instance's schedules take over the same pools).
func (v *Vlmcs) stop() {
	v.mu.Lock()
	cancel, done := v.cancel, v.done
	v.cancel = nil
	v.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if v.regKey != "" {
		for _, k := range v.poolKeys {
			registry.release(k)
		}
		v.regKey, v.poolKeys = "", nil
	}
}
