package serve

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// gauge returns the value of the unlabelled gauge name on m's registry, and
// whether it was reported.
func gauge(t *testing.T, m *responderMetrics, name string) (float64, bool) {
	t.Helper()
	mfs, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// The store's client counter trails the answers until the ledger applies
// its log; the metric is named for the store, and the pending gauge
// accounts for the difference at every scrape.
func TestMetricsLedgerStoredClientsAndPending(t *testing.T) {
	store, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, catalog.Default(), store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m := newResponderMetrics()
	m.registry.MustRegister(&stateCollector{host: h, store: store})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3
	for range n {
		if err := store.Record(ctx, ledger.Activation{Time: time.Now(), CMID: kmsclient.RandomCMID(), Counted: true, Protocol: 6}); err != nil {
			t.Fatal(err)
		}
	}
	// Before the applier runs (every two seconds) the records are pending;
	// whenever the scrape lands, stored + pending covers every answer.
	stored, ok := gauge(t, m, "kms_responder_ledger_stored_clients")
	pending, okp := gauge(t, m, "kms_responder_ledger_pending_activations")
	if !ok || !okp {
		t.Fatalf("ledger gauges missing (stored %t, pending %t)", ok, okp)
	}
	if stored+pending < n {
		t.Errorf("before the store catches up: stored %v + pending %v < %d answered", stored, pending, n)
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if stored, _ := gauge(t, m, "kms_responder_ledger_stored_clients"); stored != n {
		t.Errorf("after Flush: stored clients %v, want %d", stored, n)
	}
	if pending, _ := gauge(t, m, "kms_responder_ledger_pending_activations"); pending != 0 {
		t.Errorf("after Flush: pending %v, want 0", pending)
	}
	if _, ok := gauge(t, m, "kms_responder_ledger_clients"); ok {
		t.Error("the old name kms_responder_ledger_clients is still reported")
	}
}

// TestObserveRequestCachedChildren: requests counted through the cached
// children land in the series of their own labels, the first and every
// later time, and the duration histogram counts each under its protocol.
func TestObserveRequestCachedChildren(t *testing.T) {
	m := newResponderMetrics()
	for range 3 {
		m.observeRequest("Windows", "windows-server-2025", "6", "activated", time.Millisecond)
	}
	m.observeRequest("Windows", "windows-server-2025", "6", "encode_error", time.Millisecond)
	m.observeRequest("Windows", unknownLabel, "6", "unrecorded", time.Millisecond)
	m.observeRequest(unknownLabel, unknownLabel, unknownLabel, "invalid_data", time.Millisecond)
	mfs, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	observed := map[string]uint64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels string
			for _, lp := range mt.GetLabel() {
				labels += lp.GetName() + "=" + lp.GetValue() + ","
			}
			switch mf.GetName() {
			case "kms_responder_requests_total":
				counts[labels] = mt.GetCounter().GetValue()
			case "kms_responder_request_duration_seconds":
				observed[labels] = mt.GetHistogram().GetSampleCount()
			}
		}
	}
	wantCounts := map[string]float64{
		"application=Windows,group=windows-server-2025,protocol=6,result=activated,":    3,
		"application=Windows,group=windows-server-2025,protocol=6,result=encode_error,": 1,
		"application=Windows,group=unknown,protocol=6,result=unrecorded,":               1,
		"application=unknown,group=unknown,protocol=unknown,result=invalid_data,":       1,
	}
	if len(counts) != len(wantCounts) {
		t.Errorf("requests_total series %v, want %v", counts, wantCounts)
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v", k, counts[k], v)
		}
	}
	if observed["protocol=6,"] != 5 || observed["protocol=unknown,"] != 1 || len(observed) != 2 {
		t.Errorf("request_duration_seconds sample counts %v, want protocol 6: 5, unknown: 1", observed)
	}
}
