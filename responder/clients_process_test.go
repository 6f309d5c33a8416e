package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/statusapi"
	"github.com/kmsdns/kmsdns/test/harness"
)

func clientsJSON(t *testing.T, args ...string) statusapi.ClientList {
	t.Helper()
	stdout, stderr, code := runCLI(t, append([]string{"clients", "--format", "json"}, args...)...)
	if code != exitOK {
		t.Fatalf("clients %v: exit %d\n%s", args, code, stderr)
	}
	var d statusapi.ClientList
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("clients %v: %v\n%s", args, err, stdout)
	}
	if d.Error != "" {
		t.Fatalf("clients %v: listing error %s", args, d.Error)
	}
	return d
}

func activateCLI(t *testing.T, server, product, cmid, workstation string, extra ...string) {
	t.Helper()
	args := append([]string{"activate", "--server", server, "--cmid", cmid, "--workstation", workstation}, extra...)
	if product != "" {
		args = append(args, "--product", product)
	}
	if _, stderr, code := runCLI(t, args...); code != exitOK && code != exitLowCount && len(extra) == 0 {
		t.Fatalf("activate %v: exit %d\n%s", args, code, stderr)
	}
}

// TestProcessClients: after activations of several products from IPv4 and
// IPv6 addresses (through the vlmcs-like `activate`), one refused and one
// machine ID sent from two workstation names, `clients` lists one row per
// (CMID, application) newest first with edition, product, address, state,
// count window and result; table (summary first, fits 100 columns), JSON
// and CSV agree; filters select; paging with a cursor covers every row
// once; the shared CMID is flagged in the listing and the metrics.
func TestProcessClients(t *testing.T) {
	bin := harness.ProcessBinary(t, "kms-responder")
	_ = bin
	v6 := true
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		v6 = false
	} else {
		ln.Close()
	}
	args := []string{"--group", "windows-server-2025", "--group", "office-ltsc-2024", "--listen", "127.0.0.1:{port}"}
	if v6 {
		args = append(args, "--listen", "[::1]:{port}")
	}
	p := harness.StartResponder(t, t.TempDir(), args...)
	v6addr := "[::1]:" + strconv.Itoa(p.Port)
	if !v6 {
		v6addr = p.Addr
	}
	start := time.Now().Add(-time.Second)
	for i := 1; i <= 3; i++ {
		activateCLI(t, p.Addr, "Windows 11 Enterprise", "random", "win-"+strconv.Itoa(i))
	}
	activateCLI(t, v6addr, "Windows Server 2025 Datacenter", "random", "srv-1")
	shared := "11111111-2222-4333-8444-555555555555"
	activateCLI(t, p.Addr, "Office LTSC Professional Plus 2024", shared, "office-a")
	activateCLI(t, p.Addr, "Office LTSC Professional Plus 2024", shared, "office-b")
	// An unknown counted ID: refused, recorded.
	activateCLI(t, p.Addr, "", "random", "stranger-with-a-rather-long-workstation-name", "--app", "55c92734-d682-4d71-983e-d6ec3f16059f",
		"--kms-id", "01234567-89ab-4def-8123-456789abcdef", "--sku", "01234567-89ab-4def-8123-456789abcde0", "--protocol", "6")

	all := clientsJSON(t, "--admin", p.Admin)
	if len(all.Clients) != 6 || all.Next != "" {
		t.Fatalf("%d rows (next %q), want 6:\n%+v", len(all.Clients), all.Next, all.Clients)
	}
	by := map[string]statusapi.ClientRow{}
	for i, r := range all.Clients {
		by[r.Workstation] = r
		if i > 0 && r.LastRequest.After(all.Clients[i-1].LastRequest) {
			t.Errorf("row %d (%s) is newer than row %d: not newest first", i, r.Workstation, i-1)
		}
		if r.LastRequest.Before(start) || r.FirstRequest.After(r.LastRequest) || r.CMID == "" || r.SKU == "" {
			t.Errorf("row %+v: times or IDs wrong", r)
		}
		if r.State == statusapi.StateCounted && (r.CountedUntil.Sub(r.LastCounted) != 30*24*time.Hour || r.LastCounted.IsZero()) {
			t.Errorf("%s: counted until %v, last counted %v: not a 30-day window", r.Workstation, r.CountedUntil, r.LastCounted)
		}
	}
	if all.Clients[0].State != statusapi.StateRefused || all.Clients[0].LastResult != "SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH" ||
		all.Clients[0].LastResultHex != "0xC004F042" || !all.Clients[0].CountedUntil.IsZero() {
		t.Errorf("newest row is not the refusal: %+v", all.Clients[0])
	}
	if r := by["win-2"]; r.Edition != "Windows 10/11 Enterprise" || r.Product != "Windows 10/11 (Volume)" || r.Application != "Windows" ||
		r.Address != "127.0.0.1" || r.State != statusapi.StateCounted || r.LastResult != "S_OK" || r.Requests != 1 || r.CMIDConflict != "" {
		t.Errorf("win-2: %+v", r)
	}
	if r := by["srv-1"]; !strings.Contains(r.Edition, "Server 2025 Datacenter") || v6 && r.Address != "::1" {
		t.Errorf("srv-1: %+v", r)
	}
	if r := by["office-b"]; r.CMID != shared || r.Requests != 2 || r.CMIDConflict != "workstations" ||
		strings.Join(r.SeenAs, ",") != "office-a,office-b" || r.Product != "Office LTSC 2024" {
		t.Errorf("office-b (shared CMID): %+v", r)
	}
	if _, ok := by["office-a"]; ok {
		t.Error("the shared CMID has two rows; the record keeps the latest name")
	}

	// CSV carries the same rows, every field, in the same order.
	out, stderr, code := runCLI(t, "clients", "--admin", p.Admin, "--format", "csv")
	if code != exitOK {
		t.Fatalf("csv: exit %d %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 7 || strings.Join(recs[0], ",") != strings.Join(statusapi.ClientCSVHeader, ",") {
		t.Fatalf("csv: %v, %d records, header %v", err, len(recs), recs[0])
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for i, rec := range recs[1:] {
		r := all.Clients[i]
		if rec[col["cmid"]] != r.CMID || rec[col["workstation"]] != r.Workstation || rec[col["state"]] != r.State ||
			rec[col["edition"]] != r.Edition || rec[col["last_request"]] != r.LastRequest.Format(time.RFC3339) {
			t.Errorf("csv row %d %v differs from JSON %+v", i, rec, r)
		}
	}

	// The table: summary first, rows that fit 100 columns, cut names.
	out, stderr, code = runCLI(t, "clients", "--admin", p.Admin)
	if code != exitOK {
		t.Fatalf("table: exit %d %s", code, stderr)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "Clients:            6 (counted 5, expired 0, refused 1)") {
		t.Errorf("first line %q is not the client summary", lines[0])
	}
	for _, want := range []string{"Renewing on time:   5", "Stopped coming:     0", "By product:", "Windows 10/11 (Volume)                          3 (3 counted)",
		"127.0.0.0/24                                    6", "Shared machine IDs: 1", "counted!", "stranger-with-…"} {
		if v6 && strings.HasPrefix(want, "127.0.0.0/24") {
			want = strings.Replace(want, " 6", " 5", 1)
		}
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	header := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "LAST REQUEST") {
			header = i
		}
		if len([]rune(l)) > 100 {
			t.Errorf("table line wider than 100 columns: %q", l)
		}
	}
	if header < 0 || len(lines)-header < 7 {
		t.Errorf("table has no header or not 6 rows:\n%s", out)
	}
	if out, _, _ := runCLI(t, "clients", "--admin", p.Admin, "--wide"); !strings.Contains(out, "stranger-with-a-rather-long-workstation-name") || !strings.Contains(out, shared) {
		t.Errorf("--wide cuts names or lacks the CMID:\n%s", out)
	}

	// Filters.
	for _, tc := range []struct {
		args []string
		want []string // workstations
	}{
		{[]string{"--product", "server 2025"}, []string{"srv-1"}},
		{[]string{"--product", "Windows 10/11 Enterprise"}, []string{"win-3", "win-2", "win-1"}},
		{[]string{"--app", "office"}, []string{"office-b"}},
		{[]string{"--app", "0ff1ce15-a989-479d-af46-f275c6370663"}, []string{"office-b"}},
		{[]string{"--state", "refused"}, []string{"stranger-with-a-rather-long-workstation-name"}},
		{[]string{"--state", "expired"}, nil},
		{[]string{"--address", "::1/128"}, map[bool][]string{true: {"srv-1"}, false: nil}[v6]},
		{[]string{"--address", "127.0.0.0/8", "--product", "Office"}, []string{"office-b"}},
		{[]string{"--since", "1h"}, []string{"*6"}},
		{[]string{"--since", time.Now().Add(24 * time.Hour).Format("2006-01-02")}, nil},
		// Times int64 nanoseconds cannot hold are clamped, not wrapped:
		// before every record is everyone, after the last possible none.
		{[]string{"--since", "1600-01-01"}, []string{"*6"}},
		{[]string{"--since", "0001-01-01T00:00:00Z"}, []string{"*6"}},
		{[]string{"--since", "2262-04-12T00:00:00Z"}, nil},
		{[]string{"--since", "9999-12-31"}, nil},
	} {
		d := clientsJSON(t, append([]string{"--admin", p.Admin}, tc.args...)...)
		var got []string
		for _, r := range d.Clients {
			got = append(got, r.Workstation)
		}
		if len(tc.want) == 1 && tc.want[0] == "*6" {
			if len(got) != 6 {
				t.Errorf("%v: %v, want all 6", tc.args, got)
			}
			continue
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%v: %v, want %v", tc.args, got, tc.want)
		}
	}
	if _, stderr, code := runCLI(t, "clients", "--admin", p.Admin, "--state", "gone"); code != exitUsage || !strings.Contains(stderr, "counted, expired or refused") {
		t.Errorf("--state gone: exit %d %s", code, stderr)
	}

	// Paging: pages of 4 then 2 resume with the cursor; every row once, in
	// the full listing's order.
	var paged []string
	after := ""
	for range 5 {
		args := []string{"--admin", p.Admin, "--limit", "4"}
		if after != "" {
			args = append(args, "--after", after)
		}
		d := clientsJSON(t, args...)
		for _, r := range d.Clients {
			paged = append(paged, r.CMID+"/"+r.ApplicationID)
		}
		if after = d.Next; after == "" {
			break
		}
	}
	var want []string
	for _, r := range all.Clients {
		want = append(want, r.CMID+"/"+r.ApplicationID)
	}
	if strings.Join(paged, " ") != strings.Join(want, " ") {
		t.Errorf("paged listing\n%v\nwant\n%v", paged, want)
	}
	if _, stderr, _ := runCLI(t, "clients", "--admin", p.Admin, "--limit", "2"); !strings.Contains(stderr, "more clients: continue with --after ") {
		t.Errorf("table with --limit does not say how to continue: %s", stderr)
	}

	_, body := adminGet(t, p.Admin, p.Admin, "/metrics")
	if !strings.Contains(body, `kms_responder_cmid_conflicts{kind="workstation"} 1`) {
		t.Errorf("metrics lack the conflict:\n%s", grepLines(body, "cmid"))
	}
	if out, _, code := runCLI(t, "status", "--admin", p.Admin); code != exitOK ||
		!regexp.MustCompile(`Clients that will expire from the count in the next 7 days \(Windows\): 0 of 4`).MatchString(out) {
		t.Errorf("status lacks the 7-day expiry line:\n%s", out)
	}
}

