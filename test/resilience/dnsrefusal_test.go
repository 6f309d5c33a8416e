package resilience

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// registeredMetric reads kms_responder_dns_registered from the responder's
// /metrics: "1", "0", or "" when absent.
func registeredMetric(t *testing.T, r *harness.Responder) string {
	t.Helper()
	code, body := httpGet(r.Admin, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	m := regexp.MustCompile(`(?m)^kms_responder_dns_registered\{[^}]*\} (\d)$`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// statusRegistered reads dns_registration[0].registered from GET /status.
func statusRegistered(t *testing.T, r *harness.Responder) bool {
	t.Helper()
	code, body := httpGet(r.Admin, "/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	var st struct {
		Reg []struct {
			Registered bool `json:"registered"`
		} `json:"dns_registration"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Reg) != 1 {
		t.Fatalf("/status dns_registration: %v\n%s", err, body)
	}
	return st.Reg[0].Registered
}

// TestRefusedRefreshNotRegistered: once the DNS server refuses a refresh,
// /status and kms_responder_dns_registered stop saying registered at once,
// well inside the lease the last accepted registration was granted, and
// say it again after the next accepted refresh.
func TestRefusedRefreshNotRegistered(t *testing.T) {
	dnsSrv := startDNSStub(t)
	r := harness.StartResponderWith(t, harness.ResponderOptions{Env: []string{tsigEnv()}}, t.TempDir(), append([]string{"--group", testGroup}, dnsSrv.registrationFlags("10s")...)...)
	deadline := time.Now().Add(10 * time.Second)
	for (registeredMetric(t, r) != "1" || !statusRegistered(t, r)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if registeredMetric(t, r) != "1" || !statusRegistered(t, r) {
		t.Fatal("never registered")
	}
	var accepted time.Time
	for _, u := range dnsSrv.received() {
		if u.register && !u.refused {
			accepted = u.at
		}
	}

	dnsSrv.setRefuse(true)
	refused, ok := dnsSrv.waitFor(accepted, 10*time.Second, func(u update) bool { return u.register && u.refused })
	if !ok {
		t.Fatal("no refresh reached the refusing server")
	}
	time.Sleep(200 * time.Millisecond) // the responder records the answer
	if in := time.Since(accepted); in >= 10*time.Second {
		t.Fatalf("the refusal came %v after the accepted registration: the lease had lapsed anyway", in)
	}
	if m, s := registeredMetric(t, r), statusRegistered(t, r); m != "0" || s {
		t.Errorf("%v after the refusal (%v into the 10s lease): kms_responder_dns_registered %q, /status registered %v; want 0, false",
			time.Since(refused.at).Round(time.Millisecond), time.Since(accepted).Round(time.Millisecond), m, s)
	}

	dnsSrv.setRefuse(false)
	deadline = time.Now().Add(40 * time.Second)
	for registeredMetric(t, r) != "1" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if registeredMetric(t, r) != "1" || !statusRegistered(t, r) {
		t.Error("not registered again after the server accepted a refresh")
	}
}

// TestGrantedLeaseFloor: a server granting a 1-second lease to a 60-second
// request gets no refresh for the next 10 seconds (the floor: refreshes at
// 40-50% of 30 s), not two a second, and the clamp is logged.
func TestGrantedLeaseFloor(t *testing.T) {
	dnsSrv := startDNSStub(t)
	dnsSrv.setGrant(1)
	start := time.Now()
	r := harness.StartResponderWith(t, harness.ResponderOptions{Env: []string{tsigEnv()}}, t.TempDir(), append([]string{"--group", testGroup}, dnsSrv.registrationFlags("60s")...)...)
	if _, ok := dnsSrv.waitFor(start, 10*time.Second, func(u update) bool { return u.register }); !ok {
		t.Fatal("no registration")
	}
	time.Sleep(10 * time.Second)
	n := 0
	for _, u := range dnsSrv.received() {
		if u.register {
			n++
		}
	}
	t.Logf("%d registrations in %v with a 1s grant", n, time.Since(start).Round(time.Second))
	if n > 1 {
		t.Errorf("%d registrations within 10 s of a 1-second grant, want 1 (next at 12-15 s)", n)
	}
	if !strings.Contains(r.Stderr.String(), "DNS server granted a lease below the floor") || !strings.Contains(r.Stderr.String(), `"granted_lease":"1s"`) {
		t.Errorf("the clamp is not logged:\n%s", r.Stderr.String())
	}
}
