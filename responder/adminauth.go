package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
)

// adminTokenEnv is the environment variable the client commands read the
// admin bearer token from when --admin-token-file is not given.
const adminTokenEnv = "KMS_RESPONDER_ADMIN_TOKEN"

// minAdminToken is the shortest token accepted: 16 bytes (128 bits when
// random; `openssl rand -hex 32` gives 64 characters).
const minAdminToken = 16

// maxAdminTokenFile bounds what is read from a token file.
const maxAdminTokenFile = 4096

// readAdminToken reads a bearer token from path: the file's first line,
// surrounding white space removed. serve refuses a file group or others
// can read (as for TSIG keys), or a token too short to resist guessing.
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
	if err := checkToken(tok); err != nil {
		return nil, fmt.Errorf("admin token file %s: %w", path, err)
	}
	return tok, nil
}

// checkToken refuses a token that is short or cannot go in a header.
func checkToken(tok []byte) error {
	if len(tok) < minAdminToken {
		return fmt.Errorf("the token has %d bytes, at least %d are needed (make one with `openssl rand -hex 32`)", len(tok), minAdminToken)
	}
	for _, c := range tok {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("the token holds a space or a non-printable or non-ASCII byte")
		}
	}
	return nil
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

// isLoopbackListen reports whether an admin listen address ("host:port")
// is reachable from this machine only.
func isLoopbackListen(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// tokenAuth guards the admin paths that show client data (/status,
// /clients): a request must carry "Authorization: Bearer TOKEN". Refusals
// get 401, are counted and logged (at most once a second).
type tokenAuth struct {
	sum   [sha256.Size]byte
	log   *slog.Logger
	count func()
	limit logLimiter
}

func newTokenAuth(token []byte, log *slog.Logger, count func()) *tokenAuth {
	return &tokenAuth{sum: sha256.Sum256(token), log: log, count: count}
}

// ok compares the request's bearer token with the configured one in
// constant time (hashes first, so the length does not leak either).
func (a *tokenAuth) ok(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1
}

func (a *tokenAuth) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.ok(r) {
			next(w, r)
			return
		}
		a.count()
		a.logRefusal(r)
		w.Header().Set("WWW-Authenticate", `Bearer realm="kms-responder admin"`)
		http.Error(w, "401 unauthorized: "+r.URL.Path+" shows client data and needs the admin token: pass --admin-token-file FILE or set "+adminTokenEnv, http.StatusUnauthorized)
	}
}

func (a *tokenAuth) logRefusal(r *http.Request) {
	ok, quiet := a.limit.allow(time.Now())
	if !ok {
		return
	}
	reason := "no bearer token"
	if r.Header.Get("Authorization") != "" {
		reason = "wrong token"
	}
	a.log.Warn("admin request refused: "+reason+" (it shows client data; the client commands send the token from --admin-token-file or $"+adminTokenEnv+")",
		"remote", r.RemoteAddr, "path", r.URL.Path, "not_logged_since_last", quiet)
}