// TestProcessClientsExport: a listing longer than one ledger chunk (1000
// rows) streams completely through the CLI, and a bad cursor is refused.
func TestProcessClientsExport(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")
	const n = 2500
	if out, stderr, code := runCLI(t, "bench", "--server", p.Addr, "--requests", strconv.Itoa(n), "--clients", strconv.Itoa(n), "--connections", "4"); code != exitOK {
		t.Fatalf("bench: exit %d\n%s%s", code, out, stderr)
	}
	d := clientsJSON(t, "--admin", p.Admin)
	seen := map[string]bool{}
	for _, r := range d.Clients {
		seen[r.CMID] = true
	}
	if len(d.Clients) != n || len(seen) != n {
		t.Fatalf("%d rows, %d distinct, want %d", len(d.Clients), len(seen), n)
	}
	out, _, code := runCLI(t, "clients", "--admin", p.Admin, "--summary", "--format", "json")
	var s statusapi.ClientSummary
	if code != exitOK || json.Unmarshal([]byte(out), &s) != nil || s.Clients != n || s.RenewingOnTime != n {
		t.Errorf("summary: exit %d %+v", code, s)
	}
	code, body := adminGet(t, p.Admin, p.Admin, "/clients?after=bm90LWEtY3Vyc29y")
	if code != http.StatusBadRequest || !strings.Contains(body, "not a cursor") {
		t.Errorf("bad cursor: %d %s", code, body)
	}
}

