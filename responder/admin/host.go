package admin

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// hostFilter refuses admin requests whose Host header names anything but
// this endpoint: a page in a browser on this machine can make its own name
// resolve to 127.0.0.1 (DNS rebinding) and read /status (ePIDs, HwId,
// paths) as same-origin. Accepted: an IP literal without a zone,
// "localhost", the name in --metrics and any --admin-host; everything else
// gets 421 and is logged (at most once a second, with how many were not
// logged).
type hostFilter struct {
	names  map[string]bool
	log    *slog.Logger
	count  func()
	limit  logLimiter
	listen string
}

func newHostFilter(listen string, extra []string, log *slog.Logger, count func()) *hostFilter {
	f := &hostFilter{names: map[string]bool{"localhost": true}, log: log, count: count, listen: listen}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		f.names[canonicalHost(h)] = true
	}
	for _, h := range extra {
		f.names[canonicalHost(h)] = true
	}
	return f
}

// canonicalHost lower-cases a host name and drops a trailing dot.
func canonicalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allowed reports whether a Host header value names this endpoint.
func (f *hostFilter) allowed(hostHeader string) bool {
	if hostHeader == "" {
		return true // HTTP/1.0 without Host: not a browser
	}
	h := hostHeader
	if host, _, err := net.SplitHostPort(hostHeader); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		// A zone is free text after '%' ("0::%]" parses), and no client
		// naming this endpoint sends one: browsers cannot, Go's HTTP
		// client and curl drop it from Host.
		return a.Zone() == ""
	}
	return f.names[canonicalHost(h)]
}

func (f *hostFilter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.allowed(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		f.count()
		f.logRefusal(r)
		w.Header().Set("Connection", "close")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.Error(w, fmt.Sprintf("421 misdirected request: this admin endpoint answers only Host: %s, localhost or an IP address (add names with --admin-host)", f.listen), http.StatusMisdirectedRequest)
	})
}

func (f *hostFilter) logRefusal(r *http.Request) {
	ok, quiet := f.limit.allow(time.Now())
	if !ok {
		return
	}
	f.log.Warn("admin request refused: its Host header does not name this endpoint (a browser page using DNS rebinding looks like this); use the --metrics address or add the name with --admin-host",
		"host", clientText(r.Host), "remote", r.RemoteAddr, "path", clientText(r.URL.Path), "not_logged_since_last", quiet)
}
