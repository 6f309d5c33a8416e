package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// loadRules reads build/monitoring/kmsdns-rules.yml.
func loadRules(t testing.TB) (string, ruleFile) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir(t), "kmsdns-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("kmsdns-rules.yml: %v", err)
	}
	return string(b), rf
}

// TestPromtool runs `promtool check rules`, `promtool check config` on the
// example configuration and the unit tests of every alert (`promtool test
// rules`).
func TestPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("runs promtool; skipped with -short")
	}
	promtool := promTool(t, "promtool")
	dir := monitoringDir(t)
	for _, args := range [][]string{
		{"check", "rules", "kmsdns-rules.yml"},
		{"check", "config", "prometheus.example.yml"},
		{"test", "rules", "kmsdns-rules.test.yml", "kmsdns-rules.days.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// unitTests is the part of a promtool test file this test reads.
type unitTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertTested checks the rules' form (every alert has a severity, a
// summary and a description; recording rules follow level:metric:operations)
// and that the promtool tests cover every alert both firing and silent.
func TestEveryAlertTested(t *testing.T) {
	_, rf := loadRules(t)
	var ut unitTests
	for _, f := range []string{"kmsdns-rules.test.yml", "kmsdns-rules.days.test.yml"} {
		b, err := os.ReadFile(filepath.Join(monitoringDir(t), f))
		if err != nil {
			t.Fatal(err)
		}
		var part unitTests
		if err := yaml.Unmarshal(b, &part); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ut.Tests = append(ut.Tests, part.Tests...)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range ut.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				if strings.Count(r.Record, ":") != 2 {
					t.Errorf("recording rule %s: name it level:metric:operations", r.Record)
				}
				continue
			}
			n++
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || len(r.Annotations["description"]) < 80 {
				t.Errorf("alert %s: needs a summary and a description that says what to do", r.Alert)
			}
			if !fires[r.Alert] {
				t.Errorf("alert %s: no promtool test where it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s: no promtool test where it stays silent", r.Alert)
			}
		}
	}
	if n < 14 {
		t.Errorf("%d alerts, want the 14 the issue lists", n)
	}
}
