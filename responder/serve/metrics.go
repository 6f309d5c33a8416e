package serve

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

const metricsNamespace = "kms_responder"

// responderMetrics holds the responder's collectors on its own registry.
type responderMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	conns    *prometheus.CounterVec

	// Children of requests and duration already used, so a request costs
	// one map lookup instead of the vectors' label hashing and checks. The
	// label values come from the catalog, the configuration and fixed
	// result names, so these hold as many entries as the vectors do.
	childMu       sync.RWMutex
	requestChild  map[requestLabels]prometheus.Counter
	durationChild map[string]prometheus.Observer
}

// requestLabels are the label values of one requests_total series.
type requestLabels struct{ app, group, protocol, result string }

// newResponderMetrics returns the request and connection counters on a new
// registry; Run adds the stateCollector once what it reads exists.
func newResponderMetrics() *responderMetrics {
	m := &responderMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total",
			Help: "KMS activation requests by application, host key group that served, protocol version and result.",
		}, []string{"application", "group", "protocol", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds",
			Help:    "Time to decide and encode one KMS request, including the durable ledger write.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"protocol"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "connection_events_total",
			Help: "RPC connection events: conn_opened, conn_closed, conn_refused, conn_evicted, conn_refused_per_address, conn_evicted_per_address, pdu_error, timeout, fault.",
		}, []string{"event"}),
	}
	m.requestChild = map[requestLabels]prometheus.Counter{}
	m.durationChild = map[string]prometheus.Observer{}
	m.registry.MustRegister(m.requests, m.duration, m.conns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *responderMetrics) observeRequest(app, group, protocol, result string, d time.Duration) {
	key := requestLabels{app, group, protocol, result}
	m.childMu.RLock()
	req, reqOK := m.requestChild[key]
	dur, durOK := m.durationChild[protocol]
	m.childMu.RUnlock()
	if !reqOK || !durOK {
		req = m.requests.WithLabelValues(app, group, protocol, result)
		dur = m.duration.WithLabelValues(protocol)
		m.childMu.Lock()
		m.requestChild[key] = req
		m.durationChild[protocol] = dur
		m.childMu.Unlock()
	}
	req.Inc()
	dur.Observe(d.Seconds())
}

func (m *responderMetrics) observeConn(e dcerpc.Event) {
	if e == dcerpc.EventRequest {
		return // counted per result in requests_total
	}
	m.conns.WithLabelValues(e.String()).Inc()
}

// stateCollector reads the host's state at scrape time.
type stateCollector struct {
	host  *host.Host
	store *ledger.Ledger // nil with the ledger disabled
	// limits are the connection limits in force, exported so alerts can
	// compare open connections and evictions against them.
	limits    dcerpc.Limits
	openConns func() int
	// registration is nil when serve does not register in DNS.
	registration *registration
}

var (
	descCount = prometheus.NewDesc(metricsNamespace+"_current_count",
		"Current count per application: distinct clients seen in the last 30 days, as returned to clients.", []string{"application"}, nil)
	descCap = prometheus.NewDesc(metricsNamespace+"_count_cap",
		"Most the count can reach now: twice the highest threshold seen.", []string{"application"}, nil)
	descThreshold = prometheus.NewDesc(metricsNamespace+"_count_threshold",
		"Counts that clients of the products the configured groups activate need, one series per distinct threshold (the value is the threshold).", []string{"application", "threshold"}, nil)
	descOpen = prometheus.NewDesc(metricsNamespace+"_open_connections",
		"Open client connections.", nil, nil)
	// The store's record counter trails the answers: the ledger applies its
	// log to the store in the background. The metric is named for that
	// store; ledger_pending_activations says how far it trails.
	descLedgerClients = prometheus.NewDesc(metricsNamespace+"_ledger_stored_clients",
		"Audit records of clients ever answered in the ledger's store; trails the answers by ledger_pending_activations until the ledger applies its log (within seconds).", nil, nil)
	descLedgerPending = prometheus.NewDesc(metricsNamespace+"_ledger_pending_activations",
		"Activations answered and durable in the ledger's log but not yet applied to its store.", nil, nil)
	descLedgerRefusals = prometheus.NewDesc(metricsNamespace+"_ledger_refusal_records",
		"Records of clients only ever refused, kept within the refusal budget (--max-refusal-records).", nil, nil)
	descLedgerRefusalsDropped = prometheus.NewDesc(metricsNamespace+"_ledger_refusal_records_dropped_total",
		"Refusal records dropped, oldest first, to stay within the refusal budget since start.", nil, nil)
	descLedgerBytes = prometheus.NewDesc(metricsNamespace+"_ledger_size_bytes",
		"Size of the ledger file.", nil, nil)
	descLedgerHealthy = prometheus.NewDesc(metricsNamespace+"_ledger_healthy",
		"1 when the ledger's last commit succeeded; 0 means activations are not being answered.", nil, nil)
	descSinceLast = prometheus.NewDesc(metricsNamespace+"_seconds_since_last_request",
		"Seconds since the last activation request (absent before the first).", nil, nil)
	descRegistered = prometheus.NewDesc(metricsNamespace+"_dns_registered",
		"1 while the DNS registration in a zone at a server is accepted and its lease unexpired.", []string{"server", "zone"}, nil)
	descRefusals = prometheus.NewDesc(metricsNamespace+"_dns_registration_refusals_total",
		"Registrations the DNS server refused, by reason: the reason code of its Extended DNS Error (vlmcs sends one: unapproved-target, tsig-badtime, ...), else the response code.", []string{"server", "zone", "reason"}, nil)
	descRepairs = prometheus.NewDesc(metricsNamespace+"_dns_registration_repairs_total",
		"Registrations sent at once because a check found the DNS server no longer listing this host (e.g. after the server restarted).", []string{"server", "zone"}, nil)
)

