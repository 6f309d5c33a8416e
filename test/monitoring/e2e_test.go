package monitoring

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/refusal"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// timeScale is how much faster than production the end-to-end test runs the
// rules: `for: 2m` becomes 2 s, `[10m]` becomes `[10s]`.
const timeScale = 60

const adZone = `$ORIGIN corp.test.
@	3600 IN SOA dc1 hostmaster 1 7200 3600 1209600 30
@	3600 IN NS dc1
dc1	3600 IN A 127.0.0.1
; a workstation given a KMS host key by mistake published itself
_vlmcs._tcp	600 IN SRV 0 0 1688 rogue-pc
rogue-pc	600 IN A 127.0.0.9
; an approved KMS host that was decommissioned: nothing answers at its port
_vlmcs._tcp	600 IN SRV 0 0 DEADPORT oldkms
oldkms	600 IN A 127.0.0.10
`

const vlmcsCorefile = `example.test:{{PORT}} corp.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.example.test kms2.example.test 127.0.0.1/32
		key kmsdns-key. SECRET
		grant kmsdns-key. kms1.example.test kms2.example.test
		lease 1m 10s 1h
		probe 200ms 200ms 2 1
		ports 1024-65535
		scrub corp.test
	}
	forward corp.test 127.0.0.1:ADPORT
}
`

// kmsResponder is one kms-responder serve process of the deployment.
type kmsResponder struct {
	*harness.Process
	name, addr, admin, data string
	prefix, args            []string
}

// start (re)starts the responder with its arguments and waits for /healthz.
func (r *kmsResponder) start(t *testing.T) {
	t.Helper()
	all := append(slices.Clone(r.prefix), r.args...)
	r.Process = harness.Start(t, r.data, all[0], all[1:]...)
	harness.Eventually(t, 15*time.Second, r.name+" healthy", func() bool {
		if r.Exited() {
			t.Fatalf("%s exited:\n%s", r.name, r.Output())
		}
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + r.admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// newResponder prepares a responder serving group, registering as name in
// example.test at dnsAddr with the TSIG key in keyFile.
func newResponder(t *testing.T, name, group, dnsAddr, keyFile string, prefix []string, data string) *kmsResponder {
	port, admin := harness.FreePort(t), harness.FreePort(t)
	r := &kmsResponder{
		name:   name,
		addr:   "127.0.0.1:" + strconv.Itoa(port),
		admin:  "127.0.0.1:" + strconv.Itoa(admin),
		data:   data,
		prefix: prefix,
	}
	r.args = []string{harness.ProcessBinary(t, "kms-responder"), "serve", "--group", group,
		"--listen", r.addr, "--port", strconv.Itoa(port), "--data", data, "--metrics", r.admin,
		"--dns-server", dnsAddr, "--zone", "example.test", "--target", name, "--lease", "1m",
		"--tsig-key-file", keyFile, "--drain", "0s"}
	return r
}

// diskFault makes a responder's ledger writes fail and succeed again: a full
// tmpfs in a private mount namespace (the fault of test/resilience's
// TestDiskFull) when this machine allows one, else a lowered RLIMIT_FSIZE.
type diskFault struct {
	prefix []string // command prefix that mounts the tmpfs; nil for the rlimit fault
	data   string
	filler string
	old    unix.Rlimit
}

func newDiskFault(t *testing.T) *diskFault {
	f := &diskFault{data: t.TempDir()}
	var err error
	if f.prefix, err = harness.TmpfsPrefix(f.data, "16m"); err != nil {
		t.Logf("%v; using RLIMIT_FSIZE for the disk fault", err)
	}
	return f
}

// induce fills the responder's file system (or lowers its file size limit).
func (f *diskFault) induce(t *testing.T, pid int) string {
	t.Helper()
	if f.prefix == nil {
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &f.old); err != nil {
			t.Fatalf("prlimit: %v", err)
		}
		lim := unix.Rlimit{Cur: 1 << 20, Max: f.old.Max} // the first log segment's preallocation
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
			t.Fatalf("lowering RLIMIT_FSIZE of pid %d: %v", pid, err)
		}
		return "RLIMIT_FSIZE 1 MiB"
	}
	// The test sees the namespace's tmpfs through the responder's root.
	f.filler = filepath.Join(fmt.Sprintf("/proc/%d/root", pid), f.data, "filler")
	n, err := harness.Fill(f.filler)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("tmpfs filled with %d bytes", n)
}

// clear ends the fault.
func (f *diskFault) clear(t *testing.T, pid int) {
	t.Helper()
	if f.prefix == nil {
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &f.old, nil); err != nil {
			t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
		}
		return
	}
	if err := os.Remove(f.filler); err != nil {
		t.Fatal(err)
	}
}

