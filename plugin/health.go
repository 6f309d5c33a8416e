package vlmcs

import "time"

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
