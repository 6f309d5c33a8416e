package serve

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsdns/kmsdns/responder/host"
)

var (
	descConflicts = prometheus.NewDesc(metricsNamespace+"_cmid_conflicts",
		"Client machine IDs seen from several workstation names (kind=workstation: an image that was not generalized, which keeps a count at 1) or from one name at several addresses (kind=address: also DHCP or roaming) since serve started.",
		[]string{"kind"}, nil)
	descConflictTracked = prometheus.NewDesc(metricsNamespace+"_cmid_tracked",
		"Client machine IDs the conflict tracker remembers (bounded).", nil, nil)
	descConflictForgotten = prometheus.NewDesc(metricsNamespace+"_cmid_forgotten_total",
		"Client machine IDs the conflict tracker forgot to stay within its bound; a conflict of a forgotten one is seen only if it comes back twice.", nil, nil)
)

// conflictCollector exports the host's machine-ID conflict tracker.
type conflictCollector struct{ host *host.Host }

func (c *conflictCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConflicts
	ch <- descConflictTracked
	ch <- descConflictForgotten
}

func (c *conflictCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.host.ConflictStats()
	ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.GaugeValue, float64(st.Workstations), "workstation")
	ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.GaugeValue, float64(st.Addresses), "address")
	ch <- prometheus.MustNewConstMetric(descConflictTracked, prometheus.GaugeValue, float64(st.Tracked))
	ch <- prometheus.MustNewConstMetric(descConflictForgotten, prometheus.CounterValue, float64(st.Forgotten))
}
