package vlmcs

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

// pluginName is the directive and the metrics subsystem.
const pluginName = "vlmcs"

func init() { plugin.Register(pluginName, setup) }

// setup parses the vlmcs block, wires the handler into the chain, lets UPDATE through,
// hands the block's TSIG keys to the server and ties the prober to the server lifecycle.
func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	dc := dnsserver.GetConfig(c)
	dc.AllowOpcode(dns.OpcodeUpdate)
	if len(cfg.keys) > 0 {
		if dc.TsigSecret == nil {
			dc.TsigSecret = map[string]string{}
		}
		for k, d := range cfg.keys {
			if s, ok := dc.TsigSecret[k]; ok && s != d.secret {
				return plugin.Error(pluginName, fmt.Errorf("%s: key %q already has a different secret in this server block", d.where, k))
			}
			dc.TsigSecret[k] = d.secret
		}
	}

	if cfg.replayFile != "" {
		if err := registry.replay.persist(cfg.replayFile, time.Now()); err != nil {
			return plugin.Error(pluginName, fmt.Errorf("%s: %w", cfg.replayWhere, err))
		}
	}
	server := serverLabel(dc)
	if err := claimPools(c, dc, cfg, listenerKey(dc)); err != nil {
		return plugin.Error(pluginName, err)
	}
	v := newVlmcs(cfg, server, listenerKey(dc), nil)
	noteBlock(c, cfg)

	dc.AddPlugin(func(next plugin.Handler) plugin.Handler {
		v.Next = next
		return v
	})

	c.OnStartup(func() error {
		if err := checkKeys(cfg, dnsserver.GetConfig(c).TsigSecret); err != nil {
			return plugin.Error(pluginName, err)
		}
		if err := checkOverlap(c); err != nil {
			return plugin.Error(pluginName, err)
		}
		v.rekey(poolTags(c, dc, cfg, listenerKey(dc)))
		v.start()
		return nil
	})
	c.OnShutdown(func() error {
		v.stop()
		return nil
	})
	return nil
}

// poolClaim is which block of the Corefile being loaded uses a pool, with its configuration.
type poolClaim struct {
	where       string // file:line of the vlmcs block
	fingerprint string
	tag         string // the block's bind addresses, as in the pool key
}

// poolClaimsKey is the caddy instance storage key of the pools claimed by the blocks of one
// Corefile load: listener|zone → the claims of the blocks publishing the zone, in order.
type poolClaimsKey struct{}

// claimPools records which blocks of the Corefile being loaded publish each zone on a
// listener (transport and port). Blocks that configure vlmcs alike share the zone's pool.
// When the blocks publishing a zone on one listener do not all configure vlmcs alike, each
// gets a pool of its own, keyed also by its bind addresses (poolTags): a pool has one policy,
// and the blocks would otherwise answer with whichever configuration started last. The key
// depends on the whole Corefile, never on block order, so a reload that reorders blocks keeps
// every block's pool. Blocks that differ and bind the same addresses are refused.
func claimPools(c *caddy.Controller, dc *dnsserver.Config, cfg *config, listener string) error {
	claims, _ := c.Get(poolClaimsKey{}).(map[string][]poolClaim)
	if claims == nil {
		claims = map[string][]poolClaim{}
		c.Set(poolClaimsKey{}, claims)
	}
	binds := slices.Clone(dc.ListenHosts)
	slices.Sort(binds)
	tag := "|bind=" + strings.Join(binds, ",")
	here := poolClaim{where: cfg.where, fingerprint: cfg.fingerprint(), tag: tag}
	for _, z := range cfg.publish {
		k := listener + "|" + z
		for _, other := range claims[k] {
			if other.fingerprint != here.fingerprint && other.tag == tag {
				return fmt.Errorf("%s: zone %s on %s with bind %v is also published by the vlmcs block at %s with another configuration; configure vlmcs identically in both blocks or bind them to other addresses", here.where, z, listener, binds, other.where)
			}
		}
		claims[k] = append(claims[k], here)
	}
	return nil
}

// poolTags returns, once every block's setup has run, the suffix of each publish zone's pool
// key for the block (cfg): its bind addresses when the blocks publishing the zone on the
// listener configure vlmcs differently, else "".
func poolTags(c *caddy.Controller, dc *dnsserver.Config, cfg *config, listener string) map[string]string {
	claims, _ := c.Get(poolClaimsKey{}).(map[string][]poolClaim)
	binds := slices.Clone(dc.ListenHosts)
	slices.Sort(binds)
	tag := "|bind=" + strings.Join(binds, ",")
	tags := map[string]string{}
	for _, z := range cfg.publish {
		for _, other := range claims[listener+"|"+z] {
			if other.fingerprint != claims[listener+"|"+z][0].fingerprint {
				tags[z] = tag
				break
			}
		}
	}
	return tags
}

