package vlmcs

import (
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics, labelled by server and zone (both bounded by the Corefile) and a fixed set of
// states, results and reasons, each named in its Help string. For requests, server is the
// listener the request came in on (metrics.WithServer); for what happens outside requests
// (gauges, leases, health, probes) it is the block's first listen address (serverLabel).
// README.md lists every value.
var (
	membersGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "members",
		Help:      "Registered pool members by state (up, down, pending, unapproved, unprobeable: approved but without an address to probe or on a port ports does not allow; unapproved and unprobeable members are never served).",
	}, []string{"server", "zone", "state"})

	updatesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "updates_total",
		Help:      "DNS UPDATE messages by result (rcode name) and reason (ok, format, notzone, tsig-badkey, tsig-badsig, tsig-badtime, replay, replay-full, before-start, unsigned, transport, outside, delete-all, unapproved-target, unapproved-address, unapproved-port, foreign-address, foreign-target, key-not-granted, signed-owner, static, bad-name, member-limit, pool-full, prerequisite).",
	}, []string{"server", "zone", "result", "reason"})

	healthChanges = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "health_changes_total",
		Help:      "Members changing health, by the state they changed to (up, down).",
	}, []string{"server", "zone", "state"})

	leaseExpiries = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "lease_expiries_total",
		Help:      "Members removed because their lease lapsed.",
	}, []string{"server", "zone"})

	answersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "answers_total",
		Help:      "Publish-zone answers by kind (members, last_known, empty).",
	}, []string{"server", "zone", "kind"})

	scrubbedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "scrubbed_records_total",
		Help:      "Records removed from answers by reason (unapproved, unresolved, unhealthy, glue, alias, alias-loop, dname, passthrough, address: an address of a KMS target name approve does not admit, delegation: an NS record delegating a name below a zone, apex-ns: the next plugin's NS record at a zone's apex).",
	}, []string{"server", "zone", "reason"})

	refusedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "refused_queries_total",
		Help:      "Queries refused by reason (transfer: AXFR or IXFR of a zone of vlmcs or of one holding it; opcode: an opcode other than QUERY and UPDATE, such as NOTIFY, for a zone of vlmcs).",
	}, []string{"server", "zone", "reason"})

	probesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "probes_total",
		Help:      "Health probes by result (success, failure, skipped: a pending or down target found no free probe_rate slot).",
	}, []string{"server", "zone", "result"})

	probeDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "probe_duration_seconds",
		Buckets:   plugin.TimeBuckets,
		Help:      "Duration of health probes.",
	}, []string{"server", "zone"})
)
