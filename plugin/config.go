package vlmcs

import (
	"net/netip"
	"strings"
	"time"
)

// Defaults for the Corefile properties; README.md documents each one.
const (
	defaultLease    = 25 * time.Hour // covers a Windows KMS host's 24 h republish cadence
	defaultLeaseMin = 10 * time.Second
	defaultLeaseMax = 25 * time.Hour
	defaultTTL      = 2 // seconds; short so that no cache outlives the health state

	defaultProbeInterval = 500 * time.Millisecond
	defaultProbeTimeout  = 500 * time.Millisecond
	defaultProbeFails    = 2
	defaultProbePasses   = 1
	defaultProbeRate     = 1000 // probe connections per second per server block

	defaultMembersPerKey    = 64 // members one TSIG key may hold per pool
	defaultMembersPerSender = 4  // members one unsigned sender address may hold per pool

	// srvLabel is the owner name prefix vlmcs owns in every publish zone.
	srvLabel = "_vlmcs._tcp."
	// defaultKMSPort is the port of a static member when none is given.
	defaultKMSPort = 1688
)

// allDownPolicy says what a publish zone answers when no member is healthy.
type allDownPolicy uint8

const (
	allDownLastKnown allDownPolicy = iota // serve approved, registered members regardless of health
	allDownNone                           // answer NODATA
)

// approval is the allowlist: names (exact, or "*.suffix." for anything below suffix) and networks.
// With both kinds present a host must satisfy both; with none, nothing is approved.
type approval struct {
	names []string // lower case, fully qualified
	nets  []netip.Prefix
}

// name reports whether host name n passes the name rules (true when there are none).
func (a *approval) name(n string) bool {
	if len(a.names) == 0 {
		return len(a.nets) > 0
	}
	return matchNames(a.names, n)
}

// addr reports whether a passes the network rules (true when there are none).
func (a *approval) addr(ip netip.Addr) bool {
	if len(a.nets) == 0 {
		return len(a.names) > 0
	}
	ip = ip.Unmap()
	for _, p := range a.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// host reports whether a host with name n and addresses addrs is approved.
func (a *approval) host(n string, addrs []netip.Addr) bool {
	if !a.name(n) {
		return false
	}
	for _, ip := range addrs {
		if !a.addr(ip) {
			return false
		}
	}
	return true
}

// matchNames reports whether n (any case, fully qualified) matches one of the patterns.
func matchNames(patterns []string, n string) bool {
	for _, p := range patterns {
		if strings.HasPrefix(p, "*.") {
			suffix := p[1:] // ".example.org."
			if len(n) > len(suffix) && strings.EqualFold(n[len(n)-len(suffix):], suffix) {
				return true
			}
			continue
		}
		if strings.EqualFold(p, n) {
			return true
		}
	}
	return false
}

// staticMember is a member configured in the Corefile; it never expires.
type staticMember struct {
	target   string
	port     uint16
	priority uint16
	weight   uint16
	addrs    []netip.Addr
}

// probeConfig holds the active health check settings.
type probeConfig struct {
	enabled  bool
	interval time.Duration
	timeout  time.Duration
	fails    int // consecutive failures to mark a member down
	passes   int // consecutive successes to mark a member up
	rate     int // probe connections per second (all zones of the block together)
}

// keyDef is a TSIG key defined in the vlmcs block.
type keyDef struct {
	secret string // base64
	where  string // file:line of the definition, for startup errors
}

// config is one parsed vlmcs block.
type config struct {
	zones   []string // every zone vlmcs handles, normalized
	publish []string // zones whose _vlmcs._tcp vlmcs answers from its pool
	scrub   []string // zones whose _vlmcs._tcp answers vlmcs filters

	approve approval
	static  []staticMember

	keys       map[string]keyDef   // TSIG keys defined here (name → secret)
	grants     map[string][]string // key name → target name patterns it may register
	grantWhere map[string]string   // key name → file:line of its first grant
	anyAddress map[string]bool     // keys that may register addresses other than their source

	leaseDefault, leaseMin, leaseMax time.Duration

	probe          probeConfig
	ttl            uint32
	allDown        allDownPolicy
	scrubUnhealthy bool

	unsigned    []netip.Prefix // networks allowed to send unsigned updates
	unsignedUDP bool           // unsigned updates also over UDP (spoofable; off by default)

	ports            []portRange // ports registered members may use and probes connect to
	membersPerKey    int         // members one TSIG key may register per pool
	membersPerSender int         // members one unsigned sender may register per pool
}

func newConfig() *config {
	return &config{
		keys:         map[string]keyDef{},
		grants:       map[string][]string{},
		grantWhere:   map[string]string{},
		anyAddress:   map[string]bool{},
		leaseDefault: defaultLease,
		leaseMin:     defaultLeaseMin,
		leaseMax:     defaultLeaseMax,
		probe: probeConfig{
			enabled:  true,
			interval: defaultProbeInterval,
			timeout:  defaultProbeTimeout,
			fails:    defaultProbeFails,
			passes:   defaultProbePasses,
			rate:     defaultProbeRate,
		},
		ttl:              defaultTTL,
		membersPerKey:    defaultMembersPerKey,
		membersPerSender: defaultMembersPerSender,
	}
}

// portAllowed reports whether a registration may use port (and so whether a probe may
// connect to it): one of `ports`, default 1688. Static members' ports are configuration and
// always allowed.
func (c *config) portAllowed(port uint16) bool {
	if len(c.ports) == 0 {
		return port == defaultKMSPort
	}
	for _, r := range c.ports {
		if r.lo <= port && port <= r.hi {
			return true
		}
	}
	return false
}

// portRange is an inclusive range of ports.
type portRange struct{ lo, hi uint16 }

// granted reports whether TSIG key k may register target name n.
func (c *config) granted(k, n string) bool {
	return matchNames(c.grants[k], n)
}

// unsignedFrom reports whether an unsigned update from ip over tcp (or not) is allowed.
func (c *config) unsignedFrom(ip netip.Addr, tcp bool) bool {
	if !tcp && !c.unsignedUDP {
		return false
	}
	ip = ip.Unmap()
	for _, p := range c.unsigned {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clampLease returns the lease granted for a request of req seconds (0: none requested).
func (c *config) clampLease(req uint32, requested bool) time.Duration {
	if !requested {
		return c.leaseDefault
	}
	d := time.Duration(req) * time.Second
	if d < c.leaseMin {
		return c.leaseMin
	}
	if d > c.leaseMax {
		return c.leaseMax
	}
	return d
}
