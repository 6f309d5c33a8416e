// Package serve runs kms-responder's KMS host: the DCE/RPC listeners, the
// host policy and its durable ledger, the admin endpoint and the DNS
// registration, from start to a graceful stop. The command line builds a
// Config and maps Run's errors to exit codes.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/admin"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/inventory"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// Config is what Run serves, every value checked and converted by the
// caller.
type Config struct {
	// Listen are the KMS listen addresses: "ADDR:PORT", or ":PORT" for
	// every IPv4 and IPv6 address; none means ":1688".
	Listen []string
	// Catalog names products and host key groups.
	Catalog *catalog.Catalog
	// Host is the host policy's configuration.
	Host host.Config
	// Data names the ledger's directory; the caller opens and checks it
	// and hands it over held open in LedgerOptions.Root.
	Data string
	// Ledger keeps the durable ledger; false is for benchmarks only.
	Ledger bool
	// LedgerOptions open the ledger (its Logger is set by Run).
	LedgerOptions ledger.Options
	// Limits are the KMS listeners' connection limits.
	Limits dcerpc.Limits
	// Admin is the admin endpoint; an empty Addr disables it.
	Admin AdminConfig
	// Register is the DNS registration; nil registers nowhere.
	Register *RegisterConfig
	// Drain is how long the listeners keep answering after the
	// registration is withdrawn on stop.
	Drain time.Duration
}

// AdminConfig configures the admin endpoint (see package admin).
type AdminConfig struct {
	Addr            string
	Hosts           []string
	MaxConns        int
	MaxConnsPerAddr int
	// Token is the bearer token /status and /clients need; nil: none.
	Token []byte
}

// Options are Run's hooks into the caller.
type Options struct {
	// Logger receives serve's structured log.
	Logger *slog.Logger
	// AllowPeer decides which client addresses may activate (nil: all);
	// the caller may change its answer while serving (SIGHUP).
	AllowPeer func(netip.Addr) bool
}

