package vlmcs

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/approval"
	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
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
	defaultKMSPort = dcerpc.DefaultPort
)

// allDownPolicy says what a publish zone answers when no member is healthy.
type allDownPolicy uint8

const (
	allDownLastKnown allDownPolicy = iota // serve approved, registered members regardless of health
	allDownNone                           // answer NODATA
)

// staticMember is a member configured in the Corefile; it never expires.
type staticMember struct {
	target   string
	port     uint16
	priority uint16
	weight   uint16
	addrs    []netip.Addr
	where    string // file:line, for startup errors
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
	secret    string // base64
	algorithm string // miekg/dns's canonical name ("hmac-sha256."): the only one the key signs with
	where     string // file:line of the definition, for startup errors
}

// config is one parsed vlmcs block.
type config struct {
	zones   []string // every zone vlmcs handles, normalized
	block   []string // the server block's zones, normalized (metrics labels of updates outside zones)
	publish []string // zones whose _vlmcs._tcp vlmcs answers from its pool
	scrub   []string // zones whose _vlmcs._tcp answers vlmcs filters

	approve *approval.Rules // the allowlist (plugin/pkg/approval)
	static  []staticMember

	keys       map[string]keyDef            // TSIG keys defined here (name → secret)
	grants     map[string][]dnsname.Pattern // key name → target names it may register
	grantWhere map[string]string            // key name → file:line of its first grant
	anyAddress map[string]bool              // keys that may register addresses other than their source

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

	replayFile  string // replay_file: where the replay memory is kept across restarts ("": in memory only)
	replayWhere string // file:line of replay_file

	where string // file:line of the vlmcs directive
}

func newConfig() *config {
	return &config{
		approve:      &approval.Rules{},
		keys:         map[string]keyDef{},
		grants:       map[string][]dnsname.Pattern{},
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
	return dnsname.MatchAny(c.grants[k], n)
}

// isStatic reports whether target (canonical) is the target of a static member: the
// configuration owns that name and its addresses, updates may not touch them.
func (c *config) isStatic(target string) bool {
	for _, s := range c.static {
		if s.target == target {
			return true
		}
	}
	return false
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

// fingerprint is the configuration as text, without where each part was written: two blocks
// whose fingerprints are equal configure a pool alike.
func (c *config) fingerprint() string {
	static := slices.Clone(c.static)
	for i := range static {
		static[i].where = ""
	}
	keys := map[string]keyDef{}
	for k, d := range c.keys {
		d.where = ""
		keys[k] = d
	}
	return fmt.Sprintf("%v|%v|%s|%v|%v|%v|%v|%v %v %v|%v|%v|%v|%v|%v %v|%v|%v %v",
		c.publish, c.scrub, c.approve, static, keys, c.grants, c.anyAddress,
		c.leaseDefault, c.leaseMin, c.leaseMax, c.probe, c.ttl, c.allDown, c.scrubUnhealthy,
		c.unsigned, c.unsignedUDP, c.ports, c.membersPerKey, c.membersPerSender)
}
