package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/serve"
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
	return runServeConfig(ctx, cfg, log, level)
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

// runServeConfig prepares what serve.Run needs from the settings (the
// catalog, the checked data directory, the admin token, the registration)
// and runs it, reloading on SIGHUP (lifecycle.go) until ctx ends.
func runServeConfig(ctx context.Context, cfg serveConfig, log *slog.Logger, level *slog.LevelVar) (int, error) {
	cat, err := loadCatalog(cfg.CatalogFile)
	if err != nil {
		return exitUsage, usageError{err}
	}
	hup, stopSignals := hupSignals()
	defer stopSignals()
	live := newReloadable(cfg, level, log)
	reloads := make(chan struct{})
	defer close(reloads)
	go func() {
		for {
			select {
			case <-hup:
				live.reload()
			case <-reloads:
				return
			}
		}
	}()

	var dataDir *os.Root
	if cfg.Ledger {
		// Opened and checked once, by descriptor: the ledger works
		// relative to it, whatever the path comes to name later.
		if dataDir, err = fileperm.OpenDir("data directory", cfg.Data, 0o750); err != nil {
			return exitError, err
		}
		defer dataDir.Close()
	}
	sc, err := cfg.runConfig()
	if err != nil {
		return exitUsage, usageError{err}
	}
	sc.LedgerOptions.Root = dataDir
	sc.Catalog = cat
	err = serve.Run(ctx, sc, serve.Options{Logger: log, AllowPeer: live.allowPeer})
	var ce *serve.ConfigError
	switch {
	case err == nil:
		return exitOK, nil
	case errors.As(err, &ce):
		return exitUsage, usageError{err}
	}
	return exitError, ledgerOpenError(err, cfg.Data)
}

// runConfig turns the settings into serve's configuration; errors name
// the file:line or flag.
func (c *serveConfig) runConfig() (serve.Config, error) {
	sc := serve.Config{
		Listen: c.Listen,
		Host:   c.hostConfig(),
		Data:   c.Data,
		Ledger: c.Ledger,
		LedgerOptions: ledger.Options{Retention: time.Duration(c.Retention), MaxRefusals: c.MaxRefusalRecords,
			Quarantine: c.LedgerQuarantine},
		Limits: dcerpc.Limits{
			MaxConns:        c.MaxConnections,
			MaxConnsPerAddr: c.MaxConnsPerAddress,
			FirstPDUTimeout: time.Duration(c.FirstPDUTimeout),
			IdleTimeout:     time.Duration(c.IdleTimeout),
			BodyTimeout:     time.Duration(c.BodyTimeout),
			IOTimeout:       time.Duration(c.IOTimeout),
		},
		Admin: serve.AdminConfig{Addr: c.Metrics, Hosts: c.AdminHosts, MaxConns: c.AdminMaxConns, MaxConnsPerAddr: c.AdminMaxPerAddress},
		Drain: time.Duration(c.Drain),
	}
	var err error
	if c.Metrics != "" && c.AdminTokenFile != "" {
		if sc.Admin.Token, err = readAdminToken(c.AdminTokenFile, true); err != nil {
			return sc, fmt.Errorf("--admin-token-file: %v", err)
		}
	}
	if sc.Register, err = c.registerConfig(); err != nil {
		return sc, err
	}
	return sc, nil
}

// hostConfig turns the settings into the host policy's configuration.
func (c *serveConfig) hostConfig() host.Config {
	return host.Config{
		Groups:             c.Groups,
		ActivationInterval: int(c.ActivationInterval),
		RenewalInterval:    int(c.RenewalInterval),
		EPIDs:              c.EPIDs,
		LCID:               c.LCID,
		HostBuild:          c.HostBuild,
		HwID:               c.hwid,
	}
}
