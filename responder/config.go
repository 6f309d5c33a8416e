package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
	"github.com/kmsdns/kmsdns/plugin/pkg/suggest"
	"github.com/kmsdns/kmsdns/responder/admin"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/publish"
	"github.com/kmsdns/kmsdns/responder/serve"
)

// serveConfig is every setting of `serve`. Each is available in the YAML
// config file (key in the yaml tag) and as a flag (same name with dashes).
type serveConfig struct {
	Listen             []string          `yaml:"listen"`
	Groups             []string          `yaml:"groups"`
	CatalogFile        string            `yaml:"catalog_file"`
	Data               string            `yaml:"data"`
	Ledger             bool              `yaml:"ledger"`
	Metrics            string            `yaml:"metrics"`
	AdminHosts         []string          `yaml:"admin_hosts"`
	AdminMaxConns      int               `yaml:"admin_max_connections"`
	AdminMaxPerAddress int               `yaml:"admin_max_connections_per_address"`
	AdminTokenFile     string            `yaml:"admin_token_file"`
	ActivationInterval minutes           `yaml:"activation_interval"`
	RenewalInterval    minutes           `yaml:"renewal_interval"`
	EPIDs              map[string]string `yaml:"epid"`
	HwID               string            `yaml:"hwid"`
	LCID               int               `yaml:"lcid"`
	HostBuild          int               `yaml:"host_build"`
	AllowClients       []string          `yaml:"allow_clients"`
	MaxConnections     int               `yaml:"max_connections"`
	MaxConnsPerAddress int               `yaml:"max_connections_per_address"`
	FirstPDUTimeout    duration          `yaml:"first_pdu_timeout"`
	IdleTimeout        duration          `yaml:"idle_timeout"`
	BodyTimeout        duration          `yaml:"body_timeout"`
	IOTimeout          duration          `yaml:"io_timeout"`
	Retention          duration          `yaml:"retention"`
	MaxRefusalRecords  int               `yaml:"max_refusal_records"`
	LedgerQuarantine   bool              `yaml:"ledger_quarantine"`
	LogFormat          string            `yaml:"log_format"`
	LogLevel           string            `yaml:"log_level"`
	Drain              duration          `yaml:"drain"`
	Register           registerConfig    `yaml:"register"`

	// lines maps a YAML key path ("register.zone") to its line in the
	// config file, so value errors can name file:line.
	lines map[string]int `yaml:"-"`
	file  string         `yaml:"-"`
	// args are the command-line arguments the config came from, read
	// again on SIGHUP.
	args []string `yaml:"-"`
	// hwid is HwID parsed by validate (nil: none given).
	hwid *[8]byte `yaml:"-"`
}

// registerConfig is the DNS registration (RFC 2136 UPDATE) part of serve.
type registerConfig struct {
	Servers     []string    `yaml:"servers"`
	Zones       nameList    `yaml:"zone"`
	Target      string      `yaml:"target"`
	Addresses   []string    `yaml:"addresses"`
	Port        int         `yaml:"port"`
	Priority    int         `yaml:"priority"`
	Weight      int         `yaml:"weight"`
	TTL         int         `yaml:"ttl"`
	Lease       duration    `yaml:"lease"`
	TSIGKey     string      `yaml:"tsig_key"`
	TSIGKeyFile string      `yaml:"tsig_key_file"`
	GSS         registerGSS `yaml:",inline"`
	// CheckInterval is how often each DNS server is asked whether it still lists this
	// host (0: never); a server that lost the record gets it again at once.
	CheckInterval duration `yaml:"check_interval"`
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Data:               "/var/lib/kms-responder",
		Ledger:             true,
		Metrics:            "127.0.0.1:9688",
		AdminMaxConns:      16,
		AdminMaxPerAddress: 4,
		ActivationInterval: host.DefaultActivationInterval,
		RenewalInterval:    host.DefaultRenewalInterval,
		LCID:               host.DefaultLCID,
		MaxConnections:     dcerpc.DefaultMaxConns,
		MaxConnsPerAddress: dcerpc.DefaultMaxConnsPerAddr,
		FirstPDUTimeout:    duration(dcerpc.DefaultFirstPDUTimeout),
		IdleTimeout:        duration(dcerpc.DefaultIdleTimeout),
		BodyTimeout:        duration(dcerpc.DefaultBodyTimeout),
		IOTimeout:          duration(dcerpc.DefaultIOTimeout),
		Retention:          duration(ledger.DefaultRetention),
		MaxRefusalRecords:  ledger.DefaultMaxRefusals,
		LogFormat:          "text",
		LogLevel:           "info",
		Drain:              duration(2 * time.Second),
		Register: registerConfig{
			Port:          publish.DefaultPort,
			TTL:           publish.DefaultTTL,
			Lease:         duration(publish.DefaultLease),
			CheckInterval: duration(publish.DefaultCheckInterval),
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
		return errors.New("want a duration such as 30s")
	}
	return d.Set(n.Value)
}

