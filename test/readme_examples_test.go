package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// readmeBlock returns the first block of kind (e.g. "corefile", "txt") in plugin/README.md
// that contains marker.
func readmeBlock(t *testing.T, kind, marker string) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "plugin", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(b), "~~~ "+kind+"\n")[1:] {
		block, _, _ := strings.Cut(part, "~~~")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("no %s block with %q in plugin/README.md", kind, marker)
	return ""
}

// TestPluginReadmeExamplesAsPrinted: the plugin README's Corefile example starts and
// its nsupdate example registers kms1, as printed. Only what cannot run here is replaced: the
// site's 10.1.0.x addresses by loopback ones (127.0.0.x), the listen port and the metrics
// address by free ones, the secret by a real key file, in $CREDENTIALS_DIRECTORY as the
// packaged unit hands it over, the replay file path by one in a temporary directory.
func TestPluginReadmeExamplesAsPrinted(t *testing.T) {
	harness.Tool(t, "nsupdate")
	corefile := readmeBlock(t, "corefile", "static kms.ad.example.org")
	script := readmeBlock(t, "txt", "nsupdate -y")

	secret := "c2VjcmV0LWZvci10aGUtcmVhZG1lLWV4YW1wbGUtMDEyMzQ1Ng=="
	dir := t.TempDir()
	keyfile := harness.WriteFile(t, dir, "vlmcs.keys", "key \"kms1-key.\" {\n\talgorithm hmac-sha256;\n\tsecret \""+secret+"\";\n};\n"+
		"key \"kms2-key.\" {\n\talgorithm hmac-sha256;\n\tsecret \""+secret+"\";\n};\n")
	if err := os.Chmod(keyfile, 0o600); err != nil {
		t.Fatal(err)
	}
	site := strings.NewReplacer("10.1.0.", "127.0.0.")
	corefile = site.Replace(corefile)
	corefile = strings.Replace(corefile, "example.org ad.example.org {", "example.org:{{PORT}} ad.example.org:{{PORT}} {\n    bind 127.0.0.1", 1)
	corefile = strings.Replace(corefile, "    prometheus\n", "    prometheus 127.0.0.1:{{METRICS}}\n", 1)
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	corefile = strings.ReplaceAll(corefile, "/var/lib/coredns/vlmcs.replay", filepath.Join(dir, "vlmcs.replay"))
	c := harness.StartCoreDNS(t, corefile)

	script = site.Replace(script)
	script = strings.Replace(script, "server 127.0.0.53", "server 127.0.0.1 "+strconv.Itoa(c.Port), 1)
	cmdline, body, _ := strings.Cut(script, "<<EOF\n")
	body, _, _ = strings.Cut(body, "EOF\n")
	args := strings.Fields(strings.ReplaceAll(cmdline, "BASE64SECRET", secret))
	if len(args) < 3 || args[0] != "nsupdate" {
		t.Fatalf("unexpected nsupdate command line %q", cmdline)
	}
	cmd := exec.Command(harness.Tool(t, "nsupdate"), args[1:]...)
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's nsupdate example failed: %v\n%s\nscript:\n%s\nCoreDNS:\n%s", err, out, body, c.Output())
	}
	harness.Eventually(t, 5*time.Second, "kms1's registered address", func() bool {
		return answerA(t, c.Addr(), "kms1.example.org") == "127.0.0.21"
	})
}
