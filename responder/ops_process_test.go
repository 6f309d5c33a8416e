package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// TestProcessConfigErrors: configuration mistakes stop serve before it
// listens, with exit 64 and the file, line and reason on stderr.
func TestProcessConfigErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tests := []struct {
		name string
		yaml string
		args []string
		want string // on stderr; {file} is the config file
	}{
		{"unknown key", "groups: [windows-server-2025]\ndata: " + data + "\nlisten: ['127.0.0.1:1']\nbogus: 1\n", nil,
			"{file}:4: bogus: unknown setting"},
		{"unknown nested key", "groups: [windows-server-2025]\nregister:\n  zone: example.test\n  zonee: x\n", nil,
			"{file}:4: register.zonee: unknown setting; did you mean \"zone\"?"},
		{"bad value", "groups: [windows-server-2025]\n\nrenewal_interval: 99999\n", nil,
			"{file}:3: renewal_interval: 99999 minutes is outside 15-43200"},
		{"bad listen", "groups: [windows-server-2025]\nlisten:\n  - 127.0.0.1\n", nil,
			"{file}:2: listen: \"127.0.0.1\" is not ADDRESS:PORT"},
		{"bad duration", "groups: [windows-server-2025]\nio_timeout: soon\n", nil,
			"{file}:2: io_timeout: \"soon\" is not a duration"},
		{"no group in file", "listen: ['127.0.0.1:1']\n", nil,
			"no host key group configured: run `kms-responder catalog`"},
		{"no group at all", "", []string{"--listen", "127.0.0.1:1"},
			"no host key group configured: run `kms-responder catalog`"},
		{"unknown group", "groups: [windows-server-2099]\nlisten: ['127.0.0.1:1']\ndata: " + data + "\n", nil,
			"unknown host key group \"windows-server-2099\"; did you mean one of \"windows-server-2019\""},
		{"typo with a suggestion", "groups: windows-server-2025\nactivation_intervall: 2h\n", nil,
			"{file}:2: activation_intervall: unknown setting; did you mean \"activation_interval\"?"},
		{"type error", "groups: windows-server-2025\nmax_connections: lots\n", nil,
			"{file}:2: max_connections: want a whole number, got \"lots\""},
		{"bad flag value", "", []string{"--group", "windows-server-2025", "--max-connections", "0"},
			"--max-connections: must be at least 1"},
		{"bad per-address cap", "", []string{"--group", "windows-server-2025", "--max-connections-per-address", "0"},
			"--max-connections-per-address: must be at least 1"},
		{"bad body timeout", "groups: [windows-server-2025]\nbody_timeout: 0s\n", nil,
			"{file}:2: body_timeout: must be positive"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"serve"}
			file := ""
			if tc.yaml != "" {
				file = filepath.Join(dir, fmt.Sprintf("kms%d.yaml", i))
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", file)
			}
			args = append(args, tc.args...)
			stdout, stderr, code := runCLI(t, args...)
			want := strings.ReplaceAll(tc.want, "{file}", file)
			if code != exitUsage || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 64 and %q", code, stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			if strings.Contains(stderr, "kms-responder serving") {
				t.Errorf("serve started despite the error")
			}
		})
	}
}