// minutes is an interval in whole minutes, as the KMS protocol carries it;
// YAML and flags take a number of minutes (120) or a duration (2h).
type minutes int

func (m minutes) String() string { return strconv.Itoa(int(m)) }

func (m *minutes) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		*m = minutes(n)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither minutes (120) nor a duration (2h)", s)
	}
	if d%time.Minute != 0 {
		return fmt.Errorf("%s is not a whole number of minutes", s)
	}
	*m = minutes(d / time.Minute)
	return nil
}

func (m *minutes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want minutes (120) or a duration (2h)")
	}
	return m.Set(n.Value)
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
	return errors.New("want a name or a list of names")
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
	fs.Var(stringList{&c.Listen}, "listen", "TCP `address` to serve KMS on, repeatable; :PORT means every IPv4 and IPv6 address (default :"+strconv.Itoa(dcerpc.DefaultPort)+")")
	fs.Var(stringList{&c.Groups}, "group", "host key `group` this host holds, repeatable (see `kms-responder catalog`)")
	fs.StringVar(&c.CatalogFile, "catalog-file", c.CatalogFile, "catalog overlay `file` adding or correcting products, host key groups and editions (see responder/README.md)")
	fs.StringVar(&c.Data, "data", c.Data, "`directory` for the durable ledger")
	fs.BoolVar(&c.Ledger, "ledger", c.Ledger, "keep the durable ledger; false is for benchmarks only: counts, ePIDs, HwId and audit records are lost at restart")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "admin HTTP `address` for /metrics, /status and /healthz (empty disables)")
	fs.Var(stringList{&c.AdminHosts}, "admin-host", "extra host `name` the admin endpoint answers to in the Host header, repeatable (always: the --metrics address, localhost, IP addresses)")
	fs.IntVar(&c.AdminMaxConns, "admin-max-connections", c.AdminMaxConns, "cap on open admin HTTP connections (one waiting, silent or sending its header, is closed to make room)")
	fs.IntVar(&c.AdminMaxPerAddress, "admin-max-connections-per-address", c.AdminMaxPerAddress, "cap on admin HTTP connections from one client address that are sending a request or being answered")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", c.AdminTokenFile, "`file` (mode 0600) holding the bearer token /status and /clients require; required when --metrics is not on loopback")
	fs.Var(&c.ActivationInterval, "activation-interval", "how long a client waits before retrying a failed activation: minutes (120) or a duration (2h); 15m-30d")
	fs.Var(&c.RenewalInterval, "renewal-interval", "time between client renewals: minutes (10080) or a duration (168h); 15m-30d")
	fs.Var(epidFlag{&c.EPIDs}, "epid", "override a group's ePID: `GROUP=EPID`, repeatable")
	fs.StringVar(&c.HwID, "hwid", c.HwID, "override the host's HwId (16 hex digits)")
	fs.IntVar(&c.LCID, "lcid", c.LCID, "LCID used in generated ePIDs")
	fs.IntVar(&c.HostBuild, "host-build", c.HostBuild, "host OS build used in generated ePIDs (0: newest in the catalog)")
	fs.Var(stringList{&c.AllowClients}, "allow-client", "client `network` (CIDR or address) allowed to activate, repeatable (default: all)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "cap on concurrent client connections")
	fs.IntVar(&c.MaxConnsPerAddress, "max-connections-per-address", c.MaxConnsPerAddress, "cap on concurrent connections from one client address")
	fs.Var(&c.FirstPDUTimeout, "first-pdu-timeout", "time a new connection has to send its first PDU")
	fs.Var(&c.IdleTimeout, "idle-timeout", "idle time after which a connection is closed")
	fs.Var(&c.BodyTimeout, "body-timeout", "time a connection has to send the rest of a PDU once its header arrived")
	fs.Var(&c.IOTimeout, "io-timeout", "deadline for writing one response")
	fs.Var(&c.Retention, "retention", "how long audit records of clients that stopped coming are kept")
	fs.IntVar(&c.MaxRefusalRecords, "max-refusal-records", c.MaxRefusalRecords, "records kept of clients only ever refused; the oldest are dropped beyond it")
	fs.BoolVar(&c.LedgerQuarantine, "ledger-quarantine", c.LedgerQuarantine, "start on a damaged write-ahead log: set damaged segments aside as *.corrupt and run unhealthy (see README, Recovery)")
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
	fs.Var(&r.CheckInterval, "check-interval", "how often to ask each DNS server whether it still lists this host, registering again at once when not (0: never)")
	fs.StringVar(&r.TSIGKeyFile, "tsig-key-file", r.TSIGKeyFile, "`file` holding the TSIG key (ALG:NAME:BASE64SECRET, or a BIND key clause); else $KMS_RESPONDER_TSIG_KEY or the config file's tsig_key")
	r.GSS.flags(fs)
}

