package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestProcessCatalogOverlay: serve --catalog-file adds a host key
// group that then activates its product; catalog marks the overlay's rows;
// a conflicting overlay stops startup with file:line.
func TestProcessCatalogOverlay(t *testing.T) {
	overlay, err := filepath.Abs("catalog/testdata/overlay-office-ltsc-2027.tsv")
	if err != nil {
		t.Fatal(err)
	}
	p := harness.StartResponder(t, t.TempDir(), "--group", "office-ltsc-2027", "--catalog-file", overlay)
	stdout, stderr, code := runCLI(t, "activate", "--server", p.Addr, "--catalog-file", overlay,
		"--product", "Office LTSC Professional Plus 2027", "--json", "--cmid", "random")
	var r activationReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("activate: %v\n%s%s", err, stdout, stderr)
	}
	if code != exitLowCount || r.HostStatus != "0x00000000 (S_OK)" || r.CurrentCount != 1 || r.EPID == "" {
		t.Errorf("new product from the overlay: exit %d, host %s, count %d, ePID %q; want answered with count 1 (exit 2)", code, r.HostStatus, r.CurrentCount, r.EPID)
	}
	// The same product without the overlay on the host: refused.
	plain := harness.StartResponder(t, t.TempDir(), "--group", "office-ltsc-2024")
	stdout, _, code = runCLI(t, "activate", "--server", plain.Addr, "--catalog-file", overlay,
		"--product", "Office LTSC Professional Plus 2027", "--cmid", "random")
	if code != exitError || !strings.Contains(stdout, "0xC004F042") {
		t.Errorf("host without the overlay: exit %d, want 1 with 0xC004F042:\n%s", code, stdout)
	}

	stdout, _, code = runCLI(t, "catalog", "--catalog-file", overlay, "2027")
	if code != exitOK || !strings.Contains(stdout, "office-ltsc-2027: Office LTSC 2027 host key (hypothetical)  [from the catalog overlay]") {
		t.Errorf("catalog with the overlay: exit %d:\n%s", code, stdout)
	}

	bad := filepath.Join(t.TempDir(), "bad.tsv")
	content := "[counted.tsv]\nkey\tid\tname\tapp\tkind\tthreshold\tprotocol\tflags\tsource\n" +
		"office2024\t00000000-2027-4000-8000-0000000000aa\tX\toffice\toffice\t5\t6\t-\ts\n"
	if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, "serve", "--group", "office-ltsc-2024", "--catalog-file", bad, "--data", t.TempDir(), "--listen", "127.0.0.1:1")
	if code != exitUsage || !strings.Contains(stderr, bad+`:3: "office2024" is already in the catalog`) {
		t.Errorf("conflicting overlay: exit %d, want 64 naming %s:3:\n%s", code, bad, stderr)
	}
}
