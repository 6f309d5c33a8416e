package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// maxAdminTokenFile bounds what is read from a token file.
const maxAdminTokenFile = 4096

// readAdminToken reads a bearer token from path: the file's first line,
// surrounding white space removed. With secret (serve) the file must be a
// secret file by plugin/pkg/fileperm's rules (as TSIG keys); a token too
// short to resist guessing is refused.
func readAdminToken(path string, secret bool) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if secret {
		b, err = fileperm.ReadFile("admin token file", path, fileperm.Secret, maxAdminTokenFile)
	} else {
		b, err = readLimited(path, maxAdminTokenFile)
	}
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	tok := bytes.TrimSpace(line)
	if err := statusapi.CheckToken(tok); err != nil {
		return nil, fmt.Errorf("admin token file %s: %w", path, err)
	}
	return tok, nil
}

// readLimited reads path, of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("admin token file %s is larger than %d bytes", path, max)
	}
	return b, nil
}
