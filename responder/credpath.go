package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Secrets under systemd: kms-responder.service hands the service each secret
// file of /etc/kms-responder as a credential of the same name (LoadCredential=),
// a copy in $CREDENTIALS_DIRECTORY. The config names them as
//
//	${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/tsig.key
//
// which is the credential under the unit, and the source file for root's
// `status` and `clients` on the host, which read the same config.
const (
	credentialsEnv = "CREDENTIALS_DIRECTORY"
	// secretsDir is where the unit loads the credentials from.
	secretsDir = "/etc/kms-responder"
)

// expandCredentials expands a leading ${CREDENTIALS_DIRECTORY} or
// ${CREDENTIALS_DIRECTORY:-DIR} in a path the config file gives; no other
// variable is expanded. key names the setting in errors.
func expandCredentials(key, path string) (string, error) {
	if !strings.Contains(path, "$") {
		return path, nil
	}
	rest, ok := strings.CutPrefix(path, "${"+credentialsEnv)
	if !ok {
		return "", fmt.Errorf("%s: %q: only a leading ${%s} or ${%s:-DIR} is expanded", key, path, credentialsEnv, credentialsEnv)
	}
	def, hasDef := "", false
	if d, ok := strings.CutPrefix(rest, ":-"); ok {
		i := strings.IndexByte(d, '}')
		if i < 0 {
			return "", fmt.Errorf("%s: %q: ${%s:-DIR} lacks its }", key, path, credentialsEnv)
		}
		def, hasDef, rest = d[:i], true, d[i:]
	}
	rest, ok = strings.CutPrefix(rest, "}")
	if !ok || strings.Contains(rest, "$") || strings.Contains(def, "$") {
		return "", fmt.Errorf("%s: %q: only a leading ${%s} or ${%s:-DIR} is expanded", key, path, credentialsEnv, credentialsEnv)
	}
	dir := os.Getenv(credentialsEnv)
	switch {
	case dir != "":
	case hasDef && def != "":
		dir = def
	default:
		return "", fmt.Errorf("%s: %q: $%s is not set: systemd sets it for a unit with LoadCredential=; to read the file outside the unit too, write ${%s:-%s}%s",
			key, path, credentialsEnv, credentialsEnv, secretsDir, rest)
	}
	return dir + rest, nil
}

// credentialHint adds to a failed read of a secret file what the unit
// expects when the failure is a permission one: the service's dynamic user
// reads secrets only as credentials.
func credentialHint(err error, credential string) error {
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	src := secretsDir + "/" + credential
	return fmt.Errorf("%w: under kms-responder.service the service user reads no file of %s; keep the secret in %s "+
		"(root, mode 0600, in a 0700 directory: `install -m 0600 FILE %s`), which the unit loads (LoadCredential=) as the credential %s, "+
		"and name it in config.yaml as ${%s:-%s}/%s (README.md, \"Secrets under systemd\")",
		err, secretsDir, src, src, credential, credentialsEnv, secretsDir, credential)
}
