// Package admin is kms-responder's admin HTTP server: /metrics, /healthz
// and the routes serve hands in, behind a Host filter (DNS rebinding), a
// bearer-token check for routes that show client data and a connection
// cap. It knows nothing of the host, the ledger or the catalog.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin HTTP limits. The admin endpoint is for a scraper, a health check
// and an operator's `status`: a few connections, small requests.
const (
	adminReadHeaderTimeout = 5 * time.Second
	adminReadTimeout       = 10 * time.Second
	adminWriteTimeout      = 10 * time.Second
	adminIdleTimeout       = 30 * time.Second
	adminMaxHeaderBytes    = 16 << 10
)

// Namespace prefixes the admin server's own metrics.
const Namespace = "kms_responder"

// Route is one path the admin server serves besides /metrics and /healthz.
type Route struct {
	// Pattern is an http.ServeMux pattern ("GET /status").
	Pattern string
	// Handler answers the route.
	Handler http.HandlerFunc
	// Private routes show client data: they need the bearer token when
	// one is configured.
	Private bool
}

// Options configure the admin HTTP server.
type Options struct {
	// Addr is the listen address (--metrics).
	Addr string
	// Hosts are extra names accepted in the Host header (--admin-host).
	Hosts []string
	// MaxConns caps open admin connections (--admin-max-connections).
	MaxConns int
	// MaxConnsPerAddr caps the connections from one client address that
	// are sending a request or being answered
	// (--admin-max-connections-per-address); at most MaxConns, which 0
	// means. Silent connections count against MaxConns only.
	MaxConnsPerAddr int
	// Token, when set, is the bearer token Private routes require
	// (--admin-token-file).
	Token []byte
	// Registry is served at /metrics; the server adds its own collectors
	// to it.
	Registry *prometheus.Registry
	// Healthy answers /healthz: nil is 200 OK, an error 503 with its text.
	Healthy func() error
	// Routes are the other paths served.
	Routes []Route
	// Logger receives refusals (rate-limited) and listener errors.
	Logger *slog.Logger

	// ReadTimeout and WriteTimeout replace the defaults (10s) when set.
	ReadTimeout, WriteTimeout time.Duration
}

// Server serves /metrics, /healthz and the routes handed in on one
// listener. It is loopback by default: status names clients' counts and
// the host's ePIDs.
type Server struct {
	srv *http.Server
	ln  *cappedListener
}

// Start listens on opts.Addr and serves in the background. Requests
// whose Host header is not this endpoint's get 421 (see hostFilter);
// a connection beyond opts.MaxConns evicts one waiting (silent or sending
// its request header), or is closed (see cappedListener).
func Start(opts Options) (*Server, error) {
	reg, log := opts.Registry, opts.Logger
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "admin_refused_total",
		Help: "Admin HTTP connections and requests refused: host (Host header not this endpoint's, e.g. DNS rebinding), connection_cap (at the cap with every connection being answered), evicted (a silent connection, one that has sent nothing since it opened or went idle, closed to make room), slow_header (a connection still sending its request header closed to make room), address_cap (a request from an address with its cap of busy connections: its connection closed), token (/status or /clients without the admin bearer token).",
	}, []string{"reason"})
	maxConns := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "admin_max_connections",
		Help: "Cap on open admin HTTP connections.",
	})
	maxPerAddr := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "admin_max_connections_per_address",
		Help: "Cap on admin HTTP connections from one client address that are sending a request or being answered.",
	})
	maxConns.Set(float64(opts.MaxConns))
	perAddr := opts.MaxConns
	if opts.MaxConnsPerAddr > 0 {
		perAddr = min(perAddr, opts.MaxConnsPerAddr)
	}
	maxPerAddr.Set(float64(perAddr))
	if err := errors.Join(reg.Register(refused), reg.Register(maxConns), reg.Register(maxPerAddr)); err != nil {
		return nil, err
	}
	for _, r := range []string{"host", reasonConnCap, reasonEvicted, reasonSlowHdr, reasonAddrCap, "token"} {
		refused.WithLabelValues(r)
	}
	inner, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	ln := newCappedListener(inner, opts.MaxConns, perAddr, func(reason string) { refused.WithLabelValues(reason).Inc() })

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	// Client data (names, addresses, the host's ePIDs) needs the token
	// when one is configured; serve requires one beyond loopback.
	guard := func(h http.HandlerFunc) http.HandlerFunc { return h }
	if len(opts.Token) > 0 {
		guard = newTokenAuth(opts.Token, log, func() { refused.WithLabelValues("token").Inc() }).wrap
	}
	for _, r := range opts.Routes {
		if r.Private {
			mux.HandleFunc(r.Pattern, guard(r.Handler))
		} else {
			mux.HandleFunc(r.Pattern, r.Handler)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := opts.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK\n"))
	})
	hf := newHostFilter(opts.Addr, opts.Hosts, log, func() { refused.WithLabelValues("host").Inc() })
	readTimeout, writeTimeout := adminReadTimeout, adminWriteTimeout
	if opts.ReadTimeout > 0 {
		readTimeout = opts.ReadTimeout
	}
	if opts.WriteTimeout > 0 {
		writeTimeout = opts.WriteTimeout
	}
	a := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           hf.wrap(mux),
			ReadHeaderTimeout: adminReadHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       adminIdleTimeout,
			MaxHeaderBytes:    adminMaxHeaderBytes,
			ConnState:         ln.track,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	return a, nil
}

// WriteJSON writes v as indented JSON, the admin endpoint's format.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Addr is the address the admin server listens on.
func (a *Server) Addr() string { return a.ln.Addr().String() }

// Shutdown stops the admin server, waiting for requests in flight.
func (a *Server) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// ValidateHost checks one --admin-host name.
func ValidateHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, c := range h {
		ok := c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			return fmt.Errorf("%q is not a host name (letters, digits, '-' and '.' only, no port)", h)
		}
	}
	return nil
}