// TestProcessStatusAndMetrics checks `status`, `status --json`, /metrics
// and /healthz of a serving responder after a known set of requests.
func TestProcessStatusAndMetrics(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--group", "office-ltsc-2024",
		"--activation-interval", "60", "--renewal-interval", "1440")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	office := testProduct(t, clientFlags{product: "Office LTSC Professional Plus 2024"})
	retail := testProduct(t, clientFlags{app: windowsApp, kmsID: win10RetailID})
	var winEPID string
	cmid := kmsclient.RandomCMID() // the first client, looked up in the log
	for i := range 2 {
		id := cmid
		if i > 0 {
			id = kmsclient.RandomCMID()
		}
		a, err := activateGo(ctx, p.Addr, win, id, true, 1)
		if err != nil {
			t.Fatal(err)
		}
		winEPID = a.out.Response.EPID
	}
	if _, err := activateGo(ctx, p.Addr, office, kmsclient.RandomCMID(), true, 1); err != nil {
		t.Fatal(err)
	}
	a, err := activateGo(ctx, p.Addr, retail, kmsclient.RandomCMID(), true, 1)
	if err != nil || a.out.Status != kms.ErrKMSIDMismatch {
		t.Fatalf("retail: %+v, %v", a.out, err)
	}

	st := statusOf(t, p)
	if st.Schema != "kmsdns-status/v1" {
		t.Errorf("status schema %q, want kmsdns-status/v1", st.Schema)
	}
	if len(st.Listeners) != 1 || st.Listeners[0] != p.Addr {
		t.Errorf("listeners %v, want [%s]", st.Listeners, p.Addr)
	}
	if len(st.Groups) != 2 || st.Groups[0].Name != "windows-server-2025" || st.Groups[0].EPID != winEPID ||
		st.Groups[1].Name != "office-ltsc-2024" || st.Groups[1].EPID == "" {
		t.Errorf("groups %+v, want windows-server-2025 (ePID %s) and office-ltsc-2024", st.Groups, winEPID)
	}
	if n := countOf(st, "Windows"); n != 2 {
		t.Errorf("Windows count %d, want 2", n)
	}
	if n := countOf(st, "Office 2013 and later"); n != 1 {
		t.Errorf("Office count %d, want 1", n)
	}
	if st.ActivationInterval != 60 || st.RenewalInterval != 1440 || st.LastRequest == nil || !st.Ledger.Healthy || len(st.HwID) != 16 {
		t.Errorf("intervals %d/%d, last request %v, ledger %+v, HwId %q", st.ActivationInterval, st.RenewalInterval, st.LastRequest, st.Ledger, st.HwID)
	}
	if ok, refused := st.Requests[kms.OK.Error()], st.Requests[kms.ErrKMSIDMismatch.Error()]; ok != 3 || refused != 1 {
		t.Errorf("requests by result %v, want 3 S_OK and 1 0xC004F042", st.Requests)
	}

	stdout, _, code := runCLI(t, "status", "--admin", p.Admin)
	for _, want := range []string{"Host key group:        windows-server-2025", "KMS host ePID:         " + winEPID,
		"Current count (Windows): 2 distinct clients in the last 30 days (cap 50", "Activation interval:   60 minutes", "DNS registration:      off",
		"Requests:              4 total, 3 answered, 1 refused", "Requests by the licence state clients reported:"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("status (exit %d) lacks %q:\n%s", code, want, stdout)
		}
	}

	// The ledger's record counter may trail the answers by a commit.
	body := httpGet(t, "http://"+p.Admin+"/metrics", http.StatusOK)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(body, "kms_responder_ledger_refusal_records 1\n") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		body = httpGet(t, "http://"+p.Admin+"/metrics", http.StatusOK)
	}
	for _, re := range []string{
		`kms_responder_requests_total\{application="Windows",group="windows-server-2025",protocol="6",result="activated"\} 2\n`,
		`kms_responder_requests_total\{application="Office 2013 and later",group="office-ltsc-2024",protocol="6",result="activated"\} 1\n`,
		`kms_responder_requests_total\{application="Windows",group="unknown",protocol="6",result="product_not_served"\} 1\n`,
		`kms_responder_current_count\{application="Windows"\} 2\n`,
		`kms_responder_count_cap\{application="Windows"\} 50\n`,
		`kms_responder_request_duration_seconds_count\{protocol="6"\} 4\n`,
		`kms_responder_ledger_stored_clients 3\n`, // answered clients; the refused one is a refusal record
		`kms_responder_ledger_pending_activations [0-9]+\n`,
		`kms_responder_ledger_refusal_records 1\n`,
		`kms_responder_ledger_refusal_records_dropped_total 0\n`,
		`kms_responder_ledger_size_bytes [1-9][0-9]*\n`,
		`kms_responder_ledger_healthy 1\n`,
		`kms_responder_open_connections [0-9]+\n`,
		`kms_responder_seconds_since_last_request [0-9.e+-]+\n`,
		`kms_responder_connection_events_total\{event="[a-z_]+"\} [1-9]`,
		`kms_responder_max_connections [1-9][0-9]*\n`,
		`kms_responder_max_connections_per_address 128\n`,
		`kms_responder_connection_timeout_seconds\{timeout="body"\} 2\n`,
		`kms_responder_connection_timeout_seconds\{timeout="first_pdu"\} [0-9.]+\n`,
		`kms_responder_connection_timeout_seconds\{timeout="idle"\} [0-9.]+\n`,
		`kms_responder_connection_timeout_seconds\{timeout="io"\} [0-9.]+\n`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
	if got := httpGet(t, "http://"+p.Admin+"/healthz", http.StatusOK); got != "OK\n" {
		t.Errorf("/healthz: %q", got)
	}

	// One structured log line per request with the event-12290 fields;
	// refusals say why.
	var answered, refused map[string]any
	for line := range strings.SplitSeq(p.Stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch rec["msg"] {
		case "kms request answered":
			if rec["cmid"] == cmid.String() {
				answered = rec
			}
		case "kms request refused":
			refused = rec
		}
	}
	for _, f := range []string{"workstation", "peer", "app", "counted_id", "product", "sku", "edition", "min_count", "count",
		"client_time", "license_state", "protocol", "group", "result"} {
		if _, ok := answered[f]; !ok {
			t.Errorf("log line of an answered request lacks %q: %v", f, answered)
		}
	}
	if answered["result"] != "0x00000000" || answered["workstation"] != "process-test" || answered["group"] != "windows-server-2025" {
		t.Errorf("log line of an answered request: %v", answered)
	}
	if r, _ := refused["reason"].(string); refused["result"] != "0xC004F042" || !strings.Contains(r, "retail") {
		t.Errorf("log line of the refused retail request: %v", refused)
	}
}

func httpGet(t testing.TB, url string, wantStatus int) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: %s, want %d", url, resp.Status, wantStatus)
	}
	return string(b)
}

