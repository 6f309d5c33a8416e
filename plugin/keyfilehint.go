package vlmcs

import (
	"errors"
	"fmt"
	"io/fs"
)

// keyfileHint adds to a key file that CoreDNS may not read what the
// packaged unit expects: coredns-kmsdns.service runs CoreDNS as a dynamic
// user that reads keys only as the credential the unit loads.
func keyfileHint(err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return fmt.Errorf("%w: under coredns-kmsdns.service CoreDNS runs as a dynamic user that reads no key file directly; "+
		"keep the keys in /etc/coredns-kmsdns/vlmcs.keys (root, mode 0600, tsig-keygen format), which the unit loads "+
		"(LoadCredential=) as the credential vlmcs.keys, and write `keyfile {$CREDENTIALS_DIRECTORY}/vlmcs.keys` "+
		"(README.md, \"Secrets under systemd\")", err)
}
