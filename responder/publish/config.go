package publish

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPort       = dcerpc.DefaultPort
	DefaultTTL        = 60
	DefaultLease      = 10 * time.Minute
	DefaultTimeout    = 3 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
	// ServiceLabel is the owner name prefix of the SRV RRset in a zone.
	ServiceLabel = "_vlmcs._tcp."
)

// Config says where and what the responder registers.
type Config struct {
	// Servers are the DNS servers to register with, "host:port" (a bare
	// host gets port 53). Each is handled independently.
	Servers []string
	// Zone is the publish zone, e.g. "example.test." (the dot is optional).
	Zone string
	// Target is this host's name inside Zone, e.g. "kms1.example.test.".
	Target string
	// Addresses are published as the target's A/AAAA records, replacing
	// whatever the target had. Empty: only the SRV record is sent, as a
	// Windows KMS host does, and the server must know the target's address.
	Addresses []netip.Addr
	// Source is the local address updates are sent from. Servers that let
	// a host register only the address it sends from (the vlmcs default,
	// like BIND's tcp-self) need it to be the published address. Zero
	// means: the first of Addresses in the server's address family (the
	// first of Addresses for a server given by name) when this host has
	// that address, else whatever the system chooses.
	Source netip.Addr
	// Port is the SRV port (0: DefaultPort, the KMS port 1688).
	Port uint16
	// Priority and Weight are the SRV priority and weight.
	Priority, Weight uint16
	// TTL of the registered records, in seconds (0: DefaultTTL).
	TTL uint32
	// Lease is the lease requested with the EDNS0 Update Lease option, a
	// whole number of seconds (0: DefaultLease). The server grants its own
	// value; refreshes happen at about half the granted lease.
	Lease time.Duration
	// Key signs every update with TSIG. Nil sends unsigned updates, which
	// servers accept only from networks they allow.
	Key *tsigkey.Key
	// Sign, when set, signs and sends every update itself and returns the verified answer
	// (GSS-TSIG for Active Directory, plugin/pkg/gsstsig's Signer.Exchange), over TCP; an
	// error answer it returns with a nil error counts as the server's refusal. Key must be nil.
	Sign func(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error)
	// TCP sends every update over TCP instead of UDP first. Unsigned
	// updates always go over TCP: servers accept them only there, since
	// a UDP source address can be spoofed.
	TCP bool
	// AllowUnsignedResponses accepts a NOERROR answer without TSIG to a
	// signed update. By default such an answer is an error, as RFC 8945
	// requires.
	AllowUnsignedResponses bool
	// Timeout bounds one exchange over one transport (0: DefaultTimeout).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between failed attempts,
	// which doubles per consecutive failure (0: DefaultMinBackoff,
	// DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// CheckInterval, when positive, makes the Publisher ask each server every interval
	// (an unsigned SRV query) whether it still lists this host while the registration is
	// fresh, and register again at once when it does not: a DNS server that restarted
	// without its registrations serves this host again within about one interval instead
	// of one refresh. While re-registering does not bring the record back, checks spread out
	// after three quick repairs (doubling, up to 32 intervals). Zero or negative: no checks (DefaultCheckInterval is
	// kms-responder serve's default).
	CheckInterval time.Duration
	// Logger receives registration events (nil: slog.Default()).
	Logger *slog.Logger
	// Clock schedules refreshes and retries (nil: the system clock). TSIG
	// time stamps always use the system clock, as the server checks them.
	Clock Clock
}

// settings is a validated, canonical Config.
type settings struct {
	servers    []string
	zone       string // canonical, fully qualified
	target     string // canonical, fully qualified, below zone
	service    string // _vlmcs._tcp.<zone>
	addrs      []netip.Addr
	source     netip.Addr
	port       uint16
	priority   uint16
	weight     uint16
	ttl        uint32
	lease      uint32 // seconds
	key        *tsigkey.Key
	signWith   func(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error)
	unsigned   bool // accept unsigned answers to signed updates
	tcpOnly    bool // skip UDP
	timeout    time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	checkEvery time.Duration // 0: no presence checks
	log        *slog.Logger
	clock      Clock
	tsigNow    func() time.Time // TSIG time source; nil: time.Now (tests skew it)
}

