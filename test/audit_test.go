package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/test/harness"
)

// auditHost is a real kms-responder on a loopback port.
type auditHost struct {
	*harness.Process
	Port, Admin int
}

// startAuditHost runs kms-responder serve with the given host key groups (and
// extra flags), without DNS registration, and waits until it binds.
func startAuditHost(t *testing.T, args ...string) *auditHost {
	t.Helper()
	h := &auditHost{Port: harness.FreePort(t), Admin: harness.FreePort(t)}
	dir := t.TempDir()
	all := append([]string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(h.Port), "--data", filepath.Join(dir, "data"),
		"--metrics", "127.0.0.1:" + strconv.Itoa(h.Admin)}, args...)
	h.Process = harness.Start(t, dir, harness.ProcessBinary(t, "kms-responder"), all...)
	harness.Eventually(t, 15*time.Second, "kms-responder binding on "+strconv.Itoa(h.Port), func() bool {
		if h.Exited() {
			t.Fatalf("kms-responder exited:\n%s", h.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return dcerpc.Probe(ctx, "127.0.0.1:"+strconv.Itoa(h.Port), time.Second) == nil
	})
	return h
}

// auditLab is the AD stand-in (harness.CoreDNS serving file zones with transfer)
// and the hosts its records name.
type auditLab struct {
	dns                 *harness.CoreDNS
	kms1, ws, srv       *auditHost
	deadPort, stalePort int
}

// adZone is the AD stand-in's corp.test: one record per audit class.
func adZone(l *auditLab) string {
	return fmt.Sprintf(`$ORIGIN corp.test.
@            3600 IN SOA dc1 hostmaster 1 7200 3600 1209600 30
@            3600 IN NS  dc1
dc1          3600 IN A   127.0.0.1
kms1         600  IN A   127.0.0.1
pc42         600  IN A   127.0.0.1
gone         600  IN A   127.0.0.1
oldkms       600  IN A   127.0.0.1
web          600  IN A   127.0.0.1
srv7         600  IN A   127.0.0.1
pc7.child    600  IN A   127.0.0.1
; approved and healthy
_vlmcs._tcp  600  IN SRV 0 0 %d kms1
; a workstation with a Windows 10 client KMS host key (rogue, alive)
_vlmcs._tcp  600  IN SRV 0 0 %d pc42
; an unapproved host that is gone (rogue, dead)
_vlmcs._tcp  600  IN SRV 0 0 %d gone
; an approved host that is gone (stale)
_vlmcs._tcp  600  IN SRV 0 0 %d oldkms
; a web server's port: open, but not a KMS host
_vlmcs._tcp  600  IN SRV 0 0 %d web
; a host without an address
_vlmcs._tcp  600  IN SRV 0 0 1688 nohost
; a child domain's record (found by AXFR, or by --domain child.corp.test)
_vlmcs._tcp.child 600 IN SRV 0 0 %d pc7.child
; branch.corp.test's records are a CNAME into another zone
_vlmcs._tcp.branch 600 IN CNAME _vlmcs._tcp.pool.other.test.
; no KMS records here, but the name exists (NODATA for SRV)
_vlmcs._tcp.nodata 600 IN TXT "nothing"
; doctor: one name per failing step
_vlmcs._tcp.dead   600 IN SRV 0 0 %d gone
_vlmcs._tcp.notkms 600 IN SRV 0 0 %d web
_vlmcs._tcp.ws     600 IN SRV 0 0 %d pc42
_vlmcs._tcp.kms    600 IN SRV 0 0 %d kms1
`+bigRecords(l.kms1.Port), l.kms1.Port, l.ws.Port, l.deadPort, l.stalePort, l.kms1.Admin, l.ws.Port,
		l.deadPort, l.kms1.Admin, l.ws.Port, l.kms1.Port)
}

// bigRecords is an SRV set too large for a UDP answer (doctor's truncation case).
func bigRecords(port int) string {
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, "_vlmcs._tcp.big 600 IN SRV 0 0 %d kms-replica-%02d.big\nkms-replica-%02d.big 600 IN A 127.0.0.1\n", port, i, i)
	}
	return b.String()
}

func otherZone(l *auditLab) string {
	return fmt.Sprintf(`$ORIGIN other.test.
@    3600 IN SOA ns hostmaster 1 7200 3600 1209600 30
@    3600 IN NS  ns
ns   3600 IN A   127.0.0.1
; an unapproved Windows Server KMS host, reached through branch.corp.test's CNAME
_vlmcs._tcp.pool 600 IN SRV 0 0 %d srv7.corp.test.
`, l.srv.Port)
}

