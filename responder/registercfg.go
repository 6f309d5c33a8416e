package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
	"github.com/kmsdns/kmsdns/responder/publish"
	"github.com/kmsdns/kmsdns/responder/serve"
)

// tsigKeyEnv names the environment variable that may hold the TSIG key
// (ALG:NAME:BASE64SECRET) when the config names neither a key nor a key file.
const tsigKeyEnv = "KMS_RESPONDER_TSIG_KEY"

// registerConfig turns the register settings into serve's registration
// (nil: no DNS server, no registration); errors name the file:line or flag.
func (c *serveConfig) registerConfig() (*serve.RegisterConfig, error) {
	r := c.Register
	if len(r.Servers) == 0 {
		return nil, nil
	}
	rc := &serve.RegisterConfig{
		Publish: publish.Config{
			Servers:  r.Servers,
			Port:     uint16(r.Port),
			Priority: uint16(r.Priority),
			Weight:   uint16(r.Weight),
			TTL:      uint32(r.TTL),
			Lease:    time.Duration(r.Lease),

			CheckInterval: time.Duration(r.CheckInterval),
		},
		KeyHint: "--tsig-key-file (or $" + tsigKeyEnv + ")",
	}
	for _, a := range r.Addresses {
		rc.Publish.Addresses = append(rc.Publish.Addresses, netip.MustParseAddr(a))
	}
	key, err := c.tsigKey()
	if err != nil {
		return nil, err
	}
	rc.Publish.Key = key
	if rc.Also, err = r.GSS.also(rc.Publish, r.Target); err != nil {
		return nil, fmt.Errorf("%s: %w", c.where("register.ad_zone", "ad-zone"), err)
	}
	if r.GSS.On && rc.Also == nil {
		r.GSS.apply(&rc.Publish)
	}
	for _, zone := range r.Zones {
		target, err := targetIn(r.Target, zone, len(r.Zones))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.where("register.target", "target"), err)
		}
		rc.Zones = append(rc.Zones, serve.Zone{Zone: zone, Target: target})
	}
	return rc, nil
}

// targetIn names this host inside zone: a single label ("kms1") is placed
// in every zone; a full name must lie inside the one configured zone.
func targetIn(target, zone string, zones int) (string, error) {
	t := strings.TrimSuffix(target, ".")
	if !strings.Contains(t, ".") {
		return t + "." + strings.TrimSuffix(zone, ".") + ".", nil
	}
	if zones > 1 {
		return "", fmt.Errorf("with several zones give the target as a host label (e.g. kms1), not %q", target)
	}
	return t + ".", nil
}

// tsigKey reads the registration key from the config file's tsig_key, the
// key file, or $KMS_RESPONDER_TSIG_KEY — never from a command-line value,
// which `ps` would show. Nil means unsigned updates.
func (c *serveConfig) tsigKey() (*tsigkey.Key, error) {
	r := c.Register
	var (
		k   tsigkey.Key
		err error
	)
	switch {
	case r.TSIGKey != "":
		if k, err = tsigkey.ParseSpec(r.TSIGKey); err != nil {
			return nil, fmt.Errorf("%s: %w", c.where("register.tsig_key", "tsig-key-file"), err)
		}
	case r.TSIGKeyFile != "":
		keys, err := tsigkey.ReadFile(r.TSIGKeyFile)
		if err == nil && len(keys) != 1 {
			err = fmt.Errorf("%s holds %d keys; the responder registers with one", r.TSIGKeyFile, len(keys))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.where("register.tsig_key_file", "tsig-key-file"), credentialHint(err, "tsig.key"))
		}
		k = keys[0]
	case os.Getenv(tsigKeyEnv) != "":
		if k, err = tsigkey.ParseSpec(os.Getenv(tsigKeyEnv)); err != nil {
			return nil, fmt.Errorf("$%s: %w", tsigKeyEnv, err)
		}
	default:
		return nil, nil
	}
	return &k, nil
}
