package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cfg, err := loadServeConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		fs := newFlagSet("serve", stderr)
		c := defaultServeConfig()
		var p string
		bindServeFlags(fs, &c, &p)
		fs.Usage()
		return exitOK, nil
	}
	if err != nil {
		return exitUsage, err
	}
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel, level)
	return serve(ctx, cfg, log, level)
}

// newLogger returns serve's logger; level is set to the configured level
// and may change later (a SIGHUP reload).
func newLogger(w io.Writer, format, level string, lv *slog.LevelVar) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	lv.Set(l)
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs until ctx is cancelled (SIGINT/SIGTERM) or a listener fails,
// then stops gracefully: withdraw the DNS registration, finish in-flight
// requests, close the ledger. SIGHUP reloads what it can (lifecycle.go).
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger, level *slog.LevelVar) (int, error) {
	cat, err := loadCatalog(cfg.CatalogFile)
	if err != nil {
		return exitUsage, usageError{err}
	}
	started := time.Now()
	hup, stopSignals := hupSignals()
	defer stopSignals()
	live := newReloadable(cfg, level, log)

	if cfg.Ledger {
		if err = os.MkdirAll(cfg.Data, 0o750); err != nil {
			return exitError, fmt.Errorf("data directory: %w", err)
		}
		if err = checkDataDir(cfg.Data); err != nil {
			return exitError, err
		}
	}
	var store *ledger.Ledger // nil with --ledger=false (benchmarks only)
	if cfg.Ledger {
		store, err = ledger.Open(cfg.Data, ledger.Options{Retention: time.Duration(cfg.Retention), MaxRefusals: cfg.MaxRefusalRecords,
			Quarantine: cfg.LedgerQuarantine, Logger: log})
		if err != nil {
			return exitError, ledgerOpenError(err, cfg.Data)
		}
		defer store.Close()
	} else {
		log.Warn("durable ledger disabled (--ledger=false): for benchmarks only; counts, ePIDs, HwId and audit records are lost at restart")
	}

	hostCfg, err := cfg.hostConfig()
	if err != nil {
		return exitUsage, usageError{err}
	}
	h, err := host.New(hostCfg, cat, store, log)
	if err != nil {
		return exitUsage, usageError{err}
	}

	metrics := newResponderMetrics(h, store)
	metrics.limits = connLimits{maxConns: cfg.MaxConnections, maxPerAddr: cfg.MaxConnsPerAddress,
		firstPDU: time.Duration(cfg.FirstPDUTimeout), idle: time.Duration(cfg.IdleTimeout),
		body: time.Duration(cfg.BodyTimeout), io: time.Duration(cfg.IOTimeout)}
	handler := &kmsHandler{host: h, log: log, metrics: metrics, cat: cat}

	srv := dcerpc.NewServer(handler, dcerpc.ServerConfig{
		MaxConns:        cfg.MaxConnections,
		MaxConnsPerAddr: cfg.MaxConnsPerAddress,
		FirstPDUTimeout: time.Duration(cfg.FirstPDUTimeout),
		IdleTimeout:     time.Duration(cfg.IdleTimeout),
		BodyTimeout:     time.Duration(cfg.BodyTimeout),
		IOTimeout:       time.Duration(cfg.IOTimeout),
		AllowPeer:       live.allowPeer, // --allow-client, reloaded on SIGHUP
		Logger:          log,
		Observe:         metrics.observeConn,
	})
	metrics.openConns = srv.Conns

	listeners, err := openListeners(cfg.Listen, log)
	if err != nil {
		return exitError, err
	}
	var listenAddrs []string
	for _, ln := range listeners {
		listenAddrs = append(listenAddrs, ln.Addr().String())
	}

	var reg *registration
	if len(cfg.Register.Servers) > 0 {
		if reg, err = newRegistration(&cfg, listeners, log); err != nil {
			closeAll(listeners)
			return exitUsage, usageError{err}
		}
		metrics.registration = reg
	}

	statusFn := func() any {
		return buildStatus(started, listenAddrs, srv.Conns(), h, store, cfg, reg)
	}
	metrics.registry.MustRegister(&conflictCollector{host: h})
	var admin *adminServer
	if cfg.Metrics != "" {
		var token []byte
		if cfg.AdminTokenFile != "" {
			if token, err = readAdminToken(cfg.AdminTokenFile, true); err != nil {
				closeAll(listeners)
				return exitUsage, usagef("%s: %v", cfg.where("admin_token_file", "admin-token-file"), credentialHint(err, "admin.token"))
			}
		}
		clients := newClientsService(store, cat, h, time.Duration(cfg.RenewalInterval)*time.Minute, time.Duration(cfg.ActivationInterval)*time.Minute)
		admin, err = startAdmin(adminOptions{Addr: cfg.Metrics, Hosts: cfg.AdminHosts, MaxConns: cfg.AdminMaxConns, Token: token, Clients: clients}, metrics.registry, statusFn, func() error {
			if store != nil && !store.Healthy() {
				return errors.New("ledger cannot record activations")
			}
			return nil
		}, log)
		if err != nil {
			closeAll(listeners)
			return exitError, fmt.Errorf("admin listener --metrics %s: %w", cfg.Metrics, err)
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
	attrs := []any{"listen", listenAddrs, "groups", cfg.Groups, "data", cfg.Data}
	if admin != nil {
		attrs = append(attrs, "admin", admin.Addr())
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
		case <-hup:
			live.reload()
		}
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second+time.Duration(cfg.Drain))
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
			log.Info("registration withdrawn; draining", "for", time.Duration(cfg.Drain).String())
			time.Sleep(time.Duration(cfg.Drain))
		}
	}
	stopPub()
	stopServing()
	if err := srv.Shutdown(stopCtx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	wg.Wait()
	if admin != nil {
		_ = admin.Shutdown(stopCtx)
	}
	if store != nil {
		if err := store.Close(); err != nil {
			log.Error("closing ledger", "err", err)
			return exitError, err
		}
		log.Info("ledger closed", "data", cfg.Data)
	}
	log.Info("stopped")
	if runErr != nil {
		return exitError, runErr
	}
	return exitOK, nil
}

