package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/internal/dnsname"
	"gopkg.in/yaml.v3"
)

// serveConfig is every setting of `serve`. Each is available in the YAML
// config file (key in the yaml tag) and as a flag (same name with dashes).
type serveConfig struct {
	Listen             []string          `yaml:"listen"`
	Groups             []string          `yaml:"groups"`
	Data               string            `yaml:"data"`
	Ledger             bool              `yaml:"ledger"`
	Metrics            string            `yaml:"metrics"`
	ActivationInterval int               `yaml:"activation_interval"`
	RenewalInterval    int               `yaml:"renewal_interval"`
	EPIDs              map[string]string `yaml:"epid"`
	HwID               string            `yaml:"hwid"`
	LCID               int               `yaml:"lcid"`
	HostBuild          int               `yaml:"host_build"`
	AllowClients       []string          `yaml:"allow_clients"`
	MaxConnections     int               `yaml:"max_connections"`
	FirstPDUTimeout    duration          `yaml:"first_pdu_timeout"`
	IdleTimeout        duration          `yaml:"idle_timeout"`
	IOTimeout          duration          `yaml:"io_timeout"`
	Retention          duration          `yaml:"retention"`
	LogFormat          string            `yaml:"log_format"`
	LogLevel           string            `yaml:"log_level"`
	Drain              duration          `yaml:"drain"`
	Register           registerConfig    `yaml:"register"`

	// lines maps a YAML key path ("register.zone") to its line in the
	// config file, so value errors can name file:line.
	lines map[string]int `yaml:"-"`
	file  string         `yaml:"-"`
}

// registerConfig is the DNS registration (RFC 2136 UPDATE) part of serve.
type registerConfig struct {
	Servers     []string `yaml:"servers"`
	Zones       nameList `yaml:"zone"`
	Target      string   `yaml:"target"`
	Addresses   []string `yaml:"addresses"`
	Port        int      `yaml:"port"`
	Priority    int      `yaml:"priority"`
	Weight      int      `yaml:"weight"`
	TTL         int      `yaml:"ttl"`
	Lease       duration `yaml:"lease"`
	TSIGKey     string   `yaml:"tsig_key"`
	TSIGKeyFile string   `yaml:"tsig_key_file"`
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Data:               "/var/lib/kms-responder",
		Ledger:             true,
		Metrics:            "127.0.0.1:9688",
		ActivationInterval: 120,
		RenewalInterval:    10080,
		LCID:               1033,
		MaxConnections:     1024,
		FirstPDUTimeout:    duration(10 * time.Second),
		IdleTimeout:        duration(30 * time.Second),
		IOTimeout:          duration(10 * time.Second),
		Retention:          duration(180 * 24 * time.Hour),
		LogFormat:          "text",
		LogLevel:           "info",
		Drain:              duration(2 * time.Second),
		Register: registerConfig{
			Port:  1688,
			TTL:   60,
			Lease: duration(10 * time.Minute),
		},
	}
}

// duration is a time.Duration that reads "30s" / "10m" in YAML and flags.
type duration time.Duration

func (d duration) String() string { return time.Duration(d).String() }

func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30s, 10m, 24h)", s)
	}
	*d = duration(v)
	return nil
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 30s", n.Line)
	}
	if err := d.Set(n.Value); err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	return nil
}

// nameList is a list of names that YAML may also give as one scalar
// ("zone: example.test" or "zone: [a.test, b.test]").
type nameList []string

func (l *nameList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = nameList{n.Value}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	return fmt.Errorf("line %d: want a name or a list of names", n.Line)
}

// stringList is a repeatable flag.
type stringList struct{ dst *[]string }

func (s stringList) String() string {
	if s.dst == nil {
		return ""
	}
	return strings.Join(*s.dst, ",")
}
func (s stringList) Set(v string) error { *s.dst = append(*s.dst, v); return nil }

// epidFlag is --epid GROUP=EPID, repeatable.
type epidFlag struct{ dst *map[string]string }

