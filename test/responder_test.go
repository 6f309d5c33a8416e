package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/test/harness"
)

// responderCorefile publishes example.test with kms1-key; PROBE is filled in per test.
const responderCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	errors
	vlmcs {
		approve kms1.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms1-key. ` + secret1 + `
		grant kms1-key. kms1.example.test
		lease 1h 2s 1h
		PROBE
		all_down none
		ttl 1
	}
}
`

// startResponder runs the real kms-responder serving KMS on a free loopback port and
// registering with c as kms1.example.test (key read from a file, lease 10 s).
func startResponder(t *testing.T, c *harness.CoreDNS) (*harness.Process, int) {
	t.Helper()
	port := harness.FreePort(t)
	dir := t.TempDir()
	harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kms1-key.:"+secret1+"\n")
	harness.WriteFile(t, dir, "config.yaml", fmt.Sprintf(`groups: [windows-server-2025]
listen: ["127.0.0.1:%d"]
data: %s/data
metrics: ""
register:
  servers: ["%s"]
  zone: example.test
  target: kms1.example.test
  addresses: [127.0.0.1]
  port: %d
  lease: 10s
  tsig_key_file: %s/tsig.key
`, port, dir, c.Addr(), port, dir))
	return harness.Start(t, dir, harness.Binary(t, "kms-responder"), "serve", "--config", "config.yaml"), port
}

func TestResponderSIGTERMWithdraws(t *testing.T) {
	// Slow probes: a member that leaves within a second left because it withdrew.
	c := harness.StartCoreDNS(t, strings.Replace(responderCorefile, "PROBE", "probe 10s 1s 3 1", 1))
	r, port := startResponder(t, c)
	member := "kms1.example.test.:" + strconv.Itoa(port)
	harness.Eventually(t, 10*time.Second, "the responder's registration", func() bool { return srvSet(t, c, "_vlmcs._tcp.example.test")[member] })
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	harness.Eventually(t, 3*time.Second, "withdrawal", func() bool { return len(srvSet(t, c, "_vlmcs._tcp.example.test")) == 0 })
	t.Logf("withdrawn %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if code := r.Wait(15 * time.Second); code != 0 {
		t.Errorf("responder exit code %d after SIGTERM:\n%s", code, r.Output())
	}
}

func TestResponderKillRemoved(t *testing.T) {
	// probe 200ms 300ms 2: a crashed responder leaves within 2 × 0.2 s + 0.3 s = 0.7 s.
	c := harness.StartCoreDNS(t, strings.Replace(responderCorefile, "PROBE", "probe 200ms 300ms 2 1", 1))
	r, port := startResponder(t, c)
	member := "kms1.example.test.:" + strconv.Itoa(port)
	harness.Eventually(t, 10*time.Second, "the responder's registration", func() bool { return srvSet(t, c, "_vlmcs._tcp.example.test")[member] })
	r.Kill()
	start := time.Now()
	harness.Eventually(t, 3*time.Second, "removal of the crashed responder", func() bool { return len(srvSet(t, c, "_vlmcs._tcp.example.test")) == 0 })
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("crashed responder removed after %s; want ≤ N × interval + timeout (0.7 s) plus query slack", d)
	}
}

// TestResponderDrainsAfterWithdrawal: on SIGTERM the responder deletes its
// records first, then keeps answering for the drain period (clients that
// resolved it just before may still come), then exits 0.
func TestResponderDrainsAfterWithdrawal(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(responderCorefile, "PROBE", "probe 10s 1s 3 1", 1))
	port := harness.FreePort(t)
	dir := t.TempDir()
	harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kms1-key.:"+secret1+"\n")
	harness.WriteFile(t, dir, "config.yaml", fmt.Sprintf(`groups: [windows-server-2025]
listen: ["127.0.0.1:%d"]
data: %s/data
metrics: ""
drain: 1500ms
register:
  servers: ["%s"]
  zone: example.test
  target: kms1
  addresses: [127.0.0.1]
  port: %d
  lease: 10s
  tsig_key_file: %s/tsig.key
`, port, dir, c.Addr(), port, dir))
	r := harness.Start(t, dir, harness.Binary(t, "kms-responder"), "serve", "--config", "config.yaml")
	member := "kms1.example.test.:" + strconv.Itoa(port)
	harness.Eventually(t, 10*time.Second, "the responder's registration", func() bool { return srvSet(t, c, "_vlmcs._tcp.example.test")[member] })
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	harness.Eventually(t, time.Second, "withdrawal", func() bool { return len(srvSet(t, c, "_vlmcs._tcp.example.test")) == 0 })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := dcerpc.Probe(context.Background(), addr, time.Second); err != nil {
		t.Fatalf("responder stopped answering right after withdrawing (%s after SIGTERM); want it to drain: %v", time.Since(stopped), err)
	}
	if code := r.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, r.Output())
	}
	if d := time.Since(stopped); d < 1500*time.Millisecond {
		t.Errorf("exited %s after SIGTERM, before the 1.5 s drain period", d)
	}
	if err := dcerpc.Probe(context.Background(), addr, 500*time.Millisecond); err == nil {
		t.Errorf("still answering after exit")
	}
}
