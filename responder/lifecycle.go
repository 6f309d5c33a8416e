package main

import (
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// SIGHUP does not stop serve (by default it would, at once, without
// withdrawing the DNS registration or closing the ledger). Logs go to
// stderr, so there is nothing to reopen; instead serve re-reads its
// configuration (the same --config file and flags) and applies what can
// change while serving: log_level and allow_clients. Settings that need a
// restart are named in a warning and keep their running values; a config
// that no longer parses is logged and ignored.
//
// SIGPIPE is caught too: a closed stderr (a log collector restarting, a
// pipe into `head`) must not kill serve either; log writes just fail.

// hupSignals starts catching SIGHUP and SIGPIPE; stop undoes it.
func hupSignals() (hup <-chan os.Signal, stop func()) {
	h := make(chan os.Signal, 1)
	signal.Notify(h, syscall.SIGHUP)
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	return h, func() { signal.Stop(h); signal.Stop(pipe) }
}

// reloadable is the part of a running serve a SIGHUP can change.
type reloadable struct {
	running serveConfig
	level   *slog.LevelVar
	allow   atomic.Pointer[[]netip.Prefix] // empty: every client
	log     *slog.Logger
}

func newReloadable(cfg serveConfig, level *slog.LevelVar, log *slog.Logger) *reloadable {
	r := &reloadable{running: cfg, level: level, log: log}
	r.setAllow(cfg.AllowClients)
	return r
}

func (r *reloadable) setAllow(list []string) {
	var nets []netip.Prefix
	for _, a := range list {
		p, _ := parsePrefix(a) // validated
		nets = append(nets, p)
	}
	r.allow.Store(&nets)
}

// allowPeer is the KMS listener's AllowPeer: --allow-client as now loaded.
func (r *reloadable) allowPeer(a netip.Addr) bool {
	nets := *r.allow.Load()
	if len(nets) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reload re-reads the configuration and applies what it can.
func (r *reloadable) reload() {
	next, err := loadServeConfig(r.running.args)
	if err != nil {
		r.log.Error("SIGHUP: configuration not reloaded; still serving with the running one", "err", err)
		return
	}
	var applied []string
	if next.LogLevel != r.running.LogLevel {
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(next.LogLevel)) // validated
		r.level.Set(lv)
		applied = append(applied, "log_level="+next.LogLevel)
		r.running.LogLevel = next.LogLevel
	}
	if !slices.Equal(next.AllowClients, r.running.AllowClients) {
		r.setAllow(next.AllowClients)
		applied = append(applied, "allow_clients=["+strings.Join(next.AllowClients, ",")+"]")
		r.running.AllowClients = next.AllowClients
	}
	restart := changedKeys(r.running, next)
	attrs := []any{"applied", applied}
	if len(restart) > 0 {
		attrs = append(attrs, "need_restart", restart)
		r.log.Warn("SIGHUP: configuration reloaded; some changed settings apply only after a restart (systemctl restart withdraws, drains and registers again)", attrs...)
		return
	}
	r.log.Info("SIGHUP: configuration reloaded", attrs...)
}

// changedKeys names the YAML keys whose values differ between a and b
// ("register.zone"), recursing into nested sections.
func changedKeys(a, b serveConfig) []string {
	var out []string
	var walk func(prefix string, va, vb reflect.Value)
	walk = func(prefix string, va, vb reflect.Value) {
		t := va.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || key == "" || key == "-" {
				continue
			}
			if prefix != "" {
				key = prefix + "." + key
			}
			fa, fb := va.Field(i), vb.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(key, fa, fb)
				continue
			}
			if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
				out = append(out, key)
			}
		}
	}
	walk("", reflect.ValueOf(a), reflect.ValueOf(b))
	return out
}
