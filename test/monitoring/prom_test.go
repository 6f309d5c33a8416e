package monitoring

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// monitoringDir is build/monitoring, found from this file's directory.
func monitoringDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "build", "monitoring")
}

// promTool returns the path of prometheus or promtool. When it is missing the
// test is skipped if we are not root (nothing could have installed it) and
// fails if we are (build/test.sh installs it as root).
func promTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s not found and not root: install Debian's prometheus package (apt-get install prometheus) to run the monitoring tests", name)
	}
	t.Fatalf("%s not found: install Debian's prometheus package (apt-get install prometheus; build/test.sh does it when root)", name)
	return ""
}

// durationRE matches a Prometheus duration: one or more number+unit parts.
var durationRE = regexp.MustCompile(`^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$`)

var durationPart = regexp.MustCompile(`([0-9]+)(ms|s|m|h|d|w|y)`)

var unitMs = map[string]int64{"ms": 1, "s": 1e3, "m": 60e3, "h": 3600e3, "d": 86400e3, "w": 7 * 86400e3, "y": 365 * 86400e3}

// parseDuration parses a Prometheus duration into milliseconds.
func parseDuration(s string) (int64, error) {
	if !durationRE.MatchString(s) {
		return 0, fmt.Errorf("not a Prometheus duration: %q", s)
	}
	var ms int64
	for _, m := range durationPart.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, err
		}
		ms += n * unitMs[m[2]]
	}
	return ms, nil
}

// Durations in rule files: `for:` values, range selectors (`[5m]`, with an
// optional subquery step) and offsets.
var (
	forRE    = regexp.MustCompile(`(?m)^([ \t]*for:[ \t]*)(\S+)[ \t]*$`)
	rangeRE  = regexp.MustCompile(`\[([0-9a-z]+)(:[0-9a-z]*)?\]`)
	offsetRE = regexp.MustCompile(`\boffset\s+([0-9a-z]+)`)
)

// scaleRules returns the rule file with every duration divided by factor (at
// least 1 ms): the rules' expressions and labels unchanged, their clock sped
// up, so that an end-to-end test sees `for: 2m` pass in 2 s at factor 60.
func scaleRules(t testing.TB, rules string, factor int64) string {
	t.Helper()
	scale := func(d string) string {
		ms, err := parseDuration(d)
		if err != nil {
			t.Fatalf("scaling rules: %v", err)
		}
		return strconv.FormatInt(max(ms/factor, 1), 10) + "ms"
	}
	rules = forRE.ReplaceAllStringFunc(rules, func(m string) string {
		s := forRE.FindStringSubmatch(m)
		return s[1] + scale(s[2])
	})
	rules = rangeRE.ReplaceAllStringFunc(rules, func(m string) string {
		s := rangeRE.FindStringSubmatch(m)
		step := s[2]
		if len(step) > 1 {
			step = ":" + scale(step[1:])
		}
		return "[" + scale(s[1]) + step + "]"
	})
	return offsetRE.ReplaceAllStringFunc(rules, func(m string) string {
		return "offset " + scale(offsetRE.FindStringSubmatch(m)[1])
	})
}

func TestScaleRules(t *testing.T) {
	in := "      - alert: X\n        expr: increase(a[10m]) > 0 unless b offset 1h or max_over_time(c[1d:5m])\n        for: 2m\n"
	want := "      - alert: X\n        expr: increase(a[10000ms]) > 0 unless b offset 60000ms or max_over_time(c[1440000ms:5000ms])\n        for: 2000ms\n"
	if got := scaleRules(t, in, 60); got != want {
		t.Errorf("scaleRules:\n got %q\nwant %q", got, want)
	}
	for _, bad := range []string{"", "5", "m5", "5x", "1h-1m"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) succeeded", bad)
		}
	}
}

// prometheus is a running Prometheus server.
type prometheus struct {
	*harness.Process
	addr string // 127.0.0.1:port of its HTTP API
}

// scrapeJob is one scrape job of the generated configuration.
type scrapeJob struct {
	name    string
	targets []string
}

// startPrometheus writes a configuration scraping jobs every second and
// evaluating rules every second, starts Prometheus on a free loopback port
// with its own storage directory, and waits until it is ready.
func startPrometheus(t testing.TB, rules string, jobs ...scrapeJob) *prometheus {
	t.Helper()
	bin := promTool(t, "prometheus")
	dir := t.TempDir()
	harness.WriteFile(t, dir, "rules.yml", rules)
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\nscrape_configs:\n")
	for _, j := range jobs {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", j.name, strings.Join(j.targets, ", "))
	}
	harness.WriteFile(t, dir, "prometheus.yml", cfg.String())
	p := &prometheus{addr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))}
	p.Process = harness.Start(t, dir, bin,
		"--config.file=prometheus.yml",
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr,
		"--log.level=warn")
	harness.Eventually(t, 30*time.Second, "prometheus ready", func() bool {
		if p.Exited() {
			t.Fatalf("prometheus exited:\n%s", p.Output())
		}
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// api GETs an API path with query parameters and decodes data into out.
func (p *prometheus) api(t testing.TB, path string, params url.Values, out any) error {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.addr + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %d %q: %v", path, resp.StatusCode, b, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %v: %s", path, params, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// alert is one active alert from /api/v1/alerts.
type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

func (a alert) String() string {
	return fmt.Sprintf("%s %s %v", a.Labels["alertname"], a.State, a.Labels)
}

// alerts returns the pending and firing alerts.
func (p *prometheus) alerts(t testing.TB) []alert {
	t.Helper()
	var d struct {
		Alerts []alert `json:"alerts"`
	}
	if err := p.api(t, "/api/v1/alerts", nil, &d); err != nil {
		t.Fatal(err)
	}
	return d.Alerts
}

// matches reports whether a has name and every label in want.
func (a alert) matches(name string, want map[string]string) bool {
	if a.Labels["alertname"] != name {
		return false
	}
	for k, v := range want {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

// waitAlert waits until an alert named name with labels want is in state
// ("firing") and returns it.
func (p *prometheus) waitAlert(t testing.TB, d time.Duration, name, state string, want map[string]string) alert {
	t.Helper()
	var last []alert
	end := time.Now().Add(d)
	for {
		last = p.alerts(t)
		for _, a := range last {
			if a.matches(name, want) && a.State == state {
				return a
			}
		}
		if time.Now().After(end) {
			t.Fatalf("%s %v not %s within %s; active alerts: %v", name, want, state, d, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitResolved waits until no alert named name with labels want is active.
func (p *prometheus) waitResolved(t testing.TB, d time.Duration, name string, want map[string]string) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		var active []alert
		for _, a := range p.alerts(t) {
			if a.matches(name, want) {
				active = append(active, a)
			}
		}
		if len(active) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s %v still active after %s: %v", name, want, d, active)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// query runs an instant query and returns the result vector.
func (p *prometheus) query(t testing.TB, q string) ([]sample, error) {
	t.Helper()
	var d struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := p.api(t, "/api/v1/query", url.Values{"query": {q}}, &d); err != nil {
		return nil, err
	}
	if d.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s, want vector", q, d.ResultType)
	}
	return d.Result, nil
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}
