package main

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestExpandCredentials(t *testing.T) {
	tests := []struct {
		name, env, path, want, err string
	}{
		{name: "plain path", path: "/etc/kms-responder/tsig.key", want: "/etc/kms-responder/tsig.key"},
		{name: "under the unit", env: "/run/credentials/kms-responder.service", path: "${CREDENTIALS_DIRECTORY}/tsig.key", want: "/run/credentials/kms-responder.service/tsig.key"},
		{name: "default ignored under the unit", env: "/run/c", path: "${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/admin.token", want: "/run/c/admin.token"},
		{name: "default on the host", path: "${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/admin.token", want: "/etc/kms-responder/admin.token"},
		{name: "unset without default", path: "${CREDENTIALS_DIRECTORY}/tsig.key", err: "${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/tsig.key"},
		{name: "empty default", path: "${CREDENTIALS_DIRECTORY:-}/tsig.key", err: "is not set"},
		{name: "other variable", path: "${HOME}/tsig.key", err: "only a leading"},
		{name: "not leading", path: "/x/${CREDENTIALS_DIRECTORY}/tsig.key", err: "only a leading"},
		{name: "bare dollar", path: "$CREDENTIALS_DIRECTORY/tsig.key", err: "only a leading"},
		{name: "unclosed default", path: "${CREDENTIALS_DIRECTORY:-/etc", err: "lacks its }"},
		{name: "unclosed", path: "${CREDENTIALS_DIRECTORY", err: "only a leading"},
		{name: "second variable", env: "/run/c", path: "${CREDENTIALS_DIRECTORY}/${X}", err: "only a leading"},
		{name: "variable in default", path: "${CREDENTIALS_DIRECTORY:-$HOME}/k", err: "only a leading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(credentialsEnv, tt.env)
			got, err := expandCredentials("config.yaml:3: admin_token_file", tt.path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "config.yaml:3: admin_token_file: ") {
					t.Fatalf("expandCredentials(%q) = %q, %v; want an error with %q", tt.path, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("expandCredentials(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestCredentialHint(t *testing.T) {
	perm := &fs.PathError{Op: "open", Path: "/etc/kms-responder/tsig.key", Err: fs.ErrPermission}
	err := credentialHint(perm, "tsig.key")
	for _, want := range []string{"permission denied", "/etc/kms-responder/tsig.key", "LoadCredential", "credential tsig.key", "${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/tsig.key", "0600"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("hint %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("the hint hides the permission error")
	}
	other := errors.New("no such file")
	if credentialHint(other, "tsig.key") != other {
		t.Error("a hint added to an error that is no permission error")
	}
}

// FuzzExpandCredentials: any config value either expands to a path that
// holds no variable reference or is refused with the setting named; never
// a panic.
func FuzzExpandCredentials(f *testing.F) {
	for _, s := range []string{"/etc/kms-responder/tsig.key", "${CREDENTIALS_DIRECTORY}/tsig.key",
		"${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/admin.token", "${CREDENTIALS_DIRECTORY:-", "${X}", "$", "${CREDENTIALS_DIRECTORY:-}}"} {
		f.Add(s, "")
		f.Add(s, "/run/credentials/kms-responder.service")
	}
	f.Fuzz(func(t *testing.T, path, env string) {
		if strings.ContainsAny(env, "$\x00") {
			return
		}
		t.Setenv(credentialsEnv, env)
		got, err := expandCredentials("k", path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "k: ") {
				t.Fatalf("error %q does not name the setting", err)
			}
			return
		}
		if strings.Contains(got, "$") {
			t.Fatalf("expandCredentials(%q) = %q: a variable left", path, got)
		}
	})
}