// loadServeConfig parses args: an optional --config file first, then flags
// over it. Errors name the file and line, or the flag.
func loadServeConfig(args []string) (serveConfig, error) {
	c, err := parseServeConfig(args, nil)
	c.args = args
	return c, err
}

func parseServeConfig(args []string, readFile func(string) ([]byte, error)) (serveConfig, error) {
	realFiles := readFile == nil
	if realFiles {
		readFile = readConfigFile // refuses files others can write
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
		if err := c.expandCredentialPaths(); err != nil {
			return c, usageError{err}
		}
		if realFiles && c.Register.TSIGKey != "" {
			if err := checkSecretFile("config file", scratchPath); err != nil {
				return c, usageError{err}
			}
		}
	}
	// The file set lists; flags given on the command line replace them
	// rather than append to them.
	fileLists := [][]string{c.Listen, c.Groups, c.AllowClients, c.Register.Servers, c.Register.Addresses, c.Register.Zones, c.AdminHosts}
	c.Listen, c.Groups, c.AllowClients, c.Register.Servers, c.Register.Addresses, c.Register.Zones, c.AdminHosts = nil, nil, nil, nil, nil, nil, nil
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
	restore(&c.AdminHosts, fileLists[6])
	if err := c.validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// expandCredentialPaths expands ${CREDENTIALS_DIRECTORY} in the secret
// files the config file names (credpath.go).
func (c *serveConfig) expandCredentialPaths() error {
	for _, f := range []struct {
		key, flag string
		path      *string
	}{
		{"admin_token_file", "admin-token-file", &c.AdminTokenFile},
		{"register.tsig_key_file", "tsig-key-file", &c.Register.TSIGKeyFile},
	} {
		p, err := expandCredentials(c.where(f.key, f.flag), *f.path)
		if err != nil {
			return err
		}
		*f.path = p
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// decodeServeYAML decodes data into c, key by key, so that every mistake
// is reported as "file:line: key: reason": unknown keys (with the closest
// known ones), values of the wrong type, bad durations. It records the line
// of every key for the later value checks.
func decodeServeYAML(file string, data []byte, c *serveConfig) error {
	c.file = file
	c.lines = map[string]int{}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			return fmt.Errorf("%s:%s", file, rest)
		}
		return fmt.Errorf("%s: %s", file, msg)
	}
	if len(root.Content) == 0 {
		return nil // empty file
	}
	doc := root.Content[0]
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil // only comments
	}
	recordLines(doc, "", c.lines)
	return decodeSettings(file, "", doc, reflect.ValueOf(c).Elem())
}

