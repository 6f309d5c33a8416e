package main

import (
	"errors"
	"io/fs"
	"net"
	"os"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// defaultConfigFile is the config the packages install and the unit hands
// serve; status and clients read the admin address and token from it.
const defaultConfigFile = "/etc/kms-responder/config.yaml"

// fromConfig fills in the admin address and token file that f leaves
// unset from serve's config file (--config, else defaultConfigFile when it
// exists), as serve reads it: the metrics address (a wildcard one is asked
// on loopback) and admin_token_file, ${CREDENTIALS_DIRECTORY:-DIR}
// expanded to DIR outside the unit. It reports which file it read ("" for
// none).
func (f *adminClientFlags) fromConfig() (string, error) {
	path, explicit := f.config, f.config != ""
	if !explicit {
		path = defaultConfigFile
	}
	if f.admin != "" && !explicit {
		return "", nil // another serve's address: not this host's token
	}
	data, err := readConfigFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", usagef("--config: %v", err)
	}
	c := defaultServeConfig()
	if err := decodeServeYAML(path, data, &c); err != nil {
		return "", usageError{err}
	}
	if err := c.expandCredentialPaths(); err != nil {
		return "", usageError{err}
	}
	if f.admin == "" {
		if c.Metrics == "" {
			return "", usagef("%s: metrics is \"\": that serve has no admin endpoint to ask; give --admin ADDR", path)
		}
		f.admin = dialableAdmin(c.Metrics)
	}
	if f.tokenFile == "" && os.Getenv(statusapi.TokenEnv) == "" && c.AdminTokenFile != "" {
		f.tokenFile = c.AdminTokenFile
	}
	return path, nil
}

// dialableAdmin turns serve's metrics listen address into one to connect
// to: a wildcard or empty host becomes the loopback address.
func dialableAdmin(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
