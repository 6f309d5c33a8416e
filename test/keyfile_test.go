package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// keyfileCases are key files both binaries must refuse, with what the
// error must say. Each holds secret1; no output may.
var keyfileCases = []struct {
	name, content string
	mode          os.FileMode
	want          string
}{
	{"readable by others", "key \"kms1-key.\" { algorithm hmac-sha256; secret \"" + secret1 + "\"; };\n", 0o644, "permissions 0644 are too open"},
	{"readable by group", "key \"kms1-key.\" { algorithm hmac-sha256; secret \"" + secret1 + "\"; };\n", 0o640, "permissions 0640 are too open"},
	{"secret misplaced", "key \"kms1-key.\" { algorithm hmac-sha256; secret; \"" + secret1 + "\"; };\n", 0o600, "line 1: want a value after secret, got ';'"},
	{"secret as algorithm", "key \"kms1-key.\" { algorithm " + secret1 + "; secret \"" + secret1 + "\"; };\n", 0o600, "line 1: unknown TSIG algorithm"},
	{"stray secret", "key \"kms1-key.\" { algorithm hmac-sha256; secret \"" + secret1 + "\"; }; " + secret1 + "\n", 0o600, "line 1: want \"key\" or the end of the file, got a word"},
	{"spec then secret", "hmac-sha256:kms1-key.:" + secret1 + "\n" + secret1 + "\n", 0o600, "line 2: unexpected a word after the key spec on line 1"},
}

func writeKeyFile(t *testing.T, dir, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "tsig.key")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

// TestKeyFileRefusedByCoreDNS: bin/coredns refuses a `keyfile` that group or
// others can read, and malformed key files, at the Corefile line, without
// printing the secret.
func TestKeyFileRefusedByCoreDNS(t *testing.T) {
	for _, tc := range keyfileCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeKeyFile(t, dir, tc.content, tc.mode)
			corefile := fmt.Sprintf("example.test:%d {\n\tbind 127.0.0.1\n\tvlmcs {\n\t\tapprove kms1.example.test\n\t\tkeyfile %s\n\t}\n}\n", harness.FreePort(t), p)
			code, out := harness.RunCoreDNS(t, corefile, 10*time.Second)
			if code == 0 || code == -1 {
				t.Fatalf("exit code %d, want a startup failure; output:\n%s", code, out)
			}
			if want := "Corefile:5 - Error during parsing: keyfile: " + p + ": "; !strings.Contains(out, want) || !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q and %q:\n%s", want, tc.want, out)
			}
			if strings.Contains(out, secret1) {
				t.Errorf("output holds the secret:\n%s", out)
			}
		})
	}
	// The same file at 0600 is used.
	dir := t.TempDir()
	p := writeKeyFile(t, dir, keyfileCases[0].content, 0o600)
	c := harness.StartCoreDNS(t, fmt.Sprintf("example.test:{{PORT}} {\n\tbind 127.0.0.1\n\tvlmcs {\n\t\tapprove kms1.example.test\n\t\tkeyfile %s\n\t\tgrant kms1-key. kms1.example.test\n\t}\n}\n", p))
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test.", "127.0.0.1", 1688), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Errorf("update signed with the key file's key: exit %d\n%s", code, out)
	}
}

// TestKeyFileRefusedByResponder: kms-responder serve refuses a
// tsig_key_file that group or others can read, and malformed key files,
// with exit code 64 and the config line, without printing the secret.
func TestKeyFileRefusedByResponder(t *testing.T) {
	for _, tc := range keyfileCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeKeyFile(t, dir, tc.content, tc.mode)
			harness.WriteFile(t, dir, "config.yaml", fmt.Sprintf(`groups: [windows-server-2025]
listen: ["127.0.0.1:%d"]
data: %s/data
metrics: ""
register:
  servers: ["127.0.0.1:%d"]
  zone: example.test
  target: kms1.example.test
  addresses: [127.0.0.1]
  tsig_key_file: %s
`, harness.FreePort(t), dir, harness.FreePort(t), p))
			r := harness.Start(t, dir, harness.Binary(t, "kms-responder"), "serve", "--config", "config.yaml")
			code := r.Wait(10 * time.Second)
			out := r.Output()
			if code != 64 {
				t.Fatalf("exit code %d, want 64 (usage); output:\n%s", code, out)
			}
			if want := "config.yaml:10: register.tsig_key_file: " + p + ": "; !strings.Contains(out, want) || !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q and %q:\n%s", want, tc.want, out)
			}
			if strings.Contains(out, secret1) {
				t.Errorf("output holds the secret:\n%s", out)
			}
		})
	}
}