// decodeSettings decodes mapping node n into the struct v, whose fields'
// yaml tags name the keys.
func decodeSettings(file, prefix string, n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		where := prefix
		if where == "" {
			where = "the file"
		}
		return fmt.Errorf("%s:%d: %s: want settings as \"key: value\" lines", file, n.Line, where)
	}
	fields := map[string]reflect.Value{}
	var names []string
	settingFields(v, fields, &names)
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if prefix != "" {
			key = prefix + "." + key
		}
		f, ok := fields[k.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("%s:%d: %s: unknown setting%s", file, k.Line, key, suggest.Hint(k.Value, names)))
			continue
		}
		if err := decodeSetting(file, key, val, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// settingFields collects v's settings by YAML key; the keys of a struct field tagged
// `yaml:",inline"` are its parent's.
func settingFields(v reflect.Value, fields map[string]reflect.Value, names *[]string) {
	for i := 0; i < v.NumField(); i++ {
		tag, opts, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == "" && opts == "inline" && v.Field(i).Kind() == reflect.Struct {
			settingFields(v.Field(i), fields, names)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = v.Field(i)
		*names = append(*names, tag)
	}
}

// decodeSetting decodes one value into field f: nested settings, a list
// (a single value is a list of one), or a scalar through its type's own
// YAML decoding.
func decodeSetting(file, key string, val *yaml.Node, f reflect.Value) error {
	if _, custom := f.Addr().Interface().(yaml.Unmarshaler); !custom {
		switch {
		case f.Kind() == reflect.Struct:
			return decodeSettings(file, key, val, f)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String && val.Kind == yaml.ScalarNode && val.Tag != "!!null":
			f.Set(reflect.ValueOf([]string{val.Value}).Convert(f.Type()))
			return nil
		}
	}
	if err := val.Decode(f.Addr().Interface()); err != nil {
		return fmt.Errorf("%s:%d: %s: %s", file, val.Line, key, yamlValueError(err, val, f.Type()))
	}
	return nil
}

// yamlValueError says what a value should have been, in words.
func yamlValueError(err error, val *yaml.Node, t reflect.Type) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := err.Error()
		if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
			msg = rest
		}
		return msg
	}
	got := val.Value
	if val.Kind != yaml.ScalarNode {
		got = map[yaml.Kind]string{yaml.SequenceNode: "a list", yaml.MappingNode: "settings"}[val.Kind]
	} else {
		got = strconv.Quote(got)
	}
	want := map[reflect.Kind]string{
		reflect.Int: "a whole number", reflect.Bool: "true or false", reflect.String: "a string",
		reflect.Slice: "a list", reflect.Map: "a mapping of names to values",
	}[t.Kind()]
	if want == "" {
		want = "a " + t.String()
	}
	return fmt.Sprintf("want %s, got %s", want, got)
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
		if _, ok := serve.WildcardPort(l); ok {
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
	// The host, ledger and publish packages own their settings' rules;
	// serve asks them so that errors name the file:line or flag.
	if err := host.CheckInterval(int(c.ActivationInterval)); err != nil {
		bad("activation_interval", "activation-interval", "%v", err)
	}
	if err := host.CheckInterval(int(c.RenewalInterval)); err != nil {
		bad("renewal_interval", "renewal-interval", "%v", err)
	}
	if c.HwID != "" {
		if h, err := host.ParseHwID(c.HwID); err != nil {
			bad("hwid", "hwid", "%v", err)
		} else {
			c.hwid = &h
		}
	}
	if err := host.CheckLCID(c.LCID); err != nil {
		bad("lcid", "lcid", "%v", err)
	}
	if c.MaxConnections < 1 {
		bad("max_connections", "max-connections", "must be at least 1")
	}
	if c.AdminMaxConns < 1 || c.AdminMaxConns > 1024 {
		bad("admin_max_connections", "admin-max-connections", "%d is outside 1-1024", c.AdminMaxConns)
	}
	if c.AdminMaxPerAddress < 1 || c.AdminMaxPerAddress > 1024 {
		bad("admin_max_connections_per_address", "admin-max-connections-per-address", "%d is outside 1-1024", c.AdminMaxPerAddress)
	}
	if c.Metrics != "" && c.AdminTokenFile == "" && !admin.IsLoopbackListen(c.Metrics) {
		bad("metrics", "metrics", "the admin endpoint %s listens beyond loopback and its /status and /clients show client names and addresses: give it a bearer token with --admin-token-file FILE (mode 0600, e.g. from `openssl rand -hex 32`), or listen on 127.0.0.1", c.Metrics)
	}
	for _, h := range c.AdminHosts {
		if err := admin.ValidateHost(h); err != nil {
			bad("admin_hosts", "admin-host", "%v", err)
		}
	}
	if c.MaxConnsPerAddress < 1 {
		bad("max_connections_per_address", "max-connections-per-address", "must be at least 1")
	}
	for key, d := range map[string]duration{"first_pdu_timeout": c.FirstPDUTimeout, "idle_timeout": c.IdleTimeout, "body_timeout": c.BodyTimeout, "io_timeout": c.IOTimeout} {
		if d <= 0 {
			bad(key, strings.ReplaceAll(key, "_", "-"), "must be positive")
		}
	}
	if err := ledger.CheckMaxRefusals(c.MaxRefusalRecords); err != nil {
		bad("max_refusal_records", "max-refusal-records", "%v", err)
	}
	if err := ledger.CheckRetention(time.Duration(c.Retention), ledger.DefaultCountWindow); err != nil {
		bad("retention", "retention", "%v", err)
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
		r.GSS.check(r.TSIGKey != "" || r.TSIGKeyFile != "", bad)
		if r.CheckInterval < 0 {
			bad("register.check_interval", "check-interval", "%s is negative", r.CheckInterval)
		}
		for _, a := range r.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("register.addresses", "address", "%q is not an IP address", a)
			}
		}
	}
	return errors.Join(errs...)
}

// parsePrefix reads an address or CIDR network (plugin/pkg/dnsname.ParsePrefix, shared with the
// plugin).
func parsePrefix(s string) (netip.Prefix, error) { return dnsname.ParsePrefix(s) }
