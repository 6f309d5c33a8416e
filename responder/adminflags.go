package main

import (
	"flag"
	"os"
	"strings"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// adminClientFlags are the flags of the commands that ask a running serve
// over its admin endpoint (status, clients).
type adminClientFlags struct {
	admin     string
	tokenFile string
	config    string
}

func (f *adminClientFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.admin, "admin", "", "admin endpoint of the running serve (its --metrics): `ADDR` or an http(s) URL (default: metrics in --config, else "+defaultServeConfig().Metrics+")")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "`file` holding the admin bearer token (default: $"+statusapi.TokenEnv+", else admin_token_file in --config)")
	fs.StringVar(&f.config, "config", "", "serve's config `file`, read for the admin address and token (default "+defaultConfigFile+" when it exists)")
}

// client returns the admin client the flags describe, with the token from
// --admin-token-file, the environment, or serve's config (fromConfig).
func (f *adminClientFlags) client() (*statusapi.Client, error) {
	explicit := f.admin != ""
	from, err := f.fromConfig()
	if err != nil {
		return nil, err
	}
	var origin string
	switch {
	case explicit:
		origin = "--admin"
	case from != "":
		origin = "metrics in " + from
	default:
		origin = "the default address"
		f.admin = defaultServeConfig().Metrics
	}
	if _, err := statusapi.NewClient(f.admin, ""); err != nil {
		return nil, usagef("--admin %v", err)
	}
	var token string
	switch {
	case f.tokenFile != "":
		tok, err := readAdminToken(f.tokenFile, false)
		if err != nil {
			return nil, usagef("--admin-token-file: %v", err)
		}
		token = string(tok)
	case os.Getenv(statusapi.TokenEnv) != "":
		tok := strings.TrimSpace(os.Getenv(statusapi.TokenEnv))
		if err := statusapi.CheckToken([]byte(tok)); err != nil {
			return nil, usagef("$%s: %v", statusapi.TokenEnv, err)
		}
		token = tok
	}
	c, err := statusapi.NewClient(f.admin, token)
	if err != nil {
		return nil, err
	}
	c.Origin = origin
	return c, nil
}