// validate checks c and fills in defaults. Errors name the field.
func (c Config) validate() (*settings, error) {
	s := &settings{
		port:       c.Port,
		priority:   c.Priority,
		weight:     c.Weight,
		ttl:        c.TTL,
		unsigned:   c.AllowUnsignedResponses,
		timeout:    c.Timeout,
		minBackoff: c.MinBackoff,
		maxBackoff: c.MaxBackoff,
		checkEvery: max(c.CheckInterval, 0),
		log:        c.Logger,
		clock:      c.Clock,
	}
	if len(c.Servers) == 0 {
		return nil, fmt.Errorf("publish: no DNS server to register with")
	}
	seen := make(map[string]bool, len(c.Servers))
	for _, srv := range c.Servers {
		hp, err := normalizeServer(srv)
		if err != nil {
			return nil, fmt.Errorf("publish: server %q: %v", srv, err)
		}
		if seen[hp] {
			return nil, fmt.Errorf("publish: server %q is listed twice", srv)
		}
		seen[hp] = true
		s.servers = append(s.servers, hp)
	}

	var err error
	if s.zone, err = canonicalName("zone", c.Zone); err != nil {
		return nil, err
	}
	if s.zone == "." {
		return nil, fmt.Errorf("publish: zone must not be the root")
	}
	if s.target, err = canonicalName("target", c.Target); err != nil {
		return nil, err
	}
	if !dns.IsSubDomain(s.zone, s.target) {
		return nil, fmt.Errorf("publish: target %s is not inside zone %s", s.target, s.zone)
	}
	if s.target == s.zone {
		return nil, fmt.Errorf("publish: target %s is the zone apex; use a name inside the zone", s.target)
	}
	s.service = ServiceLabel + s.zone
	if dns.IsSubDomain(s.service, s.target) {
		return nil, fmt.Errorf("publish: target %s is inside %s", s.target, s.service)
	}
	if _, ok := dns.IsDomainName(s.service); !ok || len(s.service) > 255 {
		return nil, fmt.Errorf("publish: zone %s is too long to hold %s", s.zone, s.service)
	}

	seenAddr := make(map[netip.Addr]bool, len(c.Addresses))
	for _, a := range c.Addresses {
		switch {
		case !a.IsValid():
			return nil, fmt.Errorf("publish: address list holds an invalid (zero) address")
		case a.Zone() != "":
			return nil, fmt.Errorf("publish: address %s has a zone; publish a global address", a)
		case a.Unmap().IsUnspecified():
			return nil, fmt.Errorf("publish: address %s is unspecified (a wildcard, not an address clients can reach)", a)
		case a.IsMulticast():
			return nil, fmt.Errorf("publish: address %s is multicast", a)
		}
		a = a.Unmap()
		if seenAddr[a] {
			return nil, fmt.Errorf("publish: address %s is listed twice", a)
		}
		seenAddr[a] = true
		s.addrs = append(s.addrs, a)
	}

	if c.Source.IsValid() {
		src := c.Source.Unmap()
		if src.Zone() != "" || src.IsUnspecified() || src.IsMulticast() {
			return nil, fmt.Errorf("publish: source address %s is not a unicast address without a zone", c.Source)
		}
		s.source = src
	}

	if s.port == 0 {
		s.port = DefaultPort
	}
	if s.ttl == 0 {
		s.ttl = DefaultTTL
	}
	if s.ttl > math.MaxInt32 {
		return nil, fmt.Errorf("publish: TTL %d exceeds 2^31-1 (RFC 2181 §8)", s.ttl)
	}
	lease := c.Lease
	if lease == 0 {
		lease = DefaultLease
	}
	switch {
	case lease < time.Second:
		return nil, fmt.Errorf("publish: lease %v is shorter than one second", lease)
	case lease%time.Second != 0:
		return nil, fmt.Errorf("publish: lease %v is not a whole number of seconds", lease)
	case lease/time.Second > math.MaxUint32:
		return nil, fmt.Errorf("publish: lease %v exceeds 2^32-1 seconds", lease)
	}
	s.lease = uint32(lease / time.Second)

	if c.Key != nil {
		k, err := tsigkey.New(c.Key.Algorithm, c.Key.Name, c.Key.Secret)
		if err != nil {
			return nil, fmt.Errorf("publish: %v", err)
		}
		s.key = &k
	}
	if c.Sign != nil && c.Key != nil {
		return nil, fmt.Errorf("publish: give Key (TSIG) or Sign (GSS-TSIG), not both")
	}
	s.signWith = c.Sign
	s.tcpOnly = c.TCP || s.key == nil

	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.minBackoff == 0 {
		s.minBackoff = DefaultMinBackoff
	}
	if s.maxBackoff == 0 {
		s.maxBackoff = DefaultMaxBackoff
	}
	switch {
	case s.timeout < 0:
		return nil, fmt.Errorf("publish: timeout %v is negative", s.timeout)
	case s.minBackoff < 0:
		return nil, fmt.Errorf("publish: minimum backoff %v is negative", s.minBackoff)
	case s.maxBackoff < s.minBackoff:
		return nil, fmt.Errorf("publish: maximum backoff %v is below the minimum %v", s.maxBackoff, s.minBackoff)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	return s, nil
}

// canonicalName checks a domain name and returns it lower-case and fully
// qualified.
func canonicalName(field, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("publish: %s is empty", field)
	}
	if !printableASCII(name) {
		return "", fmt.Errorf("publish: %s %q holds white space, escapes or non-ASCII bytes (write IDN labels in punycode)", field, name)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("publish: %s %q is not a valid domain name", field, name)
	}
	return dns.CanonicalName(name), nil
}

// printableASCII reports whether name is made of visible ASCII other than the backslash
// (plugin/pkg/dnsname.Visible, shared with the plugin). Names from files and flags are checked
// with it before they are lower-cased.
func printableASCII(name string) bool { return dnsname.Visible(name) }

// normalizeServer returns host:port for a server given with or without a
// port (53 by default).
func normalizeServer(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty address")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// A bare host or IPv6 address without brackets: default port.
		if a, perr := netip.ParseAddr(s); perr == nil {
			return netip.AddrPortFrom(a, 53).String(), nil
		}
		if strings.ContainsAny(s, ":[]") {
			return "", err
		}
		host, port = s, "53"
	}
	if host == "" {
		return "", fmt.Errorf("missing host")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q is not 1-65535", port)
	}
	return net.JoinHostPort(host, port), nil
}
