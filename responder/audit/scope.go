package audit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the only port audit probes when no ports rule is given:
// the KMS port, as the vlmcs plugin's `ports` default.
const DefaultPort = 1688

// Ports is a `ports` rule: the ports audit may connect to.
type Ports struct {
	ranges [][2]uint16
	text   string
}

// ParsePorts reads a `ports` rule's arguments (PORT or LOW-HIGH, inclusive),
// as the vlmcs plugin's Corefile option takes them. No argument is the
// default, DefaultPort.
func ParsePorts(args []string) (Ports, error) {
	if len(args) == 0 {
		return Ports{ranges: [][2]uint16{{DefaultPort, DefaultPort}}, text: strconv.Itoa(DefaultPort)}, nil
	}
	var p Ports
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		l, err := strconv.ParseUint(lo, 10, 16)
		h := l
		if err == nil && isRange {
			h, err = strconv.ParseUint(hi, 10, 16)
		}
		if err != nil || l == 0 || h < l {
			return Ports{}, fmt.Errorf("ports %q: want PORT or LOW-HIGH within 1-65535", a)
		}
		p.ranges = append(p.ranges, [2]uint16{uint16(l), uint16(h)})
	}
	p.text = strings.Join(args, " ")
	return p, nil
}

// Allows reports whether port is inside the rule (the default rule when p
// is the zero Ports).
func (p Ports) Allows(port uint16) bool {
	if p.ranges == nil {
		return port == DefaultPort
	}
	for _, r := range p.ranges {
		if port >= r[0] && port <= r[1] {
			return true
		}
	}
	return false
}

// String is the rule as written ("1688" by default).
func (p Ports) String() string {
	if p.text == "" {
		return strconv.Itoa(DefaultPort)
	}
	return p.text
}

// notProbed says why audit does not connect to addr:port, or "" when it
// may: a port outside the ports rule, an address that is not a host on the
// network (multicast, unspecified), or a loopback or link-local one unless
// probeLocal is set.
func notProbed(addr netip.Addr, port uint16, ports Ports, probeLocal bool) string {
	a := addr.Unmap()
	switch {
	case !ports.Allows(port):
		return fmt.Sprintf("not probed: port %d is outside the ports rule (%s), where the vlmcs plugin neither probes nor serves a host", port, ports)
	case a.IsMulticast(), a.IsUnspecified(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Sprintf("not probed: %s is not a host's address (multicast, broadcast or unspecified)", a)
	case !probeLocal && a.IsLoopback():
		return fmt.Sprintf("not probed: %s is a loopback address: a client would connect to itself (--probe-loopback probes it)", a)
	case !probeLocal && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()):
		return fmt.Sprintf("not probed: %s is a link-local address, no host a client can reach by it (--probe-loopback probes it)", a)
	}
	return ""
}