// client is a Windows 10/11 Enterprise client: threshold 25, so the counts
// the test builds reach every threshold of the group.
func client(t testing.TB) kmsclient.Product {
	t.Helper()
	e, ok := catalog.Default().Edition("Windows 10/11 Enterprise")
	if !ok {
		t.Fatal("edition Windows 10/11 Enterprise not in the catalog")
	}
	return kmsclient.Product{Name: e.Name, AppID: e.AppID, KMSID: e.CountedID, SKUID: e.SKUID, Protocol: e.Protocol, Threshold: 25}
}

// activate runs one activation from a new client; nil when it was answered.
func activate(ctx context.Context, t testing.TB, addr string) error {
	p := client(t)
	c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	out, err := kmsclient.Activate(ctx, c, kmsclient.NewRequest(p, p.Protocol, kmsclient.RandomCMID(), "monitoring", time.Now()), rand.Reader)
	if err == nil && out.Status != kms.OK {
		err = fmt.Errorf("status %v", out.Status)
	}
	return err
}

// pumpUntilUnanswered activates from new clients over four persistent
// connections until one request gets no answer (the ledger could not record
// it) and returns how many were answered before.
func pumpUntilUnanswered(t *testing.T, addr string, limit time.Duration) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	p := client(t)
	var answered atomic.Int64
	done := make(chan error, 4)
	for range 4 {
		go func() {
			c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{Timeout: 5 * time.Second})
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				out, err := kmsclient.Activate(ctx, c, kmsclient.NewRequest(p, p.Protocol, kmsclient.RandomCMID(), "monitoring", time.Now()), rand.Reader)
				if err != nil || out.Status != kms.OK {
					done <- nil // unanswered: the connection was closed
					return
				}
				answered.Add(1)
			}
			done <- ctx.Err()
		}()
	}
	err := <-done
	cancel()
	for range 3 {
		<-done
	}
	if err != nil {
		t.Fatalf("no activation left unanswered within %s (%d answered): %v", limit, answered.Load(), err)
	}
	return answered.Load()
}

