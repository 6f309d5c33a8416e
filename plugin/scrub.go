package vlmcs

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
)

// scrubZone is a zone whose `_vlmcs._tcp` answers come from the next plugin and are filtered.
type scrubZone struct {
	zone    string
	srvName string
}

// serveScrub lets the next plugin answer and removes every SRV record whose target is not
// approved (and, with scrub_unhealthy, whose target fails probes), with the glue of removed
// targets and the signatures over the SRV set.
func (v *Vlmcs) serveScrub(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, s *scrubZone) (int, error) {
	nw := nonwriter.New(w)
	rcode, err := plugin.NextOrFailure(v.Name(), v.Next, ctx, nw, r)
	if nw.Msg == nil {
		return rcode, err
	}
	out := v.scrub(nw.Msg, s, time.Now())
	w.WriteMsg(out)
	return dns.RcodeSuccess, err
}

// scrub returns m when nothing is removed, else a filtered copy (m itself is left alone: the
// next plugin may share it).
func (v *Vlmcs) scrub(m *dns.Msg, s *scrubZone, now time.Time) *dns.Msg {
	glue := map[string][]netip.Addr{}
	for _, rr := range m.Extra {
		if ip, ok := rrAddr(rr); ok {
			n := strings.ToLower(rr.Header().Name)
			glue[n] = append(glue[n], ip.Unmap())
		}
	}
	dropped := map[string]bool{}
	kept := map[string]bool{}
	var added []dns.RR // glue from this server's pools for kept targets the answer left bare
	own := map[string][]dns.RR{}
	removedSRV := false
	out := new(dns.Msg)
	*out = *m // shallow: records are shared, never modified; the sections are rebuilt
	out.Answer = make([]dns.RR, 0, len(m.Answer))
	for _, rr := range m.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok || !strings.EqualFold(srv.Hdr.Name, s.srvName) {
			out.Answer = append(out.Answer, rr)
			continue
		}
		target := strings.ToLower(srv.Target)
		addrs := glue[target]
		if len(addrs) == 0 {
			if _, seen := own[target]; !seen {
				own[target] = v.poolHost(target, now)
			}
			for _, rr := range own[target] {
				if ip, ok := rrAddr(rr); ok {
					addrs = append(addrs, ip.Unmap())
				}
			}
		}
		reason := ""
		switch {
		case !v.cfg.approve.Name(target):
			reason = "unapproved"
		case v.cfg.approve.HasNetworks() && len(addrs) == 0 && !v.cfg.approve.HasNames():
			reason = "unapproved" // only network rules, and no address to judge
		case !v.cfg.approve.Host(target, addrs):
			reason = "unapproved"
		case v.scrubHC != nil && !v.scrubHC.observe(memberKey{target, srv.Port}, addrs, now):
			reason = "unhealthy"
		}
		if reason == "" {
			if !kept[target] && len(glue[target]) == 0 {
				added = append(added, own[target]...)
			}
			kept[target] = true
			out.Answer = append(out.Answer, rr)
			continue
		}
		removedSRV = true
		dropped[target] = true
		scrubbedTotal.WithLabelValues(v.server, s.zone, reason).Inc()
		if reason == "unapproved" {
			v.logger.Logf("scrubbed rogue KMS host %s port %d from %s (addresses %v)", target, srv.Port, s.srvName, addrs)
		}
	}
	if !removedSRV && len(added) == 0 {
		return m
	}
	if removedSRV {
		out.Answer = dropSigs(out.Answer, dns.TypeSRV)
	}
	out.Extra = make([]dns.RR, 0, len(m.Extra)+len(added))
	for _, rr := range m.Extra {
		n := strings.ToLower(rr.Header().Name)
		if dropped[n] && !kept[n] {
			scrubbedTotal.WithLabelValues(v.server, s.zone, "glue").Inc()
			continue
		}
		out.Extra = append(out.Extra, rr)
	}
	out.Extra = append(out.Extra, added...)
	return out
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
}

type scrubTarget struct {
	addrs         []netip.Addr
	seen          time.Time
	state         health
	fails, passes int
}

const scrubForget = 10 * time.Minute

// maxScrubTargets bounds the targets tracked for scrub_unhealthy.
const maxScrubTargets = 4096

func newScrubHealth() *scrubHealth { return &scrubHealth{targets: map[memberKey]*scrubTarget{}} }

// observe records a sighting and reports whether the target may stay (not known down).
func (h *scrubHealth) observe(k memberKey, addrs []netip.Addr, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.targets[k]
	if !ok {
		if len(h.targets) >= maxScrubTargets {
			return true // not tracked: kept, as before probing
		}
		t = &scrubTarget{}
		h.targets[k] = t
	}
	t.seen = now
	if len(addrs) > 0 {
		t.addrs = addrs
	}
	return t.state != healthDown
}

// scrubProbeLoop probes the targets seen in scrub zones until ctx ends.
func (v *Vlmcs) scrubProbeLoop(ctx context.Context) {
	t := time.NewTicker(v.cfg.probe.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		h := v.scrubHC
		h.mu.Lock()
		var ts []probeTarget
		for k, st := range h.targets {
			if now.Sub(st.seen) > scrubForget {
				delete(h.targets, k)
				continue
			}
			addrs := st.addrs
			if len(addrs) == 0 {
				continue
			}
			ts = append(ts, probeTarget{key: k, addrs: addrs})
		}
		h.mu.Unlock()
		v.probeAll(ctx, "scrub", ts, func(k memberKey, ok bool) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if st, found := h.targets[k]; found {
				st.step(ok, v.cfg.probe)
			}
		})
	}
}

// step applies one probe result to a scrub target.
func (t *scrubTarget) step(ok bool, pc probeConfig) {
	if ok {
		t.fails, t.passes = 0, t.passes+1
		if t.passes >= pc.passes {
			t.state = healthUp
		}
		return
	}
	t.passes, t.fails = 0, t.fails+1
	if t.fails >= pc.fails {
		t.state = healthDown
	}
}
