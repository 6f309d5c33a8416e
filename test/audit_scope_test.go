package test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// countingListener accepts TCP connections on loopback and counts them.
func countingListener(t *testing.T) (int, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, &n
}

// TestAuditProbesOnlyAllowedPortsAndScopes: audit connects only to ports
// the ports rule allows (1688 by default) and to loopback or link-local
// addresses only with --probe-loopback; multicast never. What it does not
// probe it reports (class not-probed) without connecting.
func TestAuditProbesOnlyAllowedPortsAndScopes(t *testing.T) {
	port, accepts := countingListener(t)
	zone := fmt.Sprintf(`$ORIGIN scope.test.
@           3600 IN SOA ns hostmaster 1 7200 3600 1209600 30
@           3600 IN NS  ns
ns          3600 IN A   127.0.0.1
lo          600  IN A   127.0.0.1
mc          600  IN A   224.0.0.1
_vlmcs._tcp 600  IN SRV 0 0 %d lo
_vlmcs._tcp 600  IN SRV 0 0 %d mc
`, port, port)
	dns := harness.StartCoreDNS(t, "scope.test:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.scope.test\n}\n",
		harness.File{Name: "db.scope.test", Content: zone})
	base := []string{"audit", "--dns", dns.Addr(), "--domain", "scope.test", "--approve", "lo.scope.test", "--timeout", "2s", "--json"}
	p := strconv.Itoa(port)
	for _, c := range []struct {
		name     string
		args     []string
		probed   bool
		loReason string
	}{
		{"defaults: port outside the ports rule", nil, false, "port " + p + " is outside the ports rule (1688)"},
		{"--ports PORT without --probe-loopback: loopback not probed", []string{"--ports", p}, false, "is a loopback address"},
		{"--probe-loopback, port outside the default rule (1688)", []string{"--probe-loopback"}, false, "port " + p + " is outside the ports rule (1688)"},
		{"--probe-loopback --ports 1-1024", []string{"--probe-loopback", "--ports", "1-1024"}, false, "outside the ports rule (1-1024)"},
		{"--probe-loopback --ports PORT", []string{"--probe-loopback", "--ports", p}, true, ""},
	} {
		before := accepts.Load()
		_, out, errOut := runKMS(t, "", append(base, c.args...)...)
		a := parseAudit(t, out)
		if got := accepts.Load() - before; (got > 0) != c.probed {
			t.Errorf("%s: %d connection(s), want probed=%v\n%s", c.name, got, c.probed, errOut)
		}
		for _, f := range a.Findings {
			switch {
			case strings.HasPrefix(f.Target, "mc."):
				// A multicast address is never a target (dropped as no address, or not probed).
				if f.Class != "not-probed" && f.Class != "unresolvable" {
					t.Errorf("%s: multicast finding %s %q", c.name, f.Class, f.Reason)
				}
			case c.probed:
				if f.Class == "not-probed" {
					t.Errorf("%s: loopback target not probed: %q", c.name, f.Reason)
				}
			default:
				if f.Class != "not-probed" || !strings.Contains(f.Reason, c.loReason) {
					t.Errorf("%s: loopback finding %s %q, want not-probed naming %q", c.name, f.Class, f.Reason, c.loReason)
				}
			}
		}
		if len(a.Findings) != 2 {
			t.Errorf("%s: %d findings, want 2 (reported even when not probed)", c.name, len(a.Findings))
		}
	}
}

// TestAuditNeverCleanWithProblems: a lookup that fails (here a domain the
// server refuses) makes the report say Incomplete, never Clean, and the exit
// code non-zero, even though everything found is healthy.
func TestAuditNeverCleanWithProblems(t *testing.T) {
	l := startAuditLab(t)
	code, out, errOut := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(),
		"--domain", "kms.corp.test", "--domain", "elsewhere.test", "--approve", "kms1.corp.test")
	if code == 0 || strings.Contains(out, "Clean") || !strings.Contains(out, "Incomplete") || !strings.Contains(out, "problem: ") {
		t.Errorf("exit %d, want non-zero, a problem and Incomplete, never Clean:\n%s%s", code, out, errOut)
	}
	code, out, _ = runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(),
		"--domain", "kms.corp.test", "--approve", "kms1.corp.test")
	if code != 0 || !strings.Contains(out, "Clean:") {
		t.Errorf("without the failing domain: exit %d, want 0 and Clean:\n%s", code, out)
	}
}