// TestProcessAdminToken: with --admin-token-file, /status and /clients
// need the bearer token (refusals answered 401, logged and counted),
// /metrics and /healthz stay open; the client commands send the token from
// --admin-token-file or $KMS_RESPONDER_ADMIN_TOKEN. serve refuses an admin
// address beyond loopback without a token, and a token file others can
// read.
func TestProcessAdminToken(t *testing.T) {
	dir := t.TempDir()
	tok := "3f1c0ffee0ddba11deadbeef00112233"
	tokFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "serve", "--group", "windows-server-2025", "--data", filepath.Join(dir, "d0"), "--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:0")
	if code != exitUsage || !strings.Contains(stderr, "listens beyond loopback") || !strings.Contains(stderr, "--admin-token-file") {
		t.Errorf("non-loopback admin without a token: exit %d\n%s", code, stderr)
	}
	open := filepath.Join(dir, "open-token")
	if err := os.WriteFile(open, []byte(tok), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, "serve", "--group", "windows-server-2025", "--data", filepath.Join(dir, "d1"), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--admin-token-file", open)
	if code != exitUsage || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("token file mode 0644: exit %d\n%s", code, stderr)
	}

	p := harness.StartResponder(t, filepath.Join(dir, "data"), "--group", "windows-server-2025", "--admin-token-file", tokFile)
	activateCLI(t, p.Addr, "Windows 11 Enterprise", "random", "pc-1")
	get := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.Admin+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/status", "/clients", "/clients/summary"} {
		if c := get(path, ""); c != http.StatusUnauthorized {
			t.Errorf("%s without token: %d", path, c)
		}
		if c := get(path, "Bearer "+tok[:len(tok)-1]+"0"); c != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", path, c)
		}
		if c := get(path, "Bearer "+tok); c != http.StatusOK {
			t.Errorf("%s with the token: %d", path, c)
		}
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		if c := get(path, ""); c != http.StatusOK {
			t.Errorf("%s without token: %d, want open", path, c)
		}
	}
	_, body := adminGet(t, p.Admin, p.Admin, "/metrics")
	if !strings.Contains(body, `kms_responder_admin_refused_total{reason="token"} 6`) {
		t.Errorf("token refusals not counted:\n%s", grepLines(body, "admin_refused"))
	}
	if !strings.Contains(p.Stderr.String(), "admin request refused: no bearer token") || strings.Contains(p.Stderr.String(), tok) {
		t.Errorf("refusal not logged, or the token is:\n%s", grepLines(p.Stderr.String(), "refused"))
	}

	if _, stderr, code := runCLI(t, "clients", "--admin", p.Admin); code != exitError || !strings.Contains(stderr, "--admin-token-file") {
		t.Errorf("clients without token: exit %d %s", code, stderr)
	}
	if out, stderr, code := runCLI(t, "clients", "--admin", "http://"+p.Admin, "--admin-token-file", tokFile); code != exitOK || !strings.Contains(out, "pc-1") {
		t.Errorf("clients with --admin-token-file and a URL: exit %d %s%s", code, out, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cmd := range [][]string{{"status", "--admin", p.Admin}, {"clients", "--admin", p.Admin}} {
		c := exec.CommandContext(ctx, harness.ProcessBinary(t, "kms-responder"), cmd...)
		c.Env = append(os.Environ(), statusapi.TokenEnv+"="+tok)
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("%v with $%s: %v\n%s", cmd, statusapi.TokenEnv, err, out)
		}
	}
}