// TestAlertsEndToEnd runs a small loopback deployment (an AD DNS stand-in with
// a rogue _vlmcs record, CoreDNS with vlmcs publishing example.test and
// scrubbing corp.test, two kms-responders registered with TSIG) scraped by a
// real Prometheus with build/monitoring/kmsdns-rules.yml loaded at 1/60 time
// scale, and checks through Prometheus's HTTP API that each failure fires the
// alert named after it and that all of them resolve after recovery; then that
// every metric the rules and the dashboard use was scraped from the binaries.
func TestAlertsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coredns, kms-responder and prometheus; skipped with -short")
	}
	promTool(t, "prometheus") // skip before starting anything
	start := time.Now()
	secretBytes := make([]byte, 32)
	rand.Read(secretBytes)
	secret := base64.StdEncoding.EncodeToString(secretBytes)

	ad := harness.StartCoreDNS(t, "corp.test:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.corp.test\n}\n",
		harness.File{Name: "db.corp.test", Content: strings.ReplaceAll(adZone, "DEADPORT", strconv.Itoa(harness.FreePort(t)))})
	textfile := newTextfileTarget(t)
	corefile := strings.NewReplacer("SECRET", secret, "ADPORT", strconv.Itoa(ad.Port)).Replace(vlmcsCorefile)
	dns := harness.StartCoreDNS(t, corefile)
	keyFile := harness.WriteFile(t, t.TempDir(), "kms.key", "hmac-sha256:kmsdns-key.:"+secret+"\n")

	fault := newDiskFault(t)
	kms1 := newResponder(t, "kms1", "windows-server-2025", dns.Addr(), keyFile, fault.prefix, fault.data)
	kms2 := newResponder(t, "kms2", "windows-server-2019", dns.Addr(), keyFile, nil, t.TempDir())
	kms1.start(t)
	kms2.start(t)
	harness.Eventually(t, 15*time.Second, "both responders published", func() bool {
		out := dns.Dig(t, "+short", "_vlmcs._tcp.example.test", "SRV")
		return strings.Contains(out, "kms1.example.test.") && strings.Contains(out, "kms2.example.test.")
	})

	rules, _ := loadRules(t)
	prom := startPrometheus(t, scaleRules(t, rules, timeScale),
		scrapeJob{"kmsdns-coredns", []string{"127.0.0.1:" + strconv.Itoa(dns.Metrics)}},
		scrapeJob{"kms-responder", []string{kms1.admin, kms2.admin}},
		scrapeJob{"node", []string{textfile.addr}})
	coredns := map[string]string{"job": "kmsdns-coredns", "zone": "example.test."}

	// A healthy deployment: two members up, every target scraped, and, after
	// some evaluations, no alert at all.
	harness.Eventually(t, 20*time.Second, "2 healthy members recorded", func() bool {
		s, err := prom.query(t, `instance_zone:coredns_vlmcs_members_up:sum{zone="example.test."} == 2`)
		return err == nil && len(s) == 1
	})
	harness.Eventually(t, 10*time.Second, "4 targets up", func() bool {
		s, err := prom.query(t, `up == 1`)
		return err == nil && len(s) == 4
	})
	// kms1's group serves Windows servers (threshold 5) and clients (25).
	for _, th := range []string{"5", "25"} {
		q := fmt.Sprintf(`kms_responder_count_threshold{instance=%q, application="Windows", threshold=%q} == %s`, kms1.admin, th, th)
		if s, err := prom.query(t, q); err != nil || len(s) != 1 {
			t.Errorf("%s: %v %v", q, s, err)
		}
	}
	// A client asks kms1 for a product its group does not serve: refused
	// with 0xC004F042, as the result label the rules match (one request
	// stays below KmsResponderWrongProductRequests' threshold).
	if code, out := runAudit(t, "activate", "--server", kms1.addr, "--product", "Office Excel 2013", "--cmid", "random"); code == 0 || !strings.Contains(out, "0xC004F042") {
		t.Fatalf("activation of a product kms1 does not serve: exit %d\n%s", code, out)
	}
	time.Sleep(3 * time.Second)
	if a := prom.alerts(t); len(a) != 0 {
		t.Fatalf("alerts on a healthy deployment: %v", a)
	}
	t.Logf("deployment and Prometheus up, silent, after %v", time.Since(start).Round(time.Millisecond))

	// A client of corp.test gets AD's answer with the rogue host scrubbed.
	if out := dns.Dig(t, "+short", "_vlmcs._tcp.corp.test", "SRV"); strings.Contains(out, "rogue-pc") {
		t.Fatalf("rogue-pc not scrubbed: %s", out)
	}
	a := prom.waitAlert(t, 15*time.Second, "VlmcsRogueTargetsScrubbed", "firing", map[string]string{"zone": "corp.test.", "target": "rogue-pc.corp.test."})
	t.Logf("rogue SRV record scrubbed: %s: %s", a, a.Annotations["summary"])

	// The audit, run as its timer would (textfile for node_exporter), finds
	// AD's rogue record (nothing answers: rogue-dead) and the decommissioned
	// approved host (stale); its alerts fire on the values it really writes.
	// The test bed is on loopback at run-time ports: --probe-loopback and
	// --ports say so.
	auditArgs := []string{"audit", "--probe-loopback", "--ports", "1-65535", "--timeout", "2s", "--prometheus", textfile.path}
	if code, out := runAudit(t, append(auditArgs, "--dns", ad.Addr(), "--domain", "corp.test", "--approve", "oldkms.corp.test")...); code != 3 {
		t.Fatalf("audit of corp.test: exit %d, want 3 (rogue and stale found)\n%s", code, out)
	}
	a = prom.waitAlert(t, 15*time.Second, "KmsdnsAuditRogueRecords", "firing", map[string]string{"job": "node", "domain": "corp.test", "class": "rogue-dead"})
	t.Logf("audit found the rogue record: %s", a.Annotations["summary"])
	a = prom.waitAlert(t, 15*time.Second, "KmsdnsAuditStaleRecords", "firing", map[string]string{"job": "node", "domain": "corp.test", "class": "stale"})
	t.Logf("audit found the stale record: %s", a.Annotations["summary"])
	// The records are dealt with (here: the audit covers the published zone,
	// clean): both alerts resolve.
	if code, out := runAudit(t, append(auditArgs, "--dns", dns.Addr(), "--domain", "example.test", "--identify", "none",
		"--approve", "kms1.example.test", "--approve", "kms2.example.test")...); code != 0 {
		t.Fatalf("audit of example.test: exit %d, want 0 (clean)\n%s", code, out)
	}
	prom.waitResolved(t, 15*time.Second, "KmsdnsAuditRogueRecords", nil)
	prom.waitResolved(t, 15*time.Second, "KmsdnsAuditStaleRecords", nil)

	// A host with the key registers a name that is not approved.
	code, out := dns.NSUpdate(t, "zone example.test\nupdate add _vlmcs._tcp.example.test 60 SRV 0 0 1688 rogue.example.test.\nupdate add rogue.example.test 60 A 127.0.0.1",
		"-y", "hmac-sha256:kmsdns-key.:"+secret)
	if code == 0 || !strings.Contains(out, "REFUSED") {
		t.Fatalf("rogue registration not refused: exit %d: %s", code, out)
	}
	a = prom.waitAlert(t, 15*time.Second, "VlmcsRegistrationsRefused", "firing", map[string]string{"zone": "example.test.", "reason": "unapproved-target"})
	t.Logf("rogue registration refused: %s", a.Annotations["summary"])

	// kill -9 a responder: its member stays registered but fails its probes.
	kms2.Kill()
	killed := time.Now()
	prom.waitAlert(t, 20*time.Second, "VlmcsPoolDegraded", "firing", coredns)
	prom.waitAlert(t, 20*time.Second, "KmsdnsTargetDown", "firing", map[string]string{"job": "kms-responder", "instance": kms2.admin})
	t.Logf("kms2 killed: VlmcsPoolDegraded and KmsdnsTargetDown firing after %v", time.Since(killed).Round(time.Millisecond))
	kms2.start(t)
	restarted := time.Now()
	prom.waitResolved(t, 20*time.Second, "VlmcsPoolDegraded", coredns)
	prom.waitResolved(t, 20*time.Second, "KmsdnsTargetDown", nil)
	t.Logf("kms2 restarted: resolved after %v", time.Since(restarted).Round(time.Millisecond))

	// kms1's disk fills: once the ledger cannot grow, activations go unanswered.
	note := fault.induce(t, kms1.Pid())
	n := pumpUntilUnanswered(t, kms1.addr, 30*time.Second)
	full := time.Now()
	a = prom.waitAlert(t, 20*time.Second, "KmsResponderLedgerUnhealthy", "firing", map[string]string{"instance": kms1.admin})
	t.Logf("%s, %d activations answered from preallocated space: %s firing after %v", note, n, a.Labels["alertname"], time.Since(full).Round(time.Millisecond))
	fault.clear(t, kms1.Pid())
	freed := time.Now()
	harness.Eventually(t, 15*time.Second, "kms1 answering after the fault cleared", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return activate(ctx, t, kms1.addr) == nil
	})
	prom.waitResolved(t, 20*time.Second, "KmsResponderLedgerUnhealthy", nil)
	t.Logf("disk freed: KmsResponderLedgerUnhealthy resolved after %v", time.Since(freed).Round(time.Millisecond))

	// Everything resolves: the refusal and scrub windows (10 s and 15 s at this
	// scale) pass, kms1 registers again.
	harness.Eventually(t, 40*time.Second, "every alert resolved", func() bool { return len(prom.alerts(t)) == 0 })
	t.Logf("all alerts resolved %v after the start", time.Since(start).Round(time.Millisecond))

	t.Run("MetricNamesScraped", func(t *testing.T) { checkNamesScraped(t, prom) })
}