func (e epidFlag) String() string { return "" }
func (e epidFlag) Set(v string) error {
	group, epid, ok := strings.Cut(v, "=")
	if !ok || group == "" || epid == "" {
		return fmt.Errorf("want GROUP=EPID, got %q", v)
	}
	if *e.dst == nil {
		*e.dst = map[string]string{}
	}
	(*e.dst)[group] = epid
	return nil
}

// bindServeFlags registers every setting on fs, writing into c.
func bindServeFlags(fs *flag.FlagSet, c *serveConfig, configPath *string) {
	fs.StringVar(configPath, "config", "", "YAML config `file` (flags override it)")
	fs.Var(stringList{&c.Listen}, "listen", "TCP `address` to serve KMS on, repeatable; :PORT means every IPv4 and IPv6 address (default :1688)")
	fs.Var(stringList{&c.Groups}, "group", "host key `group` this host holds, repeatable (see `kms-responder catalog`)")
	fs.StringVar(&c.Data, "data", c.Data, "`directory` for the durable ledger")
	fs.BoolVar(&c.Ledger, "ledger", c.Ledger, "keep the durable ledger; false is for benchmarks only: counts, ePIDs, HwId and audit records are lost at restart")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "admin HTTP `address` for /metrics, /status and /healthz (empty disables)")
	fs.IntVar(&c.ActivationInterval, "activation-interval", c.ActivationInterval, "minutes a client waits before retrying a failed activation (15-43200)")
	fs.IntVar(&c.RenewalInterval, "renewal-interval", c.RenewalInterval, "minutes between client renewals (15-43200)")
	fs.Var(epidFlag{&c.EPIDs}, "epid", "override a group's ePID: `GROUP=EPID`, repeatable")
	fs.StringVar(&c.HwID, "hwid", c.HwID, "override the host's HwId (16 hex digits)")
	fs.IntVar(&c.LCID, "lcid", c.LCID, "LCID used in generated ePIDs")
	fs.IntVar(&c.HostBuild, "host-build", c.HostBuild, "host OS build used in generated ePIDs (0: newest in the catalog)")
	fs.Var(stringList{&c.AllowClients}, "allow-client", "client `network` (CIDR or address) allowed to activate, repeatable (default: all)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "cap on concurrent client connections")
	fs.Var(&c.FirstPDUTimeout, "first-pdu-timeout", "time a new connection has to send its first PDU")
	fs.Var(&c.IdleTimeout, "idle-timeout", "idle time after which a connection is closed")
	fs.Var(&c.IOTimeout, "io-timeout", "deadline for reading one PDU or writing one response")
	fs.Var(&c.Retention, "retention", "how long audit records of clients that stopped coming are kept")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	r := &c.Register
	fs.Var(stringList{&r.Servers}, "dns-server", "DNS server `host:port` to register with, repeatable (none: no registration)")
	fs.Var(stringList{(*[]string)(&r.Zones)}, "zone", "DNS `zone` to publish _vlmcs._tcp in, repeatable")
	fs.StringVar(&r.Target, "target", r.Target, "this host's name in the zone (SRV target): a full name inside the one zone, or a host label placed in every zone")
	fs.Var(&c.Drain, "drain", "after withdrawing the DNS registration on stop, keep serving this long (the vlmcs answer TTL)")
	fs.Var(stringList{&r.Addresses}, "address", "address to publish for the target, repeatable (default: the listen addresses)")
	fs.IntVar(&r.Port, "port", r.Port, "port published in the SRV record")
	fs.IntVar(&r.Priority, "priority", r.Priority, "SRV priority")
	fs.IntVar(&r.Weight, "weight", r.Weight, "SRV weight")
	fs.IntVar(&r.TTL, "ttl", r.TTL, "TTL of the registered records")
	fs.Var(&r.Lease, "lease", "registration lease requested from the DNS server")
	fs.StringVar(&r.TSIGKeyFile, "tsig-key-file", r.TSIGKeyFile, "`file` holding the TSIG key (ALG:NAME:BASE64SECRET, or a BIND key clause); else $KMS_RESPONDER_TSIG_KEY or the config file's tsig_key")
}

