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
}

func (f *adminClientFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.admin, "admin", defaultServeConfig().Metrics, "admin endpoint of the running serve (its --metrics): `ADDR` or an http(s) URL")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "`file` holding the admin bearer token (default: $"+statusapi.TokenEnv+")")
}

// client returns the admin client the flags describe, with the token from
// --admin-token-file or the environment.
func (f *adminClientFlags) client() (*statusapi.Client, error) {
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
	return statusapi.NewClient(f.admin, token)
}