// ConfigError is a configuration mistake Run found while starting (the
// command line exits 64 for it).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Run serves until ctx is cancelled (SIGINT/SIGTERM) or a listener fails,
// then stops gracefully: withdraw the DNS registration, finish in-flight
// requests, close the ledger.
func Run(ctx context.Context, cfg Config, opts Options) error {
	log := opts.Logger
	cat := cfg.Catalog
	started := time.Now()

	var store *ledger.Ledger // nil with Ledger false (benchmarks only)
	if cfg.Ledger {
		lo := cfg.LedgerOptions
		lo.Logger = log
		var err error
		if store, err = ledger.Open(cfg.Data, lo); err != nil {
			return err
		}
		defer store.Close()
	} else {
		log.Warn("durable ledger disabled (--ledger=false): for benchmarks only; counts, ePIDs, HwId and audit records are lost at restart")
	}

	h, err := host.New(cfg.Host, cat, store, log)
	if err != nil {
		return &ConfigError{err}
	}

	metrics := newResponderMetrics()
	handler := &kmsHandler{host: h, log: log, metrics: metrics}
	srv := dcerpc.NewServer(handler, dcerpc.ServerConfig{
		Limits:    cfg.Limits,
		AllowPeer: opts.AllowPeer, // --allow-client, reloaded on SIGHUP
		Logger:    log,
		Observe:   metrics.observeConn,
	})

	listeners, err := openListeners(cfg.Listen, log)
	if err != nil {
		return err
	}
	var listenAddrs []string
	for _, ln := range listeners {
		listenAddrs = append(listenAddrs, ln.Addr().String())
	}

	var reg *registration
	if cfg.Register != nil {
		if reg, err = newRegistration(*cfg.Register, listeners, log); err != nil {
			closeAll(listeners)
			return &ConfigError{err}
		}
	}
	metrics.registry.MustRegister(
		&stateCollector{host: h, store: store, limits: cfg.Limits, openConns: srv.Conns, registration: reg},
		&conflictCollector{host: h})

	var adm *admin.Server
	if cfg.Admin.Addr != "" {
		clients := inventory.New(store, cat, h, time.Duration(cfg.Host.RenewalInterval)*time.Minute, time.Duration(cfg.Host.ActivationInterval)*time.Minute)
		adm, err = admin.Start(admin.Options{
			Addr: cfg.Admin.Addr, Hosts: cfg.Admin.Hosts, MaxConns: cfg.Admin.MaxConns, MaxConnsPerAddr: cfg.Admin.MaxConnsPerAddr, Token: cfg.Admin.Token,
			Registry: metrics.registry, Logger: log,
			Healthy: func() error {
				if store != nil && !store.Healthy() {
					return errors.New("ledger cannot record activations")
				}
				return nil
			},
			Routes: []admin.Route{
				{Pattern: "GET /status", Private: true, Handler: func(w http.ResponseWriter, r *http.Request) {
					admin.WriteJSON(w, buildStatus(started, listenAddrs, srv.Conns(), h, store, cfg, reg))
				}},
				{Pattern: "GET /clients", Private: true, Handler: clients.List},
				{Pattern: "GET /clients/summary", Private: true, Handler: clients.Summary},
			},
		})
		if err != nil {
			closeAll(listeners)
			return fmt.Errorf("admin listener --metrics %s: %w", cfg.Admin.Addr, err)
		}
	}
	// Serving outlives ctx: on a signal the registration is withdrawn first
	// and the listeners keep answering through the drain period.
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	var wg sync.WaitGroup
	serveErr := make(chan error, len(listeners))
	for _, ln := range listeners {
		wg.Go(func() {
			if err := srv.Serve(serveCtx, ln); err != nil && !errors.Is(err, dcerpc.ErrServerClosed) {
				serveErr <- fmt.Errorf("listener %s: %w", ln.Addr(), err)
			}
		})
	}
	attrs := []any{"listen", listenAddrs, "groups", cfg.Host.Groups, "data", cfg.Data}
	if adm != nil {
		attrs = append(attrs, "admin", adm.Addr())
	}
	log.Info("kms-responder serving", attrs...)

	pubCtx, stopPub := context.WithCancel(context.Background())
	pubDone := make(chan struct{})
	if reg != nil {
		go func() {
			defer close(pubDone)
			reg.run(pubCtx)
		}()
		if store != nil {
			go reg.watchLedger(pubCtx, store, log)
		}
	} else {
		close(pubDone)
	}

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: withdrawing registration, draining, finishing in-flight requests")
			break wait
		case runErr = <-serveErr:
			log.Error("listener failed; stopping: withdrawing registration, closing the ledger", "err", runErr)
			break wait
		}
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second+cfg.Drain)
	defer cancel()
	if reg != nil {
		wasRegistered := reg.registered()
		if err := reg.withdraw(stopCtx); err != nil {
			log.Warn("withdrawing DNS registration", "err", err)
		}
		stopPub()
		<-pubDone
		if wasRegistered && runErr == nil && cfg.Drain > 0 {
			// Clients that resolved us just before the withdrawal may still
			// come for up to the answer TTL: keep serving them.
			log.Info("registration withdrawn; draining", "for", cfg.Drain.String())
			time.Sleep(cfg.Drain)
		}
	}
	stopPub()
	stopServing()
	if err := srv.Shutdown(stopCtx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	wg.Wait()
	if adm != nil {
		_ = adm.Shutdown(stopCtx)
	}
	if store != nil {
		if err := store.Close(); err != nil {
			log.Error("closing ledger", "err", err)
			return err
		}
		log.Info("ledger closed", "data", cfg.Data)
	}
	log.Info("stopped")
	return runErr
}