// TestProcessAllowClient: with --allow-client, a connection from another
// network is closed before anything is answered, and counted as refused.
func TestProcessAllowClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})

	denied := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--allow-client", "127.0.0.2/32")
	if a, err := activateGo(ctx, denied.Addr, win, kmsclient.RandomCMID(), true, 1); err == nil {
		t.Fatalf("a client outside --allow-client was answered: %+v", a.out)
	}
	stdout, _, code := runCLI(t, "activate", "--server", denied.Addr, "--product", "Windows 10/11 Enterprise")
	if code != exitError {
		t.Errorf("activate from a refused network: exit %d, want 1\n%s", code, stdout)
	}
	body := httpGet(t, "http://"+denied.Admin+"/metrics", http.StatusOK)
	if !regexp.MustCompile(`kms_responder_connection_events_total\{event="conn_refused"\} 2\n`).MatchString(body) {
		t.Errorf("/metrics does not count 2 refused connections:\n%s", grepLines(body, "connection_events"))
	}
	if st := statusOf(t, denied); len(st.Requests) != 0 || countOf(st, "Windows") > 0 {
		t.Errorf("refused connections reached the host: %v", st.Requests)
	}

	allowed := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--allow-client", "127.0.0.0/30")
	a, err := activateGo(ctx, allowed.Addr, win, kmsclient.RandomCMID(), true, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, "allowed network", a, 1)
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkDualStack activates over 127.0.0.1 and [::1] on port.
func checkDualStack(t *testing.T, p *harness.Responder, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	st := statusOf(t, p)
	want := []string{"0.0.0.0:" + strconv.Itoa(port), "[::]:" + strconv.Itoa(port)}
	if strings.Join(st.Listeners, " ") != strings.Join(want, " ") {
		t.Errorf("listeners %v, want %v", st.Listeners, want)
	}
	for i, host := range []string{"127.0.0.1", "::1"} {
		a, err := activateGo(ctx, net.JoinHostPort(host, strconv.Itoa(port)), win, kmsclient.RandomCMID(), true, 1)
		if err != nil {
			t.Fatalf("activate over %s: %v", host, err)
		}
		wantAnswer(t, host, a, uint32(i+1))
	}
	if strings.Contains(p.Stderr.String(), "cannot listen") {
		t.Errorf("serve skipped an address family:\n%s", p.Stderr.String())
	}
}

// TestProcessWildcardListen: --listen :PORT opens tcp4 and tcp6 wildcard
// sockets separately (no "address in use" between them) and serves both.
func TestProcessWildcardListen(t *testing.T) {
	port := harness.FreeWildcardPort(t)
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--listen", ":"+strconv.Itoa(port))
	checkDualStack(t, p, port)
}

// TestProcessDefaultListen runs serve without --listen: every IPv4 and IPv6
// address on port 1688. It needs port 1688 free on this machine.
func TestProcessDefaultListen(t *testing.T) {
	harness.ProcessBinary(t, "kms-responder")
	if !harness.BothFamiliesFree(1688) {
		t.Skip("port 1688 is in use on 0.0.0.0 or [::]; the default listen addresses cannot be tested here (TestProcessWildcardListen covers :PORT)")
	}
	p := harness.StartResponderWith(t, harness.ResponderOptions{NoListen: true}, t.TempDir(), "--group", "windows-server-2025")
	checkDualStack(t, p, 1688)
}

// TestProcessListenInUse: a wildcard port taken by another socket is an
// error (exit 1), not a silently skipped address family.
func TestProcessListenInUse(t *testing.T) {
	harness.ProcessBinary(t, "kms-responder")
	ln, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 on this machine: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, stderr, code := runCLI(t, "serve", "--group", "windows-server-2025", "--data", t.TempDir(), "--metrics", "",
		"--listen", ":"+strconv.Itoa(port))
	if code != exitError || !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve on a taken port: exit %d, want 1 and \"address already in use\":\n%s", code, stderr)
	}
}

// TestProcessLedgerDisabled: --ledger=false (benchmarks only) writes
// nothing to --data, says so in status, and forgets counts at restart.
func TestProcessLedgerDisabled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	data := filepath.Join(t.TempDir(), "never-created")
	for range 2 {
		p := harness.StartResponder(t, data, "--group", "windows-server-2025", "--ledger=false")
		a, err := activateGo(ctx, p.Addr, win, kmsclient.RandomCMID(), true, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, "without ledger", a, 1)
		st := statusOf(t, p)
		if !st.Ledger.Disabled || st.Ledger.Healthy {
			t.Errorf("status ledger %+v, want disabled", st.Ledger)
		}
		if body := httpGet(t, "http://"+p.Admin+"/metrics", http.StatusOK); strings.Contains(body, "kms_responder_ledger_") {
			t.Errorf("/metrics reports a ledger that is disabled")
		}
		if code := p.Stop(syscall.SIGTERM); code != 0 {
			t.Errorf("SIGTERM: exit %d", code)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("--ledger=false touched --data: %v", err)
	}
}