// checkKeys verifies, once every plugin's setup has run, that each key granted in the
// block has a secret on the server, and that no later plugin (tsig) replaced ours.
func checkKeys(cfg *config, secrets map[string]string) error {
	for k, d := range cfg.keys {
		if secrets[k] != d.secret {
			return fmt.Errorf("%s: key %q was replaced by another plugin's TSIG secrets (define each key in one place: the vlmcs block or the tsig plugin)", d.where, k)
		}
	}
	for k, where := range cfg.grantWhere {
		if _, ok := secrets[k]; !ok {
			return fmt.Errorf("%s: key %q is granted but has no secret (add `key` or `keyfile` to the vlmcs block, or a `tsig` secret)", where, k)
		}
	}
	return nil
}

// listenerKey identifies a block's listener for the pool registry: transport and port. The
// bind addresses and the block's other zones are left out, so that a reload changing them
// keeps the pools (two blocks on one port with different bind addresses and the same zone
// share that zone's pool).
func listenerKey(dc *dnsserver.Config) string {
	tr := dc.Transport
	if tr == "" {
		tr = "dns"
	}
	return tr + "://:" + dc.Port
}

// serverLabel is the metrics "server" label of what the block does outside any request (the
// pool gauges, lease expiries, health changes, probes): its first listen address, written as
// CoreDNS writes a server's address and metrics.WithServer reports it for requests
// (transport://host:port, the host as net.ResolveTCPAddr prints it: "dns://:53",
// "dns://127.0.0.1:53", "dns://[::1]:53").
func serverLabel(dc *dnsserver.Config) string {
	host := ""
	if len(dc.ListenHosts) > 0 {
		host = dc.ListenHosts[0]
	}
	tr := dc.Transport
	if tr == "" {
		tr = "dns"
	}
	addr := net.JoinHostPort(host, dc.Port)
	if a, err := net.ResolveTCPAddr("tcp", addr); err == nil {
		addr = a.String()
	}
	return tr + "://" + addr
}

