package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mkdirMode makes dir with exactly mode (no umask).
func mkdirMode(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadConfigFile(t *testing.T) {
	dir := mkdirMode(t, filepath.Join(t.TempDir(), "etc"), 0o755)
	write := func(name string, mode os.FileMode, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const plain = "groups: [windows-server-2025]\n"
	const secret = plain + "register:\n  servers: ['127.0.0.1:53']\n  zone: example.test\n  target: kms1\n  tsig_key: hmac-sha256:k.:c2VjcmV0c2VjcmV0c2VjcmV0\n"
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"0644 without secrets", write("a.yaml", 0o644, plain), ""},
		{"0600 with a secret", write("b.yaml", 0o600, secret), ""},
		{"group writable", write("c.yaml", 0o664, plain), "is writable by group or others (mode 0664); run `chmod go-w "},
		{"world writable", write("d.yaml", 0o646, plain), "(mode 0646)"},
		{"readable secret", write("e.yaml", 0o640, secret), ": permissions 0640 are too open: it holds a secret, which group and others must not access; run `chmod 600 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServeConfig([]string{"--config", tc.path}, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if tc.want != "" && strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
	// A systemd credential (LoadCredential=) shows its ACL as group bits.
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if _, err := parseServeConfig([]string{"--config", write("g.yaml", 0o440, secret)}, nil); err != nil {
		t.Errorf("a config with a secret in $CREDENTIALS_DIRECTORY: %v", err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", filepath.Join(dir, "elsewhere"))
	if _, err := parseServeConfig([]string{"--config", write("h.yaml", 0o440, secret)}, nil); err == nil {
		t.Error("a group-readable config with a secret outside $CREDENTIALS_DIRECTORY was accepted")
	}
	if os.Geteuid() == 0 {
		p := write("f.yaml", 0o600, plain)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := parseServeConfig([]string{"--config", p}, nil); err == nil || !strings.Contains(err.Error(), "is owned by ") {
			t.Errorf("a config file owned by uid 65534: %v", err)
		}
	}
}