const adCorefile = `corp.test:{{PORT}} other.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.corp.test corp.test
	file {{DIR}}/db.other.test other.test
	transfer {
		to *
	}
}
`

// approvedCorefile is a vlmcs configuration whose approve rules the audit reads.
const approvedCorefile = `corp.test:1053 {
	vlmcs {
		approve kms1.corp.test oldkms.corp.test
		scrub corp.test
	}
	forward . 127.0.0.1:1054
}
`

func startAuditLab(t *testing.T) *auditLab {
	t.Helper()
	l := &auditLab{deadPort: harness.FreePort(t), stalePort: harness.FreePort(t)}
	l.kms1 = startAuditHost(t, "--group", "windows-server-2025", "--group", "office-ltsc-2024")
	l.ws = startAuditHost(t, "--group", "windows-10-2019", "--host-build", "17763")
	l.srv = startAuditHost(t, "--group", "windows-server-2019")
	l.dns = harness.StartCoreDNS(t, adCorefile, harness.File{Name: "db.corp.test", Content: adZone(l)}, harness.File{Name: "db.other.test", Content: otherZone(l)})
	return l
}

// runKMS runs kms-responder with args and returns exit code, stdout and stderr.
func runKMS(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(harness.ProcessBinary(t, "kms-responder"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("kms-responder %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// auditJSON is the part of the --json report the tests read.
type auditJSON struct {
	Schema   string         `json:"schema"`
	Summary  map[string]int `json:"summary"`
	Problems []string       `json:"problems"`
	Findings []struct {
		Domain   string   `json:"domain"`
		Name     string   `json:"name"`
		Aliases  []string `json:"aliases"`
		Owner    string   `json:"owner"`
		Zone     string   `json:"zone"`
		Source   string   `json:"source"`
		Target   string   `json:"target"`
		Port     int      `json:"port"`
		Address  string   `json:"address"`
		Approved bool     `json:"approved"`
		Class    string   `json:"class"`
		Reason   string   `json:"reason"`
		Apps     []struct {
			Application string `json:"application"`
			Status      string `json:"status"`
			EPID        string `json:"epid"`
			HwID        string `json:"hwid"`
			Count       int    `json:"count"`
			HostKey     *struct {
				Group string `json:"group"`
				Kind  string `json:"kind"`
				Build int    `json:"build"`
				OS    string `json:"os"`
			} `json:"host_key"`
		} `json:"apps"`
		Workstation bool `json:"workstation"`
		Fix         *struct {
			Summary string `json:"summary"`
			GVLKs   []struct {
				Edition, Key string
			} `json:"gvlks"`
			Steps []string `json:"steps"`
		} `json:"fix"`
	} `json:"findings"`
}

func parseAudit(t *testing.T, out string) auditJSON {
	t.Helper()
	var a auditJSON
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("audit --json output is not JSON: %v\n%s", err, out)
	}
	return a
}

// classOf maps "target:port" to the class of its findings.
func classOf(a auditJSON) map[string]string {
	m := map[string]string{}
	for _, f := range a.Findings {
		m[strings.TrimSuffix(f.Target, ".")+":"+strconv.Itoa(f.Port)] = f.Class
	}
	return m
}

func TestAuditClassifiesEveryRecord(t *testing.T) {
	l := startAuditLab(t)
	dir := t.TempDir()
	core := harness.WriteFile(t, dir, "Corefile", approvedCorefile)
	prom := filepath.Join(dir, "audit.prom")
	p := strconv.Itoa
	args := []string{"audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(), "--domain", "corp.test", "--domain", "branch.corp.test", "--axfr",
		"--corefile", core, "--json", "--prometheus", prom, "--timeout", "5s"}
	code, out, errOut := runKMS(t, "", args...)
	if code != 3 {
		t.Fatalf("exit code %d, want 3 (rogue or stale found)\n%s\n%s", code, out, errOut)
	}
	a := parseAudit(t, out)
	if len(a.Problems) != 0 {
		t.Errorf("problems: %v", a.Problems)
	}
	if a.Schema != "kmsdns-audit/v1" {
		t.Errorf("schema %q", a.Schema)
	}
	want := map[string]string{
		"kms1.corp.test:" + p(l.kms1.Port):    "healthy",
		"pc42.corp.test:" + p(l.ws.Port):      "rogue",
		"gone.corp.test:" + p(l.deadPort):     "rogue-dead",
		"oldkms.corp.test:" + p(l.stalePort):  "stale",
		"web.corp.test:" + p(l.kms1.Admin):    "not-kms",
		"nohost.corp.test:1688":               "unresolvable",
		"pc7.child.corp.test:" + p(l.ws.Port): "rogue",
		"srv7.corp.test:" + p(l.srv.Port):     "rogue",
	}
	got := classOf(a)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: class %q, want %q", k, got[k], v)
		}
	}
	for _, f := range a.Findings {
		switch strings.TrimSuffix(f.Target, ".") + ":" + p(f.Port) {
		case "pc42.corp.test:" + p(l.ws.Port):
			if f.Owner != "_vlmcs._tcp.corp.test." {
				continue
			}
			if !f.Workstation || len(f.Apps) == 0 || f.Apps[0].HostKey == nil || f.Apps[0].HostKey.Group != "windows-10-2019" || f.Apps[0].HostKey.Kind != "client" {
				t.Errorf("pc42 not identified as a workstation with windows-10-2019: %+v", f)
			}
			if f.Apps[0].HwID == "" || f.Apps[0].EPID == "" || f.Apps[0].Count != 1 {
				t.Errorf("pc42: ePID %q HwId %q count %d, want both and count 1", f.Apps[0].EPID, f.Apps[0].HwID, f.Apps[0].Count)
			}
			if f.Fix == nil || len(f.Fix.GVLKs) == 0 || !strings.Contains(strings.Join(f.Fix.Steps, "\n"), "slmgr /ipk") {
				t.Errorf("pc42: no GVLK fix: %+v", f.Fix)
			} else if !slices.ContainsFunc(f.Fix.GVLKs, func(g struct{ Edition, Key string }) bool { return g.Key == "NPPR9-FWDCX-D2C8J-H872K-2YT43" }) {
				t.Errorf("pc42: GVLKs %+v lack Windows 10/11 Enterprise's", f.Fix.GVLKs)
			}
			if !strings.Contains(f.Reason, "refuses Office 2010, Office 2013+") {
				t.Errorf("pc42: reason %q does not name the refused applications", f.Reason)
			}
		case "srv7.corp.test:" + p(l.srv.Port):
			if f.Domain != "branch.corp.test." || f.Owner != "_vlmcs._tcp.pool.other.test." || len(f.Aliases) != 1 {
				t.Errorf("srv7 via CNAME: domain %q owner %q aliases %v", f.Domain, f.Owner, f.Aliases)
			}
			if f.Workstation || len(f.Apps) == 0 || f.Apps[0].HostKey == nil || f.Apps[0].HostKey.Group != "windows-server-2019" || f.Apps[0].HostKey.Kind != "server" {
				t.Errorf("srv7 not identified as windows-server-2019: %+v", f.Apps)
			}
		case "kms1.corp.test:" + p(l.kms1.Port):
			if len(f.Apps) != 0 {
				t.Errorf("approved kms1 got KMS requests under --identify unapproved: %+v", f.Apps)
			}
		case "pc7.child.corp.test:" + p(l.ws.Port):
			if f.Source != "axfr" || f.Domain != "child.corp.test." {
				t.Errorf("child record: source %q domain %q", f.Source, f.Domain)
			}
		}
	}
	// The textfile collector output.
	b, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`kmsdns_audit_records{class="healthy",domain="corp.test"} 1`,
		`kmsdns_audit_records{class="stale",domain="corp.test"} 1`,
		`kmsdns_audit_records{class="rogue",domain="child.corp.test"} 1`,
		`kmsdns_audit_records{class="rogue",domain="branch.corp.test"} 1`,
		"kmsdns_audit_last_run_timestamp_seconds ",
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("prometheus file lacks %q:\n%s", line, b)
		}
	}
	// A second audit counts the audit client once: the workstation's count stays 1.
	_, out2, _ := runKMS(t, "", args...)
	for _, f := range parseAudit(t, out2).Findings {
		if strings.HasPrefix(f.Target, "pc42.") && len(f.Apps) > 0 && f.Apps[0].Count != 1 {
			t.Errorf("second audit: pc42 count %d, want 1 (one fixed audit client ID)", f.Apps[0].Count)
		}
	}
	// The table groups by class, rogue first, healthy last.
	code, table, _ := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(), "--domain", "corp.test", "--approve", "kms1.corp.test", "--approve", "oldkms.corp.test")
	if code != 3 {
		t.Errorf("table run: exit %d", code)
	}
	iRogue, iStale, iHealthy := strings.Index(table, "ROGUE:"), strings.Index(table, "STALE:"), strings.Index(table, "HEALTHY:")
	if iRogue < 0 || iStale < iRogue || iHealthy < iStale {
		t.Errorf("table not grouped rogue, stale, healthy:\n%s", table)
	}
	if !strings.Contains(table, "scrub corp.test") || !strings.Contains(table, "approve kms1.corp.test") {
		t.Errorf("table lacks the vlmcs scrub block:\n%s", table)
	}
	t.Logf("table:\n%s", table)
}