// parse reads one vlmcs block. Every mistake is an error carrying file and line.
func parse(c *caddy.Controller) (*config, error) {
	cfg := newConfig()
	seen := 0
	for c.Next() {
		if seen++; seen > 1 {
			return nil, plugin.ErrOnce
		}
		cfg.where = fmt.Sprintf("%s:%d", c.File(), c.Line())
		args := c.RemainingArgs()
		for _, a := range args {
			if _, ok := dns.IsDomainName(a); !ok || !dnsname.Visible(a) {
				return nil, c.Errf("invalid zone %q", a)
			}
		}
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys)
		for i := range cfg.zones {
			cfg.zones[i] = strings.ToLower(cfg.zones[i])
		}
		cfg.block = plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)
		for i := range cfg.block {
			cfg.block[i] = strings.ToLower(cfg.block[i])
		}
		once := map[string]bool{}
		for c.NextBlock() {
			prop := c.Val()
			switch prop {
			case "approve", "static", "key", "keyfile", "grant", "any_address", "unsigned":
			default:
				if once[prop] {
					return nil, c.Errf("%q given more than once", prop)
				}
				once[prop] = true
			}
			if err := parseProperty(c, cfg, prop); err != nil {
				return nil, err
			}
		}
	}
	if seen == 0 {
		return nil, c.ArgErr()
	}
	if err := finish(c, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseProperty(c *caddy.Controller, cfg *config, prop string) error {
	args := c.RemainingArgs()
	switch prop {
	case "approve":
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			if err := cfg.approve.Add(a); err != nil {
				return c.Errf("approve: %v", err)
			}
		}
	case "static":
		return parseStatic(c, cfg, args)
	case "key":
		if len(args) != 2 && len(args) != 3 {
			return c.ArgErr()
		}
		alg := tsigkey.DefaultAlgorithm
		if len(args) == 3 {
			a, err := tsigkey.ParseAlgorithm(args[2])
			if err != nil {
				return c.Errf("key %s: %v", plugin.Name(args[0]).Normalize(), err)
			}
			alg = a
		}
		name := plugin.Name(args[0]).Normalize()
		if _, ok := dns.IsDomainName(name); !ok || !dnsname.Visible(args[0]) {
			return c.Errf("key: invalid key name %q", args[0])
		}
		if b, err := base64.StdEncoding.DecodeString(args[1]); err != nil || len(b) == 0 {
			return c.Errf("key %s: secret is not base64", name)
		}
		return addKey(c, cfg, name, args[1], alg)
	case "replay_file":
		if len(args) != 1 {
			return c.ArgErr()
		}
		if cfg.replayFile != "" {
			return c.Errf("replay_file: given twice")
		}
		cfg.replayFile, cfg.replayWhere = args[0], fmt.Sprintf("%s:%d", c.File(), c.Line())
	case "keyfile":
		if len(args) != 1 {
			return c.ArgErr()
		}
		keys, err := tsigkey.ReadFile(args[0])
		if err != nil {
			return c.Errf("keyfile: %v", keyfileHint(err))
		}
		for _, k := range keys {
			if err := addKey(c, cfg, k.Name, k.Secret, k.Algorithm); err != nil {
				return err
			}
		}
	case "grant":
		if len(args) < 2 {
			return c.ArgErr()
		}
		k := plugin.Name(args[0]).Normalize()
		for _, a := range args[1:] {
			n, err := dnsname.ParsePattern(a)
			if err != nil {
				return c.Errf("grant %s: %v", k, err)
			}
			cfg.grants[k] = append(cfg.grants[k], n)
		}
		if _, ok := cfg.grantWhere[k]; !ok {
			cfg.grantWhere[k] = where(c)
		}
	case "any_address":
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			cfg.anyAddress[plugin.Name(a).Normalize()] = true
		}
	case "lease":
		if len(args) < 1 || len(args) > 3 {
			return c.ArgErr()
		}
		ds := make([]time.Duration, len(args))
		for i, a := range args {
			d, err := parseDuration(a)
			if err != nil {
				return c.Errf("lease: %v", err)
			}
			if d < time.Second || d > 0xffffffff*time.Second {
				return c.Errf("lease: %s is outside 1s..136y", a)
			}
			ds[i] = d.Truncate(time.Second)
		}
		cfg.leaseDefault = ds[0]
		if len(ds) > 1 {
			cfg.leaseMin = ds[1]
		}
		if len(ds) > 2 {
			cfg.leaseMax = ds[2]
		}
		if cfg.leaseMin > cfg.leaseMax {
			return c.Errf("lease: minimum %s is above maximum %s", cfg.leaseMin, cfg.leaseMax)
		}
		if cfg.leaseDefault < cfg.leaseMin || cfg.leaseDefault > cfg.leaseMax {
			return c.Errf("lease: default %s is outside [%s, %s]", cfg.leaseDefault, cfg.leaseMin, cfg.leaseMax)
		}
	case "probe":
		return parseProbe(c, cfg, args)
	case "ttl":
		if len(args) != 1 {
			return c.ArgErr()
		}
		t, err := strconv.ParseUint(args[0], 10, 32)
		if err != nil || t > 3600 {
			return c.Errf("ttl: %q is not a number of seconds in 0..3600", args[0])
		}
		cfg.ttl = uint32(t)
	case "all_down":
		if len(args) != 1 {
			return c.ArgErr()
		}
		switch args[0] {
		case "last_known":
			cfg.allDown = allDownLastKnown
		case "none":
			cfg.allDown = allDownNone
		default:
			return c.Errf("all_down: %q is neither last_known nor none", args[0])
		}
	case "scrub":
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			z := plugin.Name(a).Normalize()
			if _, ok := dns.IsDomainName(z); !ok || !dnsname.Visible(a) {
				return c.Errf("scrub: invalid zone %q", a)
			}
			cfg.scrub = append(cfg.scrub, strings.ToLower(z))
		}
	case "scrub_unhealthy":
		if len(args) != 0 {
			return c.ArgErr()
		}
		cfg.scrubUnhealthy = true
	case "unsigned":
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			p, err := dnsname.ParsePrefix(a)
			if err != nil {
				return c.Errf("unsigned: %v", err)
			}
			cfg.unsigned = append(cfg.unsigned, p)
		}
	case "ports":
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, a := range args {
			r, err := parsePortRange(a)
			if err != nil {
				return c.Errf("ports: %v", err)
			}
			cfg.ports = append(cfg.ports, r)
		}
	case "probe_rate":
		if len(args) != 1 {
			return c.ArgErr()
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 100000 {
			return c.Errf("probe_rate: %q is not a number of connections per second in 1..100000", args[0])
		}
		cfg.probe.rate = n
	case "member_limit":
		if len(args) < 1 || len(args) > 2 {
			return c.ArgErr()
		}
		limits := []*int{&cfg.membersPerKey, &cfg.membersPerSender}
		for i, a := range args {
			n, err := strconv.Atoi(a)
			if err != nil || n < 0 || n > maxMembers {
				return c.Errf("member_limit: %q is not a number of members in 0..%d", a, maxMembers)
			}
			*limits[i] = n
		}
	case "unsigned_udp":
		if len(args) != 0 {
			return c.ArgErr()
		}
		cfg.unsignedUDP = true
	default:
		return c.Errf("unknown property %q", prop)
	}
	return nil
}

