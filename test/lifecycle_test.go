package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// lifecycleConfig is the responder's config for the lifecycle test; level
// and groups change between reloads.
func lifecycleConfig(port int, dir, dnsAddr, level, groups string) string {
	return fmt.Sprintf(`groups: [%s]
listen: ["127.0.0.1:%d"]
data: %s/data
metrics: ""
log_level: %s
drain: 0s
register:
  servers: ["%s"]
  zone: example.test
  target: kms1
  addresses: [127.0.0.1]
  port: %d
  lease: 10s
  tsig_key_file: %s/tsig.key
`, groups, port, dir, level, dnsAddr, port, dir)
}

// TestResponderLifecycleSignals: SIGHUP does not kill the real
// kms-responder (by default it would: exit 129, no withdraw, no ledger
// close): it keeps serving and stays registered, reloads log_level and names settings that
// need a restart. Then SIGTERM, or SIGINT, withdraws the registration (seen
// at the DNS server within a second or so), closes the ledger and exits 0,
// and a restart finds the counted clients.
func TestResponderLifecycleSignals(t *testing.T) {
	for _, stop := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(stop.String(), func(t *testing.T) {
			// Slow probes: a member that leaves within seconds left because it withdrew.
			c := harness.StartCoreDNS(t, strings.Replace(responderCorefile, "PROBE", "probe 10s 1s 3 1", 1))
			port := harness.FreePort(t)
			dir := t.TempDir()
			harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kms1-key.:"+secret1+"\n")
			cfg := harness.WriteFile(t, dir, "config.yaml", lifecycleConfig(port, dir, c.Addr(), "info", "windows-server-2025"))
			bin := harness.Binary(t, "kms-responder")
			r := harness.Start(t, dir, bin, "serve", "--config", "config.yaml")
			member := "kms1.example.test.:" + strconv.Itoa(port)
			registered := func() bool { return srvSet(t, c, "_vlmcs._tcp.example.test")[member] }
			harness.Eventually(t, 10*time.Second, "the responder's registration", registered)
			if rep := discoverOnce(t, c, windowsClient); !rep.answered() || rep.CurrentCount != 1 {
				t.Fatalf("first client: exit %d, count %d:\n%s", rep.code, rep.CurrentCount, rep.raw)
			}

			// SIGHUP with an edited config: log_level applies, groups needs a restart.
			if err := os.WriteFile(cfg, []byte(lifecycleConfig(port, dir, c.Addr(), "debug", "windows-server-2025, office-ltsc-2024")), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := r.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			harness.Eventually(t, 5*time.Second, "the SIGHUP reload in the log", func() bool {
				return strings.Contains(r.Output(), "SIGHUP: configuration reloaded")
			})
			out := r.Output()
			if !strings.Contains(out, "log_level=debug]") || !strings.Contains(out, "need_restart=[groups]") {
				t.Errorf("reload log does not say what applied and what needs a restart:\n%s", out)
			}
			for range 3 { // more hangups, as a closing terminal or a log rotation script sends
				if err := r.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(500 * time.Millisecond)
			if r.Exited() {
				t.Fatalf("SIGHUP stopped the responder:\n%s", r.Output())
			}
			if !registered() {
				t.Fatalf("not registered after SIGHUP:\n%s", r.Output())
			}
			if rep := discoverOnce(t, c, windowsClient); !rep.answered() || rep.CurrentCount != 2 {
				t.Fatalf("client after SIGHUP: exit %d, count %d:\n%s", rep.code, rep.CurrentCount, rep.raw)
			}

			if err := r.Signal(stop); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			harness.Eventually(t, 3*time.Second, "withdrawal at the DNS server", func() bool { return len(srvSet(t, c, "_vlmcs._tcp.example.test")) == 0 })
			t.Logf("withdrawn %s after %v", time.Since(start).Round(time.Millisecond), stop)
			if code := r.Wait(15 * time.Second); code != 0 {
				t.Fatalf("exit code %d after %v:\n%s", code, stop, r.Output())
			}
			if out := r.Output(); !strings.Contains(out, "ledger closed") || !strings.Contains(out, "stopped") {
				t.Errorf("no clean ledger close in the log:\n%s", out)
			}

			// The restart (config as edited: two groups) keeps both clients.
			r2 := harness.Start(t, dir, bin, "serve", "--config", "config.yaml")
			harness.Eventually(t, 10*time.Second, "the registration after restart", registered)
			if rep := discoverOnce(t, c, windowsClient); !rep.answered() || rep.CurrentCount != 3 {
				t.Fatalf("client after restart: exit %d, count %d (want 3: two before the stop and this one):\n%s", rep.code, rep.CurrentCount, rep.raw)
			}
			r2.Stop()
			if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
				t.Fatal(err)
			}
		})
	}
}
