package host

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestRequestLogLine checks the one line per request: the fields of a KMS
// host's event 12290 plus the decision, and a reason on refusals.
func TestRequestLogLine(t *testing.T) {
	var buf bytes.Buffer
	clock := testkit.NewClock()
	h, err := New(Config{Groups: []string{"windows-server-2019"}, Clock: clock.Now}, catalog.Default(), nil,
		slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clock: clock, host: h}
	f.activate(f.request(1, testkit.AppWindows, testkit.KMSWin10))
	f.activate(f.request(2, testkit.AppWindows, idWS2025))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 2 requests:\n%s", len(lines), buf.String())
	}
	want := []struct {
		level, msg, result, reason string
		count                      float64
	}{
		{"INFO", "kms request answered", "0x00000000", "counted, below threshold: count 1 of 25 needed, by windows-server-2019", 1},
		{"WARN", "kms request refused", kms.ErrKMSIDMismatch.Error()[:10], "Windows Server 2025", 0},
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		for _, k := range []string{"cmid", "workstation", "peer", "app", "counted_id", "sku", "min_count", "client_time", "license_state", "protocol"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
		w := want[i]
		if m["level"] != w.level || m["msg"] != w.msg || m["result"] != w.result ||
			!strings.Contains(m["reason"].(string), w.reason) || m["count"] != w.count {
			t.Errorf("line %d: %s", i, line)
		}
		if m["cmid"] != testkit.CMID(i+1).String() || m["license_state"] != "OOB grace" || m["min_count"] != float64(25) {
			t.Errorf("line %d carries the wrong request fields: %s", i, line)
		}
	}
}