// finish checks the relations between properties once the block is read.
func finish(c *caddy.Controller, cfg *config) error {
	if len(cfg.zones) == 0 {
		return c.Err("no zones: name them after `vlmcs` or in the server block")
	}
	for _, z := range cfg.scrub {
		if !slices.Contains(cfg.zones, z) {
			return c.Errf("scrub zone %q is not one of this block's zones %v", z, cfg.zones)
		}
	}
	for _, z := range cfg.zones {
		if !slices.Contains(cfg.scrub, z) {
			cfg.publish = append(cfg.publish, z)
		}
	}
	if cfg.approve.Empty() {
		return c.Err("no `approve` rule: nothing could ever be published or kept")
	}
	for _, s := range cfg.static {
		if err := cfg.approve.Check(s.target, s.addrs); err != nil {
			return fmt.Errorf("%s - Error during parsing: static member %s is not approved: %v", s.where, s.target, err)
		}
	}
	for k := range cfg.anyAddress {
		if _, ok := cfg.grants[k]; !ok {
			return c.Errf("any_address: key %q has no grant", k)
		}
	}
	return nil
}

func parseStatic(c *caddy.Controller, cfg *config, args []string) error {
	if len(args) == 0 {
		return c.ArgErr()
	}
	target, err := configHostName(args[0])
	if err != nil {
		return c.Errf("static: %v", err)
	}
	s := staticMember{target: target, port: defaultKMSPort, where: where(c)}
	nums := []*uint16{&s.port, &s.priority, &s.weight}
	rest := args[1:]
	for i := 0; i < len(nums) && len(rest) > 0; i++ {
		n, err := strconv.ParseUint(rest[0], 10, 16)
		if err != nil {
			break
		}
		*nums[i] = uint16(n)
		rest = rest[1:]
	}
	if s.port == 0 {
		return c.Errf("static %s: port 0", target)
	}
	for _, a := range rest {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return c.Errf("static %s: %q is neither a number nor an address", target, a)
		}
		s.addrs = append(s.addrs, ip.Unmap())
	}
	for _, o := range cfg.static {
		if o.target == s.target && o.port == s.port {
			return c.Errf("static %s port %d given twice", target, s.port)
		}
	}
	cfg.static = append(cfg.static, s)
	return nil
}

func parseProbe(c *caddy.Controller, cfg *config, args []string) error {
	if len(args) == 1 && args[0] == "off" {
		cfg.probe.enabled = false
		return nil
	}
	if len(args) < 2 || len(args) > 4 {
		return c.ArgErr()
	}
	iv, err := parseDuration(args[0])
	if err != nil || iv < 10*time.Millisecond || iv > time.Hour {
		return c.Errf("probe: interval %q is not a duration in 10ms..1h", args[0])
	}
	to, err := parseDuration(args[1])
	if err != nil || to < time.Millisecond || to > time.Minute {
		return c.Errf("probe: timeout %q is not a duration in 1ms..1m", args[1])
	}
	cfg.probe.interval, cfg.probe.timeout = iv, to
	counts := []*int{&cfg.probe.fails, &cfg.probe.passes}
	for i, a := range args[2:] {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 || n > 100 {
			return c.Errf("probe: %q is not a count in 1..100", a)
		}
		*counts[i] = n
	}
	return nil
}

func addKey(c *caddy.Controller, cfg *config, name, secret, algorithm string) error {
	if d, ok := cfg.keys[name]; ok {
		return c.Errf("key %q already defined at %s", name, d.where)
	}
	cfg.keys[name] = keyDef{secret: secret, algorithm: dns.CanonicalName(algorithm), where: where(c)}
	return nil
}

func where(c *caddy.Controller) string { return fmt.Sprintf("%s:%d", c.File(), c.Line()) }

// parsePortRange accepts a port or LOW-HIGH.
func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a == 0 || b < a {
		return portRange{}, fmt.Errorf("%q is not a port or a range LOW-HIGH in 1..65535", s)
	}
	return portRange{uint16(a), uint16(b)}, nil
}

// parseDuration accepts Go durations and plain seconds.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// configHostName reads a host name written in the Corefile: visible ASCII without escapes,
// every label a host label; it returns the canonical (lower-case, fully qualified) form.
func configHostName(s string) (string, error) {
	if !dnsname.Visible(s) {
		return "", fmt.Errorf("%q holds white space, escapes or non-ASCII bytes (write IDN labels in punycode)", s)
	}
	return dnsname.HostName(s)
}
