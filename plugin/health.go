package vlmcs

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
)

// health is the probe state of a pool member or a scrub-zone target.
type health uint8

const (
	healthPending health = iota // not yet probed up or down
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

// maxDownBackoff bounds how far the probes of a target that is down spread out: at most
// this many probe intervals apart (4 s with the default 500 ms interval).
const maxDownBackoff = 8

// healthCheck is the up/down hysteresis of one probed target, a pool member or a scrub-zone
// target: the one place that turns probe results into a state and a probe schedule.
type healthCheck struct {
	state         health
	fails, passes int // consecutive failed and passed probes
}

// observe applies one probe result and reports whether the state changed: down after FAILS
// failures in a row, up after PASSES successes in a row.
func (h *healthCheck) observe(ok bool, pc probeConfig) bool {
	old := h.state
	if ok {
		h.fails, h.passes = 0, h.passes+1
		if h.passes >= pc.passes {
			h.state = healthUp
		}
	} else {
		h.passes, h.fails = 0, h.fails+1
		if h.fails >= pc.fails {
			h.state = healthDown
		}
	}
	return h.state != old
}

// next returns the wait before the next probe. Up and pending targets are probed every
// interval (the removal bound FAILS × INTERVAL + TIMEOUT rests on it); a target that is down
// waits twice as long per further failure, up to maxDownBackoff intervals, shortened by up
// to a quarter by r in [0, 1) so that many dead targets do not probe in step. A target that
// is down is out of the answer already: its slower schedule delays only its return.
func (h *healthCheck) next(pc probeConfig, r float64) time.Duration {
	if h.state != healthDown {
		return pc.interval
	}
	mult := 1
	for i := pc.fails; i < h.fails && mult < maxDownBackoff; i++ {
		mult *= 2
	}
	d := pc.interval * time.Duration(mult)
	return d - time.Duration(r*float64(d)/4)
}

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
