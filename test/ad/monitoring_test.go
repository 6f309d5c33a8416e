package ad

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestMonitoringRulesReadTheDCsAudit: the audit of the DC, written for node_exporter's textfile
// collector, fires the shipped KmsdnsAuditRogueRecords alert for the rogue workstation (and
// nothing for the healthy host): promtool evaluates build/monitoring/kmsdns-rules.yml over the
// file's own samples.
func TestMonitoringRulesReadTheDCsAudit(t *testing.T) {
	needDC(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install prometheus (apt-get install prometheus); build/tools.sh does")
	}
	l := startLab(t, "prom")
	dir := t.TempDir()
	prom := filepath.Join(dir, "kmsdns_audit.prom")
	if code, out, errOut := runKMS(t, nil, "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", dc.DNSAddr(), "--domain", l.Domain, "--approve", l.Name("kms1"), "--prometheus", prom); code != 3 {
		t.Fatalf("audit: exit %d, want 3\n%s%s", code, out, errOut)
	}
	f, err := os.Open(prom)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Each sample becomes an input series as node_exporter would label it, constant for an hour.
	var series strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "kmsdns_audit_last_run") {
			continue
		}
		if strings.HasSuffix(name, "}") {
			name = strings.TrimSuffix(name, "}") + `,job="node",instance="dc-audit"}`
		} else {
			name += `{job="node",instance="dc-audit"}`
		}
		fmt.Fprintf(&series, "    - series: '%s'\n      values: '%sx60'\n", name, value)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	test := fmt.Sprintf(`rule_files: [%q]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s    alert_rule_test:
    - eval_time: 30m
      alertname: KmsdnsAuditRogueRecords
      exp_alerts:
      - exp_labels: {job: node, instance: dc-audit, domain: %s, class: rogue, severity: warning}
        exp_annotations:
          summary: The last kmsdns audit found 1 rogue _vlmcs record(s)
          description: "%s"
    - eval_time: 30m
      alertname: KmsdnsAuditStaleRecords
      exp_alerts: []
`, filepath.Join(root, "build", "monitoring", "kmsdns-rules.yml"), series.String(), l.Domain,
		"`kms-responder audit` found _vlmcs._tcp SRV records of hosts that are not approved (rogue: rogue still answers KMS, rogue-dead does not). Run `kms-responder audit` by hand for the names, remove the KMS host key from live machines and delete their records from DNS.")
	testFile := harness.WriteFile(t, dir, "audit.test.yml", test)
	if out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules over the DC's audit: %v\n%s\ntest file:\n%s", err, out, test)
	}
}