// TestAuditAXFRThroughVlmcs: audit --axfr asked of a CoreDNS whose vlmcs
// block scrubs the zone either is refused the transfer (vlmcs refuses
// transfers of scrub zones) or sees that the transfer holds records the
// server's answers to clients leave out; either way it says so and exits
// non-zero: it never reports AD's records as what clients see.
func TestAuditAXFRThroughVlmcs(t *testing.T) {
	l := startAuditLab(t)
	vlmcs := harness.StartCoreDNS(t, fmt.Sprintf(`corp.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs {
		approve kms1.corp.test
		ports 1024-65535
		scrub corp.test
	}
	forward . %s
}
`, l.dns.Addr()))
	code, out, errOut := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", vlmcs.Addr(),
		"--domain", "corp.test", "--axfr", "--approve", "kms1.corp.test", "--timeout", "3s")
	refused := strings.Contains(out, "does not transfer this zone") && strings.Contains(out, "refuses transfers")
	bypass := strings.Contains(out, "the transfer bypasses it")
	if code == 0 || !refused && !bypass || strings.Contains(out, "Clean") {
		t.Errorf("exit %d: want a refused or bypassing transfer named, non-zero:\n%s%s", code, out, errOut)
	}
	t.Logf("refused %v, bypass %v", refused, bypass)

	// A server that refuses the transfer (here CoreDNS's file plugin without
	// a transfer block): the message names the cause and what to do.
	noxfr := harness.StartCoreDNS(t, "corp.test:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.corp.test\n}\n",
		harness.File{Name: "db.corp.test", Content: adZone(l)})
	code, out, errOut = runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", noxfr.Addr(),
		"--domain", "kms.corp.test", "--axfr", "--approve", "kms1.corp.test", "--timeout", "3s")
	if code == 0 || !strings.Contains(out, "does not transfer this zone") || !strings.Contains(out, "without --axfr") || strings.Contains(out, "Clean") {
		t.Errorf("refused transfer: exit %d, want the refusal explained, non-zero:\n%s%s", code, out, errOut)
	}
}

// TestAuditCorefileEnvFile: audit --corefile fills the Corefile's {$VAR}s
// from the service's environment file (--env-file), as the unit's
// EnvironmentFile= does; without it the placeholders are empty and the
// error names the rule.
func TestAuditCorefileEnvFile(t *testing.T) {
	l := startAuditLab(t)
	dir := t.TempDir()
	core := harness.WriteFile(t, dir, "Corefile", `corp.test:{$KMSDNS_DNS_PORT} {
	bind {$KMSDNS_DNS_ADDR}
	vlmcs {
		approve {$KMSDNS_APPROVED}
		ports {$KMSDNS_KMS_PORTS}
		scrub corp.test
	}
	forward . {$KMSDNS_AD_DNS}
}
`)
	env := harness.WriteFile(t, dir, "env", "# the service's values\nKMSDNS_DNS_PORT=53\nKMSDNS_DNS_ADDR=127.0.0.1\nKMSDNS_APPROVED=\"kms1.corp.test\"\nKMSDNS_KMS_PORTS=1024-65535\nKMSDNS_AD_DNS=127.0.0.1:53\n")
	code, out, errOut := runKMS(t, "", "audit", "--probe-loopback", "--dns", l.dns.Addr(), "--domain", "kms.corp.test",
		"--corefile", core, "--env-file", env)
	if code != 0 || !strings.Contains(out, "Clean:") {
		t.Errorf("with --env-file: exit %d, want 0 (kms1 approved by the env file's rule, its port by its ports rule)\n%s%s", code, out, errOut)
	}
	code, _, errOut = runKMS(t, "", "audit", "--probe-loopback", "--dns", l.dns.Addr(), "--domain", "kms.corp.test",
		"--corefile", core, "--env-file", dir+"/missing")
	if code != 64 || !strings.Contains(errOut, "--env-file") {
		t.Errorf("missing --env-file: exit %d, want 64 naming --env-file\n%s", code, errOut)
	}
}