// openListeners opens every --listen address. ":PORT" (and the default,
// ":1688") means all IPv4 and all IPv6 addresses, opened as separate
// tcp4/tcp6 sockets: a "tcp" wildcard is dual-stack already, and a second
// one would collide. A family the machine lacks is skipped with a warning;
// a port already in use is an error.
func openListeners(addrs []string, log *slog.Logger) ([]net.Listener, error) {
	var lc net.ListenConfig
	if len(addrs) == 0 {
		addrs = []string{":" + strconv.Itoa(dcerpc.DefaultPort)}
	}
	var lns []net.Listener
	for _, a := range addrs {
		if port, ok := wildcardPort(a); ok {
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

// hostConfig turns the settings into the host policy's configuration.
func (c *serveConfig) hostConfig() (host.Config, error) {
	hc := host.Config{
		Groups:             c.Groups,
		ActivationInterval: int(c.ActivationInterval),
		RenewalInterval:    int(c.RenewalInterval),
		EPIDs:              c.EPIDs,
		LCID:               c.LCID,
		HostBuild:          c.HostBuild,
	}
	if c.HwID != "" {
		h, err := host.ParseHwID(c.HwID)
		if err != nil {
			return hc, err
		}
		hc.HwID = fmt.Sprintf("%X", h[:])
	}
	return hc, nil
}

// buildStatus assembles GET /status.
func buildStatus(started time.Time, listeners []string, open int, h *host.Host, store *ledger.Ledger, cfg serveConfig, reg *registration) statusReport {
	st := h.Status()
	r := statusReport{
		Schema:             statusSchema,
		Started:            started,
		Listeners:          listeners,
		OpenConnections:    open,
		ActivationInterval: int(cfg.ActivationInterval),
		RenewalInterval:    int(cfg.RenewalInterval),
		Ledger:             ledgerStatus{Path: cfg.Data, Healthy: store != nil && store.Healthy(), Disabled: store == nil},
	}
	fillHostStatus(&r, st)
	for _, e := range h.ExpiringWithin(7 * 24 * time.Hour) {
		es := expiringStatus{Application: e.Name, Count: e.Count, Leaving: e.Leaving}
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
func fillHostStatus(r *statusReport, st host.Status) {
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
		gs := groupStatus{Name: g.Name, EPID: g.EPID}
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
		r.Counts = append(r.Counts, countStatus{Application: a.Name, Count: a.Count, Cap: a.Cap,
			Thresholds: "clients need " + strings.Join(th, " or ")})
	}
}