// textfileTarget serves a file written by `kms-responder audit --prometheus`
// over HTTP, as node_exporter's textfile collector does (node_exporter is no
// Debian tool here: this is its one job, read the file at each scrape).
type textfileTarget struct {
	addr, path string
}

func newTextfileTarget(t *testing.T) *textfileTarget {
	t.Helper()
	tf := &textfileTarget{path: filepath.Join(t.TempDir(), "kmsdns_audit.prom")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if b, err := os.ReadFile(tf.path); err == nil {
			w.Write(b)
		}
	}))
	t.Cleanup(srv.Close)
	tf.addr = strings.TrimPrefix(srv.URL, "http://")
	return tf
}

// runAudit runs bin/kms-responder with args and returns its exit code and
// output.
func runAudit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(harness.ProcessBinary(t, "kms-responder"), args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("kms-responder %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// emittedOnEvent reports whether a label value is one a binary writes only
// on an event the end-to-end run does not cause (an update refusal reason
// other than the one it provokes), checked against the code that writes it:
// the refusal reasons of plugin/pkg/refusal, which label the plugin's
// updates counter.
func emittedOnEvent(metric, label, value string) bool {
	return metric == "coredns_vlmcs_updates_total" && label == "reason" && refusal.Reason(value+": ") == value
}

// checkNamesScraped checks that every metric name used by the rules and the
// dashboard was scraped from the running binaries, with the labels their
// matchers name, and that every dashboard query is valid PromQL.
func checkNamesScraped(t *testing.T, prom *prometheus) {
	var names []string
	if err := prom.api(t, "/api/v1/label/__name__/values", nil, &names); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]bool{}
	for _, n := range names {
		scraped[n] = true
	}
	_, rf := loadRules(t)
	recorded := map[string]bool{}
	type use struct{ where, expr string }
	var uses []use
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			uses = append(uses, use{"rule " + r.Alert + r.Record, r.Expr})
		}
	}
	for _, q := range dashboardQueries(t) {
		uses = append(uses, use{"dashboard panel " + strconv.Quote(q.panel), q.expr})
		// Grafana fills the variables in; any valid values do for parsing.
		expr := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h",
			"$dns_instance", ".*", "$instance", ".*", "$zone", ".*").Replace(q.expr)
		if _, err := prom.query(t, expr); err != nil {
			t.Errorf("dashboard panel %q: %v", q.panel, err)
		}
	}
	checked := map[string]bool{}
	values := 0
	var byCode []string
	for _, u := range uses {
		sels, err := selectors(u.expr)
		if err != nil {
			t.Errorf("%s: %v", u.where, err)
			continue
		}
		if len(sels) == 0 {
			t.Errorf("%s: no metric in %q", u.where, u.expr)
		}
		for _, s := range sels {
			switch {
			case s.name == "ALERTS":
				continue // Prometheus's own series of active alerts
			case strings.Contains(s.name, ":") && !recorded[s.name]:
				t.Errorf("%s: %s is not a recording rule of kmsdns-rules.yml", u.where, s.name)
				continue
			case !scraped[s.name]:
				t.Errorf("%s: %s was not scraped from the running binaries", u.where, s.name)
				continue
			}
			for _, l := range s.labels {
				key := s.name + "/" + l
				if checked[key] {
					continue
				}
				checked[key] = true
				q := fmt.Sprintf(`count(last_over_time(%s{%s!=""}[1h]))`, s.name, l)
				if r, err := prom.query(t, q); err != nil || len(r) == 0 {
					t.Errorf("%s: no %s series has a label %s (%v)", u.where, s.name, l, err)
				}
			}
			// Every label value a matcher names must be one the binaries or
			// the audit's textfile emitted: a rule matching a value nobody
			// writes can never fire.
			for _, m := range s.matchers {
				vals, ok := m.values()
				if !ok || m.label == "job" || m.label == "instance" {
					continue // jobs and instances are the deployment's names, not the binaries'
				}
				for _, v := range vals {
					key := s.name + "/" + m.label + "=" + v
					if checked[key] {
						continue
					}
					checked[key] = true
					q := fmt.Sprintf(`count(last_over_time(%s{%s=%q}[1h]))`, s.name, m.label, v)
					r, err := prom.query(t, q)
					switch {
					case err == nil && len(r) > 0:
						values++
					case emittedOnEvent(s.name, m.label, v):
						byCode = append(byCode, s.name+"{"+m.label+"="+strconv.Quote(v)+"}")
					default:
						t.Errorf("%s: no %s series was scraped with %s=%q (%v): the expression matches a value nobody emits", u.where, s.name, m.label, v, err)
					}
				}
			}
		}
	}
	t.Logf("%d metric names scraped; %d rule and dashboard expressions checked, %d label values matched found scraped", len(names), len(uses), values)
	t.Logf("label values this run does not cause, checked against the code that writes them: %s", strings.Join(byCode, " "))
}
