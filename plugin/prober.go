package vlmcs

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
)

// The prober gives every pool member (and every scrub-zone target) its own probe schedule:
// one goroutine each, so a member whose probes hang until the timeout delays no other
// member. A pool loop per publish zone starts the schedules of new members, sweeps lapsed
// leases and tells readiness; each schedule ends when its member leaves the pool or the
// instance stops (a reload hands the members to the new instance's loops).

// resolveEvery is how often a member without registered or configured addresses is looked up
// again through the next plugin.
const resolveEvery = 10 * time.Second

// probeRun is one started instance's probing; members scheduled by it carry it.
type probeRun struct {
	ctx context.Context
	wg  *sync.WaitGroup
}

// poolLoop keeps one schedule running per member of p until ctx ends.
func (v *Vlmcs) poolLoop(run *probeRun, p *pool) {
	iv := v.cfg.probe.interval
	if !v.cfg.probe.enabled {
		iv = time.Second // lease sweeps and address resolution only
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		for _, m := range p.unscheduled(run, time.Now()) {
			run.wg.Go(func() { v.memberLoop(run.ctx, p, m) })
		}
		select {
		case <-run.ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// memberLoop resolves and probes one member on its own schedule until it leaves the pool
// or ctx ends. Only a member that is approved, on an allowed port, with addresses to probe,
// is probed, and only at its approved addresses.
func (v *Vlmcs) memberLoop(ctx context.Context, p *pool, m *member) {
	for {
		job, ok := p.probeJob(m, time.Now())
		if !ok {
			return
		}
		if job.resolve {
			p.setResolved(m, v.resolve(ctx, m.target), time.Now())
			if job, ok = p.probeJob(m, time.Now()); !ok {
				return
			}
		}
		wait := time.Second
		if v.cfg.probe.enabled {
			wait = v.cfg.probe.interval
			if len(job.addrs) > 0 {
				res, probed := v.probeAddrs(ctx, p.zone, job.addrs, m.port, job.yield)
				if ctx.Err() != nil {
					return
				}
				if probed {
					wait = p.report(m, res, time.Now())
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// scrubLoop keeps one schedule running per target seen in scrub-zone answers until ctx
// ends, and forgets targets unseen for scrubForget.
func (v *Vlmcs) scrubLoop(run *probeRun) {
	t := time.NewTicker(v.cfg.probe.interval)
	defer t.Stop()
	for {
		for k, st := range v.scrubHC.unscheduled(run, time.Now()) {
			run.wg.Go(func() { v.scrubTargetLoop(run.ctx, k, st) })
		}
		select {
		case <-run.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrubTargetLoop probes one scrub-zone target until it is forgotten or ctx ends.
func (v *Vlmcs) scrubTargetLoop(ctx context.Context, k memberKey, st *scrubTarget) {
	h := v.scrubHC
	for {
		addrs, yield, ok := h.job(k, st)
		if !ok {
			return
		}
		wait := v.cfg.probe.interval
		if v.cfg.portAllowed(k.port) && len(addrs) > 0 {
			res, probed := v.probeAddrs(ctx, st.zone, addrs, k.port, yield)
			if ctx.Err() != nil {
				return
			}
			if probed {
				wait = h.report(st, res, v.cfg.probe)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// jitter returns a random number in [0, 1) for spreading schedules.
func jitter() float64 { return rand.Float64() }

// probeFunc checks that a KMS host accepts a DCE/RPC bind to the KMS interface at addr
// ("host:port") within timeout. A nil error means healthy.
type probeFunc func(ctx context.Context, addr string, timeout time.Duration) error

// defaultProbe binds to the KMS interface with the project's DCE/RPC client (the same
// client works against Windows KMS hosts): healthy means a bind was accepted.
func defaultProbe(ctx context.Context, addr string, timeout time.Duration) error {
	return dcerpc.Probe(ctx, addr, timeout)
}

// probeAddrs reports whether any of addrs answers the probe on port, and whether it probed
// at all. Every connection takes a token of the server block's probe_rate: a target that is
// up waits for one; any other (pending or down: not in the answer) only takes a free one and
// is skipped otherwise, so that a crowd of new or dead registrations cannot delay the probes
// that keep the removal bound of the members being served.
func (v *Vlmcs) probeAddrs(ctx context.Context, zone string, addrs []netip.Addr, port uint16, yield bool) (ok, probed bool) {
	for _, ip := range addrs {
		if yield {
			if !v.limit.Allow() {
				probesTotal.WithLabelValues(v.server, zone, "skipped").Inc()
				return false, probed
			}
		} else if err := v.limit.Wait(ctx); err != nil {
			return false, probed
		}
		probed = true
		start := time.Now()
		err := v.probe(ctx, net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), v.cfg.probe.timeout)
		if ctx.Err() != nil {
			return false, probed
		}
		probeDuration.WithLabelValues(v.server, zone).Observe(time.Since(start).Seconds())
		if err == nil {
			probesTotal.WithLabelValues(v.server, zone, "success").Inc()
			return true, probed
		}
		probesTotal.WithLabelValues(v.server, zone, "failure").Inc()
	}
	return false, probed
}

// resolve looks a target's addresses up through the next plugin (A and AAAA).
func (v *Vlmcs) resolve(ctx context.Context, name string) []netip.Addr {
	if v.Next == nil {
		return nil
	}
	var out []netip.Addr
	for _, qt := range []uint16{1, 28} { // A, AAAA
		// Unapproved addresses are kept: they make the member unapproved rather than glue-less.
		out = append(out, lookupNext(ctx, v.Next, name, qt)...)
	}
	return out
}
