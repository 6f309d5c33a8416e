package dnsexchange

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// ServerAddr normalizes a DNS server given by a person: "host:port", or an
// address or host name for port 53.
func ServerAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("no DNS server given (HOST:PORT)")
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	if strings.ContainsAny(s, ":[]") {
		return "", fmt.Errorf("DNS server %q is not HOST:PORT", s)
	}
	return net.JoinHostPort(s, "53"), nil
}

// AppendAddrs adds to addrs the A/AAAA addresses of owner in rrs (class IN,
// owner compared without case), unmapped, without duplicates and without
// unspecified or multicast addresses, up to max addresses in all.
func AppendAddrs(addrs []netip.Addr, rrs []dns.RR, owner string, max int) []netip.Addr {
	for _, rr := range rrs {
		if len(addrs) >= max {
			break
		}
		h := rr.Header()
		if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, owner) {
			continue
		}
		var a netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(v.AAAA.To16())
		default:
			continue
		}
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		dup := false
		for _, b := range addrs {
			dup = dup || b == a
		}
		if !dup {
			addrs = append(addrs, a)
		}
	}
	return addrs
}