// TestAuditJSONSchema pins the --json field names: scripts depend on them.
func TestAuditJSONSchema(t *testing.T) {
	l := startAuditLab(t)
	_, out, _ := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(), "--domain", "ws.corp.test", "--approve", "kms1.corp.test", "--json")
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		sort.Strings(k)
		return strings.Join(k, ",")
	}
	if got, want := keys(top), "axfr,dns_server,domains,duration_seconds,findings,identify,problems,schema,started,summary"; got != want {
		t.Errorf("report keys %s, want %s", got, want)
	}
	var fs []map[string]json.RawMessage
	if err := json.Unmarshal(top["findings"], &fs); err != nil || len(fs) != 1 {
		t.Fatalf("findings: %v (%d)", err, len(fs))
	}
	if got, want := keys(fs[0]), "address,alias,aliases,approved,apps,class,domain,fix,name,owner,port,priority,probe,reason,source,target,ttl,weight,workstation,zone"; got != want {
		t.Errorf("finding keys %s, want %s", got, want)
	}
	var apps []map[string]json.RawMessage
	if err := json.Unmarshal(fs[0]["apps"], &apps); err != nil || len(apps) != 3 {
		t.Fatalf("apps: %v (%d)", err, len(apps))
	}
	if got, want := keys(apps[0]), "application,count,counted_id,counted_name,epid,error,host_key,hresult,hwid,status"; got != want {
		t.Errorf("app keys %s, want %s", got, want)
	}
	var hk map[string]json.RawMessage
	if err := json.Unmarshal(apps[0]["host_key"], &hk); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(hk), "activated,build,channel,csvlk_id,description,epid_group,group,key_id,kind,os"; got != want {
		t.Errorf("host_key keys %s, want %s", got, want)
	}
}

