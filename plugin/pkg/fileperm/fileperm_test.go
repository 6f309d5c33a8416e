package fileperm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeMode(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadFileRules(t *testing.T) {
	dir := mkdirMode(t, filepath.Join(t.TempDir(), "etc"), 0o755)
	loose := mkdirMode(t, filepath.Join(dir, "loose"), 0o777)
	for _, tc := range []struct {
		name string
		path string
		kind Kind
		want string // "" for accepted
	}{
		{"policy 0644", writeMode(t, filepath.Join(dir, "a"), 0o644), Policy, ""},
		{"policy 0664", writeMode(t, filepath.Join(dir, "b"), 0o664), Policy, "is writable by group or others (mode 0664); run `chmod go-w "},
		{"policy 0666", writeMode(t, filepath.Join(dir, "c"), 0o666), Policy, "(mode 0666)"},
		{"secret 0600", writeMode(t, filepath.Join(dir, "d"), 0o600), Secret, ""},
		{"secret 0400", writeMode(t, filepath.Join(dir, "e"), 0o400), Secret, ""},
		{"secret 0640", writeMode(t, filepath.Join(dir, "f"), 0o640), Secret, "permissions 0640 are too open"},
		{"secret 0604", writeMode(t, filepath.Join(dir, "g"), 0o604), Secret, "run `chmod 600 "},
		{"in a loose directory", writeMode(t, filepath.Join(loose, "h"), 0o600), Secret, "the directory above it, " + loose + ", is writable"},
		{"a directory", dir, Policy, "is not a regular file"},
		{"missing", filepath.Join(dir, "missing"), Policy, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFile("test file", tc.path, tc.kind, 100)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile("test file", big, Policy, 100); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Errorf("oversized: %v", err)
	}
	if os.Geteuid() == 0 {
		p := writeMode(t, filepath.Join(dir, "theirs"), 0o600)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		for _, k := range []Kind{Policy, Secret} {
			if _, err := ReadFile("test file", p, k, 100); err == nil || !strings.Contains(err.Error(), "is owned by ") || !strings.Contains(err.Error(), "run `chown root "+p+"`") {
				t.Errorf("kind %d, owned by uid 65534: %v", k, err)
			}
		}
	}
}

// TestCredentialsExempt: a copy systemd made (0440 through its ACL mask)
// inside $CREDENTIALS_DIRECTORY is read; the same file elsewhere, with the
// variable naming another directory, or in a credentials directory others
// can write, is refused.
func TestCredentialsExempt(t *testing.T) {
	creds := mkdirMode(t, filepath.Join(t.TempDir(), "creds"), 0o700)
	p := writeMode(t, filepath.Join(creds, "tsig.key"), 0o440)
	t.Setenv(CredentialsEnv, creds)
	if _, err := ReadFile("TSIG key file", p, Secret, 100); err != nil {
		t.Errorf("credential copy refused: %v", err)
	}
	// A credentials directory others can write in exempts nothing.
	loose := mkdirMode(t, filepath.Join(t.TempDir(), "loose"), 0o777)
	lp := writeMode(t, filepath.Join(loose, "tsig.key"), 0o440)
	t.Setenv(CredentialsEnv, loose)
	if _, err := ReadFile("TSIG key file", lp, Secret, 100); err == nil {
		t.Error("a 0440 secret in a world-writable $CREDENTIALS_DIRECTORY was read")
	}
	for _, env := range []string{filepath.Join(creds, "sub"), "relative", ""} {
		t.Setenv(CredentialsEnv, env)
		if _, err := ReadFile("TSIG key file", p, Secret, 100); err == nil {
			t.Errorf("CREDENTIALS_DIRECTORY=%q: a 0440 secret was read", env)
		}
	}
	for _, tc := range []struct {
		env, path string
		want      bool
	}{
		{"/run/credentials/x.service", "/run/credentials/x.service/tsig.key", true},
		{"/run/credentials/x.service/", "/run/credentials/x.service/a/b", true},
		{"/run/credentials/x.service", "/run/credentials/x.service", false},
		{"/run/credentials/x.service", "/run/credentials/x.service/../y.service/k", false},
		{"/run/credentials/x.service", "/run/credentials/x.servicefoo/k", false},
		{"", "/run/credentials/x.service/k", false},
	} {
		t.Setenv(CredentialsEnv, tc.env)
		if got := InCredentialsDir(tc.path); got != tc.want {
			t.Errorf("InCredentialsDir(%q) with %q = %v, want %v", tc.path, tc.env, got, tc.want)
		}
	}
}

func TestCheckSources(t *testing.T) {
	dir := mkdirMode(t, filepath.Join(t.TempDir(), "etc"), 0o700)
	good := writeMode(t, filepath.Join(dir, "tsig.key"), 0o600)
	loose := writeMode(t, filepath.Join(dir, "config.yaml"), 0o644)
	t.Setenv(CredentialsEnv, dir) // sources are checked wherever they are
	if err := CheckSources(Secret, good); err != nil {
		t.Errorf("good source: %v", err)
	}
	err := CheckSources(Secret, good, loose, filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), "credential source "+loose+": permissions 0644 are too open") || !strings.Contains(err.Error(), "missing: no such file") {
		t.Errorf("loose and missing sources: %v", err)
	}
}
