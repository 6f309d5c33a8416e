package vlmcs

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
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
			res, probed := v.probeAddrs(ctx, "scrub", addrs, k.port, yield)
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
