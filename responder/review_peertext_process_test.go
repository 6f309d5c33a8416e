package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReviewAdminEndpointTextReachesTerminal: `status` and `clients` talk
// to whatever answers on the admin address; any local user can bind it
// (port 9688 needs no privilege) while serve is stopped or restarting, and
// `--admin URL` may name a proxy. The table path escapes rows, but three
// paths print that endpoint's bytes raw: an error response's body (status
// line and text), `status --json` / `clients --format json|csv` (streamed
// through as received) and the Kms-Next-Cursor trailer. Expected safe
// behaviour: nothing an admin endpoint sends reaches the terminal as a
// control sequence (escape it, or refuse a document that is not valid
// JSON/CSV of printable text).
func TestReviewAdminEndpointTextReachesTerminal(t *testing.T) {
	const evil = "\x1b]0;PWNED\x07\x1b[2J\u009b31m"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/status":
			http.Error(w, "ledger is "+evil, http.StatusServiceUnavailable)
		case r.URL.Path == "/clients" && r.URL.Query().Get("format") == "csv":
			w.Header().Set("Trailer", "Kms-Next-Cursor")
			w.Header().Set("Content-Type", "text/csv")
			_, _ = w.Write([]byte("cmid,workstation\nx," + evil + "\n"))
			w.Header().Set("Kms-Next-Cursor", "AAAA"+evil)
		case r.URL.Path == "/clients":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"clients": [{"workstation": "` + evil + `"}]}` + "\n"))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, args := range [][]string{
		{"status", "--admin", addr},
		{"status", "--admin", addr, "--json"},
		{"clients", "--admin", addr, "--format", "json"},
		{"clients", "--admin", addr, "--format", "csv", "--limit", "1"},
	} {
		stdout, stderr, code := runCLI(t, args...)
		for name, s := range map[string]string{"stdout": stdout, "stderr": stderr} {
			if strings.ContainsAny(s, "\x1b\x07\u009b") {
				t.Errorf("%v (exit %d): %s carries the endpoint's control sequences raw: %q", args, code, name, s)
			}
		}
	}
}

// TestReviewStatusTableTrustsEndpoint: the `status` table decodes the
// endpoint's JSON and prints every string field as received, so JSON
// escapes (\u001b, \u009b, \u202e) become raw control characters on the
// operator's terminal: the HwId, the listeners, a group's name and ePID,
// the ledger's path and last error. Expected safe behaviour: the table
// escapes the report's text (statusapi.ClientRow.Escape does so for
// client rows).
func TestReviewStatusTableTrustsEndpoint(t *testing.T) {
	const evil = `\u001b]0;PWNED\u0007\u009b31m\u202e`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"schema": "kmsdns-status/v1", "hwid": "` + evil + `", "listeners": ["` + evil + `"],
 "host_key_groups": [{"name": "` + evil + `", "epid": "` + evil + `"}],
 "ledger": {"path": "` + evil + `", "healthy": false, "last_error": "` + evil + `"}}`))
	}))
	defer srv.Close()
	stdout, stderr, code := runCLI(t, "status", "--admin", strings.TrimPrefix(srv.URL, "http://"))
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if strings.ContainsAny(l, "\x1b\x07\u009b\u202e") {
			t.Errorf("status table line carries the endpoint's control characters raw: %q", l)
		}
	}
}

// TestReviewClientsSummaryTrustsEndpoint: `clients` escapes the rows it
// prints but not the summary lines: product and network names from
// /clients/summary reach the terminal as decoded. Expected safe
// behaviour: the summary's names are escaped like the rows.
func TestReviewClientsSummaryTrustsEndpoint(t *testing.T) {
	const evil = `\u001b]0;PWNED\u0007\u009b31m\u202e`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"as_of": "2026-12-07T00:00:00Z", "clients": 1, "counted": 1,
 "products": [{"name": "` + evil + `", "clients": 1, "counted": 1}],
 "networks": [{"name": "` + evil + `", "clients": 1, "counted": 1}], "networks_total": 1}`))
	}))
	defer srv.Close()
	stdout, stderr, code := runCLI(t, "clients", "--admin", strings.TrimPrefix(srv.URL, "http://"), "--summary")
	if code != exitOK {
		t.Fatalf("clients --summary: exit %d\n%s", code, stderr)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if strings.ContainsAny(l, "\x1b\x07\u009b\u202e") {
			t.Errorf("clients summary line carries the endpoint's control characters raw: %q", l)
		}
	}
}
