package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestRefusalReasonReachesTheResponder: a registration vlmcs refuses carries the
// reason in an Extended DNS Error; the responder logs it, shows it in status and counts it by
// reason in its metrics. A registration configured without a key warns at start.
func TestRefusalReasonReachesTheResponder(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 1m", 1))
	kms9 := startKMSResponder(t, c, "kms9", "1m", "windows-server-2025") // not approved
	var regs []struct {
		Refusals  map[string]uint64 `json:"refusals_by_reason"`
		LastError string            `json:"last_error"`
	}
	harness.Eventually(t, 15*time.Second, "status to count the refusal by reason", func() bool {
		resp, err := http.Get("http://" + kms9.Admin + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st struct {
			Registration json.RawMessage `json:"dns_registration"`
		}
		if json.Unmarshal(b, &st) != nil || json.Unmarshal(st.Registration, &regs) != nil || len(regs) == 0 {
			return false
		}
		return regs[0].Refusals["unapproved-target"] > 0
	})
	if !strings.Contains(regs[0].LastError, "answered REFUSED: unapproved-target: ") {
		t.Errorf("status last_error %q does not give vlmcs's reason", regs[0].LastError)
	}
	if out := kms9.Output(); !strings.Contains(out, "unapproved-target: ") {
		t.Errorf("the responder's log lacks the reason:\n%s", out)
	}
	resp, err := http.Get("http://" + kms9.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `kms_responder_dns_registration_refusals_total{reason="unapproved-target"`) {
		t.Errorf("metrics lack the refusal by reason:\n%s", grepLines(string(b), "registration"))
	}

	// No key: a warning at start, before anything is sent.
	r := &kmsResponder{Name: "kms1", Port: harness.FreePort(t), Admin: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), dir: t.TempDir()}
	r.args = []string{"serve", "--listen", r.Addr(), "--data", r.dir + "/data", "--metrics", r.Admin, "--drain", "0s",
		"--group", "windows-server-2025", "--dns-server", c.Addr(), "--zone", "example.test", "--target", "kms1", "--port", strconv.Itoa(r.Port)}
	t.Setenv("KMS_RESPONDER_TSIG_KEY", "")
	r.start(t)
	harness.Eventually(t, 5*time.Second, "the no-key warning", func() bool {
		return strings.Contains(r.Output(), "configured without a TSIG key")
	})
}
