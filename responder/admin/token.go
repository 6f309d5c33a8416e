package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// IsLoopbackListen reports whether an admin listen address ("host:port")
// is reachable from this machine only.
func IsLoopbackListen(addr string) bool {
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
		http.Error(w, "401 unauthorized: "+r.URL.Path+" shows client data and needs the admin token: pass --admin-token-file FILE or set "+statusapi.TokenEnv, http.StatusUnauthorized)
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
	a.log.Warn("admin request refused: "+reason+" (it shows client data; the client commands send the token from --admin-token-file or $"+statusapi.TokenEnv+")",
		"remote", r.RemoteAddr, "path", clientText(r.URL.Path), "not_logged_since_last", quiet)
}
