package vlmcs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// TestReadmeExamples parses every vlmcs block of the README's corefile examples, so the
// documentation cannot drift from the parser. Key files named there are replaced by a real one.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	keyfile := filepath.Join(t.TempDir(), "kms.keys")
	os.WriteFile(keyfile, []byte("key kms1-key. { algorithm hmac-sha256; secret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"; };\nkey kms2-key. { algorithm hmac-sha256; secret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"; };\n"), 0o600)
	n := 0
	for _, part := range strings.Split(string(b), "~~~ corefile\n")[1:] {
		example, _, _ := strings.Cut(part, "~~~")
		zones := strings.Fields(strings.TrimSuffix(strings.SplitN(example, "\n", 2)[0], "{"))
		start := strings.Index(example, "vlmcs")
		if start < 0 {
			continue
		}
		block := example[start:]
		block = block[:strings.Index(block, "\n    }")+6]
		block = strings.ReplaceAll(block, "{$CREDENTIALS_DIRECTORY}/vlmcs.keys", keyfile)
		c := caddy.NewTestController("dns", block)
		c.ServerBlockKeys = zones
		if _, err := parse(c); err != nil {
			t.Errorf("README example does not parse: %v\n%s", err, block)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no vlmcs example found in README.md")
	}
}
