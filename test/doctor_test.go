package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// doctorJSON is the part of doctor --json the tests read.
type doctorJSON struct {
	Schema     string  `json:"schema"`
	Activated  bool    `json:"activated"`
	FailedStep string  `json:"failed_step"`
	Code       string  `json:"code"`
	Cause      string  `json:"cause"`
	Fix        string  `json:"fix"`
	Count      int     `json:"count"`
	Required   int     `json:"required"`
	Skew       float64 `json:"skew_seconds"`
	Steps      []struct {
		Step   string `json:"step"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"steps"`
}

// TestDoctorNamesEachFailingStep reproduces each failure a client meets on
// loopback and checks that doctor stops at that step with its cause.
func TestDoctorNamesEachFailingStep(t *testing.T) {
	l := startAuditLab(t)
	dir := t.TempDir()
	noSuffix := harness.WriteFile(t, dir, "resolv.conf", "# a workgroup client\nnameserver 127.0.0.1\noptions ndots:1\n")
	server := "Windows Server 2022 Standard"
	cases := []struct {
		name      string
		args      []string
		exit      int
		step      string
		code      string
		cause     string
		activated bool
	}{
		{"no DNS suffix", []string{"--resolv-conf", noSuffix, "--product", server}, 1, "suffix", "0x8007007B", "no DNS suffix", false},
		{"NXDOMAIN", []string{"--domain", "nx.corp.test", "--product", server}, 1, "srv", "0x8007232B", "NXDOMAIN", false},
		{"NODATA", []string{"--domain", "nodata.corp.test", "--product", server}, 1, "srv", "0x8007251D", "NODATA", false},
		{"dead host", []string{"--domain", "dead.corp.test", "--product", server}, 1, "tcp", "0x800706BA", "connection refused", false},
		{"port open, not RPC", []string{"--domain", "notkms.corp.test", "--product", server, "--timeout", "1s"}, 1, "rpc-bind", "0x800706BA", "not KMS hosts", false},
		{"wrong host key group", []string{"--domain", "ws.corp.test", "--product", server}, 1, "kms-request", "0xC004F042", "host key group does not cover", false},
		{"below threshold", []string{"--domain", "kms.corp.test", "--product", "Windows 11 Pro"}, 2, "activated", "0xC004F038", "needs 25", false},
		{"clock skew", []string{"--domain", "kms.corp.test", "--product", server, "--clock-offset", "-6h"}, 1, "kms-request", "0xC004F06C", "behind the host's", false},
		{"suffix search reaches the second domain", []string{"--domain", "nx.corp.test", "--domain", "kms.corp.test", "--product", server, "--n-policy", "1"}, 0, "", "", "", true},
		{"truncated answer, retried over TCP", []string{"--domain", "big.corp.test", "--product", server, "--n-policy", "1"}, 0, "", "", "", true},
	}
	for _, c := range cases {
		args := append([]string{"doctor", "--dns", l.dns.Addr(), "--json"}, c.args...)
		code, out, errOut := runKMS(t, "", args...)
		var d doctorJSON
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Errorf("%s: output is not JSON: %v\n%s%s", c.name, err, out, errOut)
			continue
		}
		if code != c.exit || d.FailedStep != c.step || !strings.HasPrefix(d.Code, c.code) || !strings.Contains(d.Cause, c.cause) || d.Activated != c.activated {
			t.Errorf("%s: exit %d step %q code %q activated %v cause %q; want exit %d step %q code %q cause containing %q\n%s",
				c.name, code, d.FailedStep, d.Code, d.Activated, d.Cause, c.exit, c.step, c.code, c.cause, out)
			continue
		}
		if !c.activated && d.Fix == "" {
			t.Errorf("%s: no fix named", c.name)
		}
		switch c.name {
		case "clock skew":
			if d.Skew < (6*time.Hour-2*time.Minute).Seconds() || d.Skew > (6*time.Hour+2*time.Minute).Seconds() {
				t.Errorf("clock skew measured %.0fs, want 6h ± 2m", d.Skew)
			}
		case "below threshold":
			if d.Required != 25 || d.Count < 1 || d.Count >= 25 {
				t.Errorf("below threshold: count %d required %d", d.Count, d.Required)
			}
		case "truncated answer, retried over TCP":
			if len(d.Steps) < 2 || !strings.Contains(d.Steps[1].Detail, "truncated over UDP") {
				t.Errorf("truncation not reported: %+v", d.Steps)
			}
		}
	}
	// The readable form names the failing step, cause and fix.
	_, out, _ := runKMS(t, "", "doctor", "--dns", l.dns.Addr(), "--domain", "ws.corp.test", "--product", server)
	for _, want := range []string{"[FAIL] kms-request", "Cause:", "Fix:", "windows-server-2022"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("doctor:\n%s", out)
}
