package vlmcs

import (
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
)

// Rogue targets are exported by name so that an alert can say which host to fix. Their names
// come from the DNS behind a scrub zone, where anyone allowed to register picks them, so the
// set is bounded: at most maxRogueTargets names, each forgotten rogueForget after it was last
// scrubbed. Names beyond the bound are still counted (scrubbed_records_total) and logged.
const (
	maxRogueTargets = 256
	rogueForget     = time.Hour
)

// rogueKey is one rogue target of a scrub zone of a server.
type rogueKey struct{ server, zone, target string }

// rogueSet is the collector of coredns_vlmcs_rogue_target_last_seen_timestamp_seconds.
type rogueSet struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	seen map[rogueKey]time.Time
}

// rogueTargets is registered with CoreDNS's registry (the default one, as promauto uses).
var rogueTargets = func() *rogueSet {
	r := newRogueSet()
	prometheus.MustRegister(r)
	return r
}()

func newRogueSet() *rogueSet {
	return &rogueSet{
		desc: prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, pluginName, "rogue_target_last_seen_timestamp_seconds"),
			"Unapproved SRV targets scrubbed from scrub-zone answers in the last hour (at most 256), by name: when each was last seen.",
			[]string{"server", "zone", "target"}, nil),
		seen: map[rogueKey]time.Time{},
	}
}

// observe records that target was scrubbed from zone's answer at now.
func (r *rogueSet) observe(server, zone, target string, now time.Time) {
	k := rogueKey{server, zone, target}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[k]; !ok && len(r.seen) >= maxRogueTargets {
		r.pruneLocked(now)
		if len(r.seen) >= maxRogueTargets {
			return
		}
	}
	r.seen[k] = now
}

// pruneLocked forgets targets not seen for rogueForget.
func (r *rogueSet) pruneLocked(now time.Time) {
	for k, t := range r.seen {
		if now.Sub(t) > rogueForget {
			delete(r.seen, k)
		}
	}
}

// Describe implements prometheus.Collector.
func (r *rogueSet) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

// Collect implements prometheus.Collector.
func (r *rogueSet) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(time.Now())
	for k, t := range r.seen {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, float64(t.UnixNano())/1e9, k.server, k.zone, k.target)
	}
}
