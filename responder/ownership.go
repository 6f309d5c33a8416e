package main

import (
	"fmt"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
)

// The files serve trusts follow plugin/pkg/fileperm's rules, shared with
// the plugin: the config file and the catalog overlay are policy files
// (owned by root or the running user, writable by no one else, in
// directories no one else can change); the TSIG key file, the admin token
// file and a config holding tsig_key are secrets (accessible by no one
// else); the data directory is opened once by descriptor (fileperm.OpenDir)
// and the ledger works relative to it. Copies systemd hands the service in
// $CREDENTIALS_DIRECTORY are exempt; `kms-responder check-files` checks
// their sources.

// maxConfigSize bounds the config file read.
const maxConfigSize = 1 << 20

// readConfigFile reads serve's config file after checking it as a policy
// file.
func readConfigFile(path string) ([]byte, error) {
	return fileperm.ReadFile("config file", path, fileperm.Policy, maxConfigSize)
}

// checkSecretFile checks a config file that holds a TSIG secret as a
// secret file.
func checkSecretFile(what, path string) error {
	if err := fileperm.CheckPath(what, path, fileperm.Secret); err != nil {
		return fmt.Errorf("%w (or move the TSIG secret to a key file, tsig_key_file)", err)
	}
	return nil
}
