package audit

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestPrometheusTextParses reads the --prometheus output with Prometheus's
// own text parser (what node_exporter's textfile collector uses).
func TestPrometheusTextParses(t *testing.T) {
	var b bytes.Buffer
	rep := testReport()
	rep.Findings[1].Domain = `odd"\name.test.` // a name with escapes still gives valid text
	rep.WritePrometheus(&b)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("not valid Prometheus text: %v\n%s", err, b.String())
	}
	recs := fams["kmsdns_audit_records"]
	if recs == nil || len(recs.Metric) != len(Classes)*3 { // corp.test, other.test and the odd name
		t.Fatalf("kmsdns_audit_records: %v", recs)
	}
	if fams["kmsdns_audit_last_run_timestamp_seconds"] == nil {
		t.Error("no kmsdns_audit_last_run_timestamp_seconds")
	}
}