// loadServeConfig parses args: an optional --config file first, then flags
// over it. Errors name the file and line, or the flag.
func loadServeConfig(args []string) (serveConfig, error) {
	return parseServeConfig(args, nil)
}

func parseServeConfig(args []string, readFile func(string) ([]byte, error)) (serveConfig, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	c := defaultServeConfig()
	var configPath string
	// First pass: find --config without applying anything else.
	pre := flag.NewFlagSet("serve", flag.ContinueOnError)
	pre.SetOutput(discard{})
	var scratch serveConfig
	var scratchPath string
	bindServeFlags(pre, &scratch, &scratchPath)
	if err := pre.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err}
	}
	if pre.NArg() > 0 {
		return c, usagef("unexpected argument %q", pre.Arg(0))
	}
	if scratchPath != "" {
		data, err := readFile(scratchPath)
		if err != nil {
			return c, usagef("config: %v", err)
		}
		if err := decodeServeYAML(scratchPath, data, &c); err != nil {
			return c, usageError{err}
		}
	}
	// The file set lists; flags given on the command line replace them
	// rather than append to them.
	fileLists := [][]string{c.Listen, c.Groups, c.AllowClients, c.Register.Servers, c.Register.Addresses, c.Register.Zones}
	c.Listen, c.Groups, c.AllowClients, c.Register.Servers, c.Register.Addresses, c.Register.Zones = nil, nil, nil, nil, nil, nil
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(discard{})
	bindServeFlags(fs, &c, &configPath)
	if err := fs.Parse(args); err != nil {
		return c, usageError{err}
	}
	restore := func(dst *[]string, from []string) {
		if *dst == nil {
			*dst = from
		}
	}
	restore(&c.Listen, fileLists[0])
	restore(&c.Groups, fileLists[1])
	restore(&c.AllowClients, fileLists[2])
	restore(&c.Register.Servers, fileLists[3])
	restore(&c.Register.Addresses, fileLists[4])
	restore((*[]string)(&c.Register.Zones), fileLists[5])
	if err := c.validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// decodeServeYAML decodes data into c, rejecting unknown keys, and records
// the line of every key for later value errors.
func decodeServeYAML(file string, data []byte, c *serveConfig) error {
	c.file = file
	c.lines = map[string]int{}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return nil // empty file
	}
	recordLines(root.Content[0], "", c.lines)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
		msg = strings.ReplaceAll(msg, "\n  ", "; ")
		msg = strings.ReplaceAll(msg, " in type main.serveConfig", "")
		msg = strings.ReplaceAll(msg, " in type main.registerConfig", " (in register)")
		return fmt.Errorf("%s: %s", file, msg)
	}
	return nil
}

func recordLines(n *yaml.Node, prefix string, lines map[string]int) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if prefix != "" {
			key = prefix + "." + key
		}
		lines[key] = n.Content[i].Line
		recordLines(n.Content[i+1], key, lines)
	}
}

// where names the origin of a setting: "file:line: key" or "--flag".
func (c *serveConfig) where(key, flagName string) string {
	if line, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s:%d: %s", c.file, line, key)
	}
	return "--" + flagName
}

