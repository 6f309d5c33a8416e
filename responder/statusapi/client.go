package statusapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

// TokenEnv is the environment variable the client commands read the admin
// bearer token from when no token file is given.
const TokenEnv = "KMS_RESPONDER_ADMIN_TOKEN"

// MinToken is the shortest admin token accepted: 16 bytes (128 bits when
// random; `openssl rand -hex 32` gives 64 characters).
const MinToken = 16

// CheckToken refuses a token that is short or cannot go in a header.
func CheckToken(tok []byte) error {
	if len(tok) < MinToken {
		return fmt.Errorf("the token has %d bytes, at least %d are needed (make one with `openssl rand -hex 32`)", len(tok), MinToken)
	}
	for _, c := range tok {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("the token holds a space or a non-printable or non-ASCII byte")
		}
	}
	return nil
}

// Client sends requests to a running serve's admin endpoint.
type Client struct {
	// Origin says where the address came from ("--admin", "metrics in
	// FILE", ...); it is named when nothing answers there.
	Origin string

	base  *url.URL
	token string
	hc    *http.Client
}

// NewClient returns a client of the admin endpoint at addr ("HOST:PORT" or
// an http(s) URL) that sends token as its bearer token (none when empty).
func NewClient(addr, token string) (*Client, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q is neither HOST:PORT nor an http(s) URL", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token, hc: &http.Client{}}, nil
}

// Host is the endpoint's host:port, for messages.
func (c *Client) Host() string { return c.base.Host }

// Get sends GET path?query and returns the response when it is 200 OK;
// any other status is an error with what to do.
func (c *Client) Get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
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
		origin := ""
		if c.Origin != "" {
			origin = c.Origin + "; "
		}
		return nil, fmt.Errorf("no responder answering at %s (%sgive --admin ADDR, serve's metrics address, or --config FILE, serve's config): %w", c.base.Host, origin, err)
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
			return nil, fmt.Errorf("%s%s: the admin endpoint needs its bearer token: pass --admin-token-file FILE or set $%s", c.base.Host, path, TokenEnv)
		}
		return nil, fmt.Errorf("%s%s: the admin endpoint refused the token (is it serve's --admin-token-file?)", c.base.Host, path)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s%s: not found (is this a kms-responder admin endpoint, of this version?)", c.base.Host, path)
	}
	// The status line and body are the endpoint's text: escaped, so that
	// whatever answers at the address cannot steer the terminal.
	return nil, fmt.Errorf("%s%s: %s: %s", c.base.Host, path, printable.Escape(resp.Status), printable.Escape(msg))
}
