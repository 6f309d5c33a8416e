package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestChangedKeys(t *testing.T) {
	a := defaultServeConfig()
	b := defaultServeConfig()
	if got := changedKeys(a, b); len(got) != 0 {
		t.Fatalf("equal configs differ in %v", got)
	}
	b.Groups = []string{"office-ltsc-2024"}
	b.Register.Zones = nameList{"example.test"}
	b.Drain = duration(0)
	b.lines = map[string]int{"x": 1} // not a setting
	if got, want := changedKeys(a, b), []string{"groups", "drain", "register.zone"}; !slices.Equal(got, want) {
		t.Fatalf("changed %v, want %v", got, want)
	}
}

// TestReload: a SIGHUP reload applies log_level and allow_clients, names
// the settings that need a restart, and keeps everything when the file no
// longer parses.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "kms.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("groups: [windows-server-2025]\nlog_level: info\nallow_clients: [10.0.0.0/8]\n")
	cfg, err := loadServeConfig([]string{"--config", cfgPath, "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	level := new(slog.LevelVar)
	log := newLogger(&out, "text", cfg.LogLevel, level)
	r := newReloadable(cfg, level, log)
	v4 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	if !r.allowPeer(v4("10.1.2.3")) || r.allowPeer(v4("192.0.2.1")) {
		t.Fatal("allow_clients not in force before the reload")
	}

	write("groups: [windows-server-2025, office-ltsc-2024]\nlog_level: debug\nallow_clients: [192.0.2.0/24]\n")
	r.reload()
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after reload, want debug", level.Level())
	}
	if r.allowPeer(v4("10.1.2.3")) || !r.allowPeer(v4("192.0.2.1")) || !r.allowPeer(v4("::ffff:192.0.2.1")) {
		t.Error("allow_clients not replaced by the reload")
	}
	if s := out.String(); !strings.Contains(s, "log_level=debug") || !strings.Contains(s, "need_restart=[groups]") {
		t.Errorf("reload log:\n%s", s)
	}

	out.Reset()
	write("groups: [windows-server-2025]\nlog_level: loud\n")
	r.reload()
	if level.Level() != slog.LevelDebug || !r.allowPeer(v4("192.0.2.1")) {
		t.Error("a config that does not parse changed the running settings")
	}
	if s := out.String(); !strings.Contains(s, "configuration not reloaded") || !strings.Contains(s, `\"loud\" is not debug, info, warn or error`) {
		t.Errorf("bad-config reload log:\n%s", s)
	}

	out.Reset()
	write("groups: [windows-server-2025]\nlog_level: debug\n")
	r.reload()
	if !r.allowPeer(v4("10.1.2.3")) {
		t.Error("an emptied allow_clients did not allow every client again")
	}
}