func TestAuditExitCodes(t *testing.T) {
	l := startAuditLab(t)
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"clean: only the approved healthy host", []string{"--domain", "kms.corp.test", "--approve", "kms1.corp.test"}, 0},
		{"rogue found", []string{"--domain", "ws.corp.test", "--approve", "kms1.corp.test"}, 3},
		{"stale found", []string{"--domain", "dead.corp.test", "--approve", "gone.corp.test"}, 3},
		{"no approve rule: an inventory, every host unapproved", []string{"--domain", "kms.corp.test"}, 3},
		{"no approve rule with --fix", []string{"--domain", "kms.corp.test", "--fix", "--yes"}, 64},
		{"bad identify", []string{"--domain", "kms.corp.test", "--approve", "x.test", "--identify", "some"}, 64},
		{"DNS server down", []string{"--dns", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), "--domain", "kms.corp.test", "--approve", "x.test", "--timeout", "500ms"}, 1},
	}
	for _, c := range cases {
		args := append([]string{"audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr()}, c.args...)
		code, out, errOut := runKMS(t, "", args...)
		if code != c.want {
			t.Errorf("%s: exit %d, want %d\n%s%s", c.name, code, c.want, out, errOut)
		}
	}
	// --identify all asks approved hosts too; --identify none asks nobody.
	_, out, _ := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(), "--domain", "kms.corp.test", "--approve", "kms1.corp.test", "--identify", "all", "--json")
	a := parseAudit(t, out)
	if len(a.Findings) != 1 || len(a.Findings[0].Apps) != 3 || a.Findings[0].Apps[0].HostKey == nil || a.Findings[0].Apps[0].HostKey.Group != "windows-server-2025" {
		t.Errorf("--identify all: %+v", a.Findings)
	}
	_, out, _ = runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", l.dns.Addr(), "--domain", "ws.corp.test", "--approve", "kms1.corp.test", "--identify", "none", "--json")
	a = parseAudit(t, out)
	if len(a.Findings) != 1 || len(a.Findings[0].Apps) != 0 || a.Findings[0].Class != "rogue" {
		t.Errorf("--identify none: %+v", a.Findings)
	}
}
