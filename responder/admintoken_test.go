package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminToken: token files must be private and long enough; serve
// refuses an admin address beyond loopback without a token.
func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	tok := "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(good, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := readAdminToken(good, true); err != nil || string(b) != tok {
		t.Fatalf("read: %q %v", b, err)
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte(tok), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readAdminToken(open, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("mode 0644: %v", err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readAdminToken(short, true); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("short token: %v", err)
	}
	_, err := parseServeConfig([]string{"--group", "windows-server-2025", "--metrics", "0.0.0.0:9688"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--admin-token-file") {
		t.Errorf("non-loopback admin without a token: %v", err)
	}
	if _, err := parseServeConfig([]string{"--group", "windows-server-2025", "--metrics", "0.0.0.0:9688", "--admin-token-file", good}, nil); err != nil {
		t.Errorf("with a token file: %v", err)
	}
}