func (c *serveConfig) validate() error {
	var errs []error
	bad := func(key, flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.where(key, flagName), fmt.Sprintf(format, args...)))
	}
	if len(c.Groups) == 0 {
		bad("groups", "group", "no host key group configured: run `kms-responder catalog` to list them and pass the one(s) this host holds with --group NAME (or groups: in the config file)")
	}
	for _, l := range c.Listen {
		if _, ok := wildcardPort(l); ok {
			continue
		}
		if _, err := netip.ParseAddrPort(l); err != nil {
			bad("listen", "listen", "%q is not ADDRESS:PORT or :PORT (use [::1]:1688 for IPv6)", l)
		}
	}
	for _, a := range c.AllowClients {
		if _, err := parsePrefix(a); err != nil {
			bad("allow_clients", "allow-client", "%v", err)
		}
	}
	interval := func(key, flagName string, v int) {
		if v < 15 || v > 43200 {
			bad(key, flagName, "%d minutes is outside 15-43200", v)
		}
	}
	interval("activation_interval", "activation-interval", c.ActivationInterval)
	interval("renewal_interval", "renewal-interval", c.RenewalInterval)
	if c.HwID != "" {
		if _, err := parseHwID(c.HwID); err != nil {
			bad("hwid", "hwid", "%v", err)
		}
	}
	if c.LCID <= 0 || c.LCID > 0xFFFF {
		bad("lcid", "lcid", "%d is not a valid LCID", c.LCID)
	}
	if c.MaxConnections < 1 {
		bad("max_connections", "max-connections", "must be at least 1")
	}
	for key, d := range map[string]duration{"first_pdu_timeout": c.FirstPDUTimeout, "idle_timeout": c.IdleTimeout, "io_timeout": c.IOTimeout} {
		if d <= 0 {
			bad(key, strings.ReplaceAll(key, "_", "-"), "must be positive")
		}
	}
	if c.Retention < duration(30*24*time.Hour) {
		bad("retention", "retention", "%s is shorter than the 30-day counting window", c.Retention)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format", "log-format", "%q is neither text nor json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.Drain < 0 || c.Drain > duration(10*time.Minute) {
		bad("drain", "drain", "%s is outside 0-10m", c.Drain)
	}
	if c.Data == "" {
		bad("data", "data", "a data directory is required")
	}
	r := c.Register
	if len(r.Servers) > 0 {
		if len(r.Zones) == 0 {
			bad("register.zone", "zone", "registration needs the zone(s) to publish in")
		}
		if r.Target == "" {
			bad("register.target", "target", "registration needs this host's name in the zone")
		}
		if r.Port < 1 || r.Port > 65535 {
			bad("register.port", "port", "%d is not a port", r.Port)
		}
		if r.Priority < 0 || r.Priority > 65535 || r.Weight < 0 || r.Weight > 65535 {
			bad("register.priority", "priority", "priority and weight must be 0-65535")
		}
		if r.TSIGKey != "" && r.TSIGKeyFile != "" {
			bad("register.tsig_key", "tsig-key-file", "give the TSIG key or a key file, not both")
		}
		if len(r.Zones) > 1 && strings.Contains(strings.TrimSuffix(r.Target, "."), ".") {
			bad("register.target", "target", "with several zones give the target as a host label (e.g. kms1), not %q", r.Target)
		}
		for _, a := range r.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("register.addresses", "address", "%q is not an IP address", a)
			}
		}
	}
	return errors.Join(errs...)
}

// wildcardPort reports whether a listen address is ":PORT" (every IPv4 and
// IPv6 address) and returns the port.
func wildcardPort(s string) (uint16, bool) {
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

// parsePrefix reads an address or CIDR network (internal/dnsname.ParsePrefix, shared with the
// plugin).
func parsePrefix(s string) (netip.Prefix, error) { return dnsname.ParsePrefix(s) }

func parseHwID(s string) ([8]byte, error) {
	var h [8]byte
	if len(s) != 16 {
		return h, fmt.Errorf("HwId %q must be 16 hex digits", s)
	}
	for i := range 8 {
		var b byte
		for j := range 2 {
			ch := s[2*i+j]
			var v byte
			switch {
			case ch >= '0' && ch <= '9':
				v = ch - '0'
			case ch >= 'a' && ch <= 'f':
				v = ch - 'a' + 10
			case ch >= 'A' && ch <= 'F':
				v = ch - 'A' + 10
			default:
				return h, fmt.Errorf("HwId %q has a non-hex digit", s)
			}
			b = b<<4 | v
		}
		h[i] = b
	}
	return h, nil
}