var (
	descMaxConns = prometheus.NewDesc(metricsNamespace+"_max_connections",
		"Cap on concurrent client connections; at the cap the oldest waiting (idle or stalled) connection is evicted.", nil, nil)
	descMaxPerAddr = prometheus.NewDesc(metricsNamespace+"_max_connections_per_address",
		"Cap on concurrent connections from one client address; at the cap that address's oldest waiting connection is evicted.", nil, nil)
	descTimeout = prometheus.NewDesc(metricsNamespace+"_connection_timeout_seconds",
		"Connection deadlines in force: first_pdu, idle, body, io.", []string{"timeout"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMaxConns
	ch <- descMaxPerAddr
	ch <- descTimeout
	for _, d := range []*prometheus.Desc{descCount, descCap, descThreshold, descOpen, descLedgerClients, descLedgerPending, descLedgerRefusals, descLedgerRefusalsDropped, descLedgerBytes, descLedgerHealthy, descSinceLast, descRegistered, descRepairs, descRefusals} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if l := c.limits; l.MaxConns > 0 {
		ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(l.MaxConns))
		ch <- prometheus.MustNewConstMetric(descMaxPerAddr, prometheus.GaugeValue, float64(l.MaxConnsPerAddr))
		ch <- prometheus.MustNewConstMetric(descTimeout, prometheus.GaugeValue, l.FirstPDUTimeout.Seconds(), "first_pdu")
		ch <- prometheus.MustNewConstMetric(descTimeout, prometheus.GaugeValue, l.IdleTimeout.Seconds(), "idle")
		ch <- prometheus.MustNewConstMetric(descTimeout, prometheus.GaugeValue, l.BodyTimeout.Seconds(), "body")
		ch <- prometheus.MustNewConstMetric(descTimeout, prometheus.GaugeValue, l.IOTimeout.Seconds(), "io")
	}
	st := c.host.Status()
	for _, a := range st.Apps {
		ch <- prometheus.MustNewConstMetric(descCount, prometheus.GaugeValue, float64(a.Count), a.Name)
		ch <- prometheus.MustNewConstMetric(descCap, prometheus.GaugeValue, float64(a.Cap), a.Name)
		for _, t := range a.Thresholds {
			ch <- prometheus.MustNewConstMetric(descThreshold, prometheus.GaugeValue, float64(t), a.Name, strconv.Itoa(t))
		}
	}
	if c.openConns != nil {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(c.openConns()))
	}
	if c.store != nil {
		ls := c.store.Stats()
		ch <- prometheus.MustNewConstMetric(descLedgerClients, prometheus.GaugeValue, float64(ls.Clients))
		ch <- prometheus.MustNewConstMetric(descLedgerPending, prometheus.GaugeValue, float64(ls.Pending))
		ch <- prometheus.MustNewConstMetric(descLedgerRefusals, prometheus.GaugeValue, float64(ls.Refusals))
		ch <- prometheus.MustNewConstMetric(descLedgerRefusalsDropped, prometheus.CounterValue, float64(ls.RefusalsDropped))
		ch <- prometheus.MustNewConstMetric(descLedgerBytes, prometheus.GaugeValue, float64(st.Ledger.FileSize))
		ch <- prometheus.MustNewConstMetric(descLedgerHealthy, prometheus.GaugeValue, boolValue(c.store.Healthy()))
	}
	if !st.LastRequest.IsZero() {
		ch <- prometheus.MustNewConstMetric(descSinceLast, prometheus.GaugeValue, time.Since(st.LastRequest).Seconds())
	}
	if c.registration != nil {
		for _, s := range c.registration.status() {
			ch <- prometheus.MustNewConstMetric(descRegistered, prometheus.GaugeValue, boolValue(s.Registered), s.Server, s.Zone)
			ch <- prometheus.MustNewConstMetric(descRepairs, prometheus.CounterValue, float64(s.Repairs), s.Server, s.Zone)
			for reason, n := range s.Refusals {
				ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(n), s.Server, s.Zone, reason)
			}
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
