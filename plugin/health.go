package vlmcs

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/responder/rpc"
)

// probeFunc checks that a KMS host accepts a DCE/RPC bind to the KMS interface at addr
// ("host:port") within timeout. A nil error means healthy.
type probeFunc func(ctx context.Context, addr string, timeout time.Duration) error

// maxParallelProbes bounds the probes in flight per round.
const maxParallelProbes = 32

// defaultProbe binds to the KMS interface with the project's DCE/RPC client (the same
// client works against Windows KMS hosts): healthy means a bind was accepted.
func defaultProbe(ctx context.Context, addr string, timeout time.Duration) error {
	return rpc.Probe(ctx, addr, timeout)
}

// probeLoop runs rounds for one pool every interval, and at once when the pool is woken by a
// registration, until ctx ends.
func (v *Vlmcs) probeLoop(ctx context.Context, p *pool) {
	iv := v.cfg.probe.interval
	if !v.cfg.probe.enabled {
		iv = time.Second // lease sweeps and address resolution only
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		v.round(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// round resolves members without addresses, probes every member once and waits for all.
func (v *Vlmcs) round(ctx context.Context, p *pool) {
	ts, unresolved := p.targets(time.Now())
	for _, k := range unresolved {
		if ctx.Err() != nil {
			return
		}
		if addrs := v.resolve(ctx, k.target); len(addrs) > 0 {
			p.setResolved(k, addrs)
			for i := range ts {
				if ts[i].key == k {
					ts[i].addrs = addrs
				}
			}
		}
	}
	if v.cfg.probe.enabled {
		v.probeAll(ctx, p.zone, ts, func(k memberKey, ok bool) { p.report(k, ok, time.Now()) })
	}
	if ctx.Err() == nil {
		p.roundDone()
	}
}

// probeAll probes targets in parallel (bounded) and reports each result.
func (v *Vlmcs) probeAll(ctx context.Context, zone string, ts []probeTarget, report func(memberKey, bool)) {
	sem := make(chan struct{}, maxParallelProbes)
	var wg sync.WaitGroup
	for _, t := range ts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ok := v.probeTarget(ctx, zone, t)
			if ctx.Err() == nil {
				report(t.key, ok)
			}
		})
	}
	wg.Wait()
}

// probeTarget reports whether any address of t answers the probe.
func (v *Vlmcs) probeTarget(ctx context.Context, zone string, t probeTarget) bool {
	for _, ip := range t.addrs {
		start := time.Now()
		err := v.probe(ctx, net.JoinHostPort(ip.String(), strconv.Itoa(int(t.key.port))), v.cfg.probe.timeout)
		if ctx.Err() != nil {
			return false
		}
		probeDuration.WithLabelValues(v.server, zone).Observe(time.Since(start).Seconds())
		if err == nil {
			probesTotal.WithLabelValues(v.server, zone, "success").Inc()
			return true
		}
		probesTotal.WithLabelValues(v.server, zone, "failure").Inc()
	}
	return false
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
