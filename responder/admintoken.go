package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// maxAdminTokenFile bounds what is read from a token file.
const maxAdminTokenFile = 4096

// readAdminToken reads a bearer token from path: the file's first line,
// surrounding white space removed. serve refuses a file group or others
// can read (as for TSIG keys), or a token too short to resist guessing.
func readAdminToken(path string, secret bool) ([]byte, error) {
	if secret {
		if err := checkTokenFile(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAdminTokenFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAdminTokenFile {
		return nil, fmt.Errorf("admin token file %s is larger than %d bytes", path, maxAdminTokenFile)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	tok := bytes.TrimSpace(line)
	if err := statusapi.CheckToken(tok); err != nil {
		return nil, fmt.Errorf("admin token file %s: %w", path, err)
	}
	return tok, nil
}

// checkTokenFile refuses a token file group or others can read, or that
// someone else owns (files systemd hands the service are exempt, see
// checkSecretFile).
func checkTokenFile(path string) error {
	if inCredentialsDir(path) {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("admin token file %s is not a regular file", path)
	}
	if err := checkOwnedFile("admin token file", path, fi); err != nil {
		return err
	}
	if _, ok := fileOwner(fi); ok && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("admin token file %s is readable by group or others (mode %04o); run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	return nil
}