// openListeners opens every --listen address. ":PORT" (and the default,
// ":1688") means all IPv4 and all IPv6 addresses, opened as separate
// tcp4/tcp6 sockets: a "tcp" wildcard is dual-stack already, and a second
// one would collide. A family the machine lacks is skipped with a warning;
// a port already in use is an error.
func openListeners(addrs []string, log *slog.Logger) ([]net.Listener, error) {
	// No TCP keep-alive on accepted connections: every read already has a
	// deadline (dcerpc's idle, body and I/O timeouts), which ends a dead
	// peer's connection sooner than keep-alive probes would, and turning
	// keep-alive on costs four setsockopt calls per connection.
	lc := net.ListenConfig{KeepAlive: -1}
	if len(addrs) == 0 {
		addrs = []string{":" + strconv.Itoa(dcerpc.DefaultPort)}
	}
	var lns []net.Listener
	for _, a := range addrs {
		if port, ok := WildcardPort(a); ok {
			opened := 0
			for _, w := range []struct{ network, addr string }{
				{"tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(int(port)))},
				{"tcp6", net.JoinHostPort("::", strconv.Itoa(int(port)))},
			} {
				ln, err := lc.Listen(context.Background(), w.network, w.addr)
				if errors.Is(err, syscall.EADDRINUSE) {
					closeAll(lns)
					return nil, fmt.Errorf("--listen %s: %w", a, err)
				}
				if err != nil {
					log.Warn("cannot listen; skipping this address family", "address", w.addr, "err", err)
					continue
				}
				lns = append(lns, ln)
				opened++
			}
			if opened == 0 {
				closeAll(lns)
				return nil, fmt.Errorf("--listen %s: cannot listen on port %d on IPv4 or IPv6", a, port)
			}
			continue
		}
		ap := netip.MustParseAddrPort(a) // validated by config
		network := "tcp4"
		if ap.Addr().Is6() && !ap.Addr().Is4In6() {
			network = "tcp6"
		}
		ln, err := lc.Listen(context.Background(), network, a)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("--listen %s: %w", a, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// WildcardPort reports whether a listen address is ":PORT" (every IPv4 and
// IPv6 address) and returns the port.
func WildcardPort(s string) (uint16, bool) {
	rest, ok := strings.CutPrefix(s, ":")
	if !ok || rest == "" {
		return 0, false
	}
	p, err := strconv.ParseUint(rest, 10, 16)
	if err != nil || p == 0 {
		return 0, false
	}
	return uint16(p), true
}

// buildStatus assembles GET /status.
func buildStatus(started time.Time, listeners []string, open int, h *host.Host, store *ledger.Ledger, cfg Config, reg *registration) statusapi.Report {
	st := h.Status()
	r := statusapi.Report{
		Schema:             statusapi.Schema,
		Started:            started,
		Listeners:          listeners,
		OpenConnections:    open,
		ActivationInterval: cfg.Host.ActivationInterval,
		RenewalInterval:    cfg.Host.RenewalInterval,
		Ledger:             statusapi.Ledger{Path: cfg.Data, Healthy: store != nil && store.Healthy(), Disabled: store == nil},
	}
	fillHostStatus(&r, st)
	for _, e := range h.ExpiringWithin(7 * 24 * time.Hour) {
		es := statusapi.Expiring{Application: e.Name, Count: e.Count, Leaving: e.Leaving}
		if !e.Next.IsZero() {
			t := e.Next.UTC()
			es.First = &t
		}
		r.Expiring = append(r.Expiring, es)
	}
	if reg != nil {
		r.Registration = reg.status()
	}
	return r
}

// fillHostStatus copies the host policy's view into the status report.
func fillHostStatus(r *statusapi.Report, st host.Status) {
	r.HwID = st.HwID
	r.Requests = st.RequestsByResult
	r.LicenseStates = st.RequestsByLicense
	if !st.LastRequest.IsZero() {
		t := st.LastRequest
		r.LastRequest = &t
	}
	r.Ledger.Healthy = r.Ledger.Healthy && st.Ledger.Healthy
	r.Ledger.LastError = st.Ledger.LastError
	for _, g := range st.Groups {
		gs := statusapi.Group{Name: g.Name, EPID: g.EPID}
		for _, p := range g.Activates {
			gs.Activates = append(gs.Activates, p.Name)
		}
		r.Groups = append(r.Groups, gs)
	}
	for _, a := range st.Apps {
		th := make([]string, len(a.Thresholds))
		for i, t := range a.Thresholds {
			th[i] = strconv.Itoa(t)
		}
		r.Counts = append(r.Counts, statusapi.Count{Application: a.Name, Count: a.Count, Cap: a.Cap,
			Thresholds: "clients need " + strings.Join(th, " or ")})
	}
}
