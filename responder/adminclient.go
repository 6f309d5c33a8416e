package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// adminClientFlags are the flags of the commands that ask a running serve
// over its admin endpoint (status, clients).
type adminClientFlags struct {
	admin     string
	tokenFile string
	config    string
	from      string // where the address came from, for errors
}

func (f *adminClientFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.admin, "admin", "", "admin endpoint of the running serve (its --metrics): `ADDR` or an http(s) URL (default: metrics in --config, else "+defaultServeConfig().Metrics+")")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "`file` holding the admin bearer token (default: $"+adminTokenEnv+", else admin_token_file in --config)")
	fs.StringVar(&f.config, "config", "", "serve's config `file`, read for the admin address and token (default "+defaultConfigFile+" when it exists)")
}

// adminClient sends requests to serve's admin endpoint.
type adminClient struct {
	base  *url.URL
	token string
	hc    *http.Client
	from  string // where the address came from, for errors
}

func (f *adminClientFlags) client() (*adminClient, error) {
	explicit := f.admin != ""
	from, err := f.fromConfig()
	if err != nil {
		return nil, err
	}
	switch {
	case explicit:
		f.from = "--admin"
	case from != "":
		f.from = "metrics in " + from
	default:
		f.from = "the default address"
		f.admin = defaultServeConfig().Metrics
	}
	raw := f.admin
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("--admin %q is neither HOST:PORT nor an http(s) URL", f.admin)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &adminClient{base: u, hc: &http.Client{}, from: f.from}
	switch {
	case f.tokenFile != "":
		tok, err := readAdminToken(f.tokenFile, false)
		if err != nil {
			return nil, usagef("--admin-token-file: %v", err)
		}
		c.token = string(tok)
	case os.Getenv(adminTokenEnv) != "":
		tok := strings.TrimSpace(os.Getenv(adminTokenEnv))
		if err := checkToken([]byte(tok)); err != nil {
			return nil, usagef("$%s: %v", adminTokenEnv, err)
		}
		c.token = tok
	}
	return c, nil
}

// get sends GET path?query and returns the response when it is 200 OK;
// any other status is an error with what to do.
func (c *adminClient) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no responder answering at %s (%s; give --admin ADDR, serve's metrics address, or --config FILE, serve's config): %w", c.base.Host, c.from, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if c.token == "" {
			return nil, fmt.Errorf("%s%s: the admin endpoint needs its bearer token: pass --admin-token-file FILE or set $%s", c.base.Host, path, adminTokenEnv)
		}
		return nil, fmt.Errorf("%s%s: the admin endpoint refused the token (is it serve's --admin-token-file?)", c.base.Host, path)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s%s: not found (is this a kms-responder admin endpoint, of this version?)", c.base.Host, path)
	}
	return nil, fmt.Errorf("%s%s: %s: %s", c.base.Host, path, resp.Status, msg)
}
