package test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestWindowsUnsignedSRV registers like a genuine Windows KMS host: an unsigned update of the SRV
// record only, over TCP, from an allowed network; the target's address comes from the next
// plugin (here hosts, standing in for AD), and probes and glue use it.
func TestWindowsUnsignedSRV(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs {
		approve kmswin.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		unsigned 127.0.0.0/8
		probe 100ms 200ms 2 1
		all_down none
	}
	hosts {
		127.0.0.1 kmswin.example.test
		fallthrough
	}
}
`)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	script := fmt.Sprintf("zone example.test\nupdate add _vlmcs._tcp.example.test 3600 SRV 0 0 %d kmswin.example.test", kms.Port)
	if code, out := c.NSUpdate(t, script); code == 0 || !strings.Contains(out, "REFUSED") {
		t.Fatalf("unsigned update over UDP: exit %d %q, want REFUSED", code, out)
	}
	if code, out := c.NSUpdate(t, script, "-v"); code != 0 {
		t.Fatalf("unsigned update over TCP from an allowed network: exit %d %q", code, out)
	}
	member := fmt.Sprintf("kmswin.example.test.:%d", kms.Port)
	harness.Eventually(t, 3*time.Second, "Windows host served", func() bool { return srvSet(t, c, "_vlmcs._tcp.example.test")[member] })
	if out := c.Dig(t, "_vlmcs._tcp.example.test", "SRV"); !regexp.MustCompile(`(?m)^kmswin\.example\.test\.\s+\d+\s+IN\s+A\s+127\.0\.0\.1$`).MatchString(out) {
		t.Errorf("no glue resolved through the next plugin:\n%s", out)
	}
	// Its KMS service stops: probes (to the resolved address) take it out.
	kms.Stop()
	harness.Eventually(t, 3*time.Second, "stopped Windows host removed", func() bool { return len(srvSet(t, c, "_vlmcs._tcp.example.test")) == 0 })
}

// TestReady: the ready plugin reports vlmcs ready once its first probe round is done.
func TestReady(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	ready 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.example.test
		ports 1024-65535 # KMS ports picked at run time
		static kms1.example.test 1688 0 0 127.0.0.1
		probe 100ms 100ms
	}
}
`)
	harness.Eventually(t, 3*time.Second, "/ready 200", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(c.Metrics) + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
