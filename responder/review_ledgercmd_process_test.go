package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReviewLedgerCommandsSkipDataDirRules: `ledger check` is documented
// to run the same code as serve's open, but it (and `ledger acknowledge`)
// opens --data by name without the ownership walk serve makes: for a data
// directory below a directory another user owns (who can swap it for one
// of their own, with a crafted ledger.db), serve refuses to start while
// `ledger check` calls the ledger intact (exit 0) and `ledger acknowledge`,
// run as root, would open and write a store that user chose. Expected safe
// behaviour: both commands apply serve's data-directory rules first and
// refuse with the same message.
func TestReviewLedgerCommandsSkipDataDirRules(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gives a directory to another user")
	}
	tmp := t.TempDir()
	other := filepath.Join(tmp, "other")
	data := filepath.Join(other, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, serveErr, code := runCLI(t, "serve", "--group", "windows-server-2025", "--listen", "127.0.0.1:0", "--metrics", "", "--data", data)
	if code == exitOK || !strings.Contains(serveErr, "owned by") {
		t.Fatalf("serve: exit %d, want a refusal of the data directory\n%s", code, serveErr)
	}
	for _, args := range [][]string{{"ledger", "check", "--data", data}, {"ledger", "acknowledge", "--data", data}} {
		out, errOut, code := runCLI(t, args...)
		if code == exitOK {
			t.Errorf("%v: exit 0 on a data directory serve refuses (%s)\n%s%s", args, strings.TrimSpace(serveErr), out, errOut)
		}
	}
}
