package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestReviewAdminRefusalLogCarriesC1AndBidi: a request refused for its
// Host header (what a DNS-rebinding page in any browser on this machine
// sends, with any path it likes) is logged with its decoded URL path. In
// JSON logs (log_format: json, the documented example) slog escapes C0
// but writes U+009B (the 8-bit CSI) and U+202E (right-to-left override)
// raw, so text the requester chose reaches the log, and the terminal of
// whoever tails it, as a control sequence. Expected safe behaviour: the
// path (and Host) pass through plugin/pkg/printable before they are
// logged, as workstation names and DNS error texts do.
func TestReviewAdminRefusalLogCarriesC1AndBidi(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")
	req, err := http.NewRequest(http.MethodGet, "http://"+p.Admin+"/x%C2%9B31m%E2%80%AEgnp.exe", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebind.attacker.example"
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("status %d, want 421", resp.StatusCode)
	}
	var log string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if log = p.Stderr.String(); strings.Contains(log, "admin request refused") {
			break
		}
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "admin request refused") && strings.ContainsAny(l, "\u009b\u202e") {
			t.Errorf("the refusal log line carries the requester's C1/bidi characters raw: %q", l)
		}
	}
}
