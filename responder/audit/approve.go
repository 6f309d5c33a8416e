package audit

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Rules are `approve` rules in the vlmcs plugin's syntax: NAME, *.SUFFIX,
// ADDRESS, CIDR and NAME=ADDRESS. With both name and network rules a host
// must match a name and have every address in a network; a NAME=ADDRESS
// binding approves that name with exactly its bound addresses.
//
// TODO(issue 9/11): this is a stand-in until internal/approval (the
// plugin's own implementation) is merged; then ParseRules returns it.
type Rules struct {
	names []string // canonical; "*.suffix." for wildcards
	nets  []netip.Prefix
	bound map[string][]netip.Addr
}

// ParseRules parses approve arguments.
func ParseRules(args []string) (*Rules, error) {
	r := &Rules{bound: map[string][]netip.Addr{}}
	for _, a := range args {
		if n, addr, ok := strings.Cut(a, "="); ok {
			ip, err := netip.ParseAddr(addr)
			if err != nil {
				return nil, fmt.Errorf("approve %q: %q is not an address", a, addr)
			}
			if _, ok := dns.IsDomainName(n); !ok || n == "" {
				return nil, fmt.Errorf("approve %q: %q is not a host name", a, n)
			}
			c := canonical(n)
			r.bound[c] = append(r.bound[c], ip.Unmap())
			continue
		}
		if p, err := netip.ParsePrefix(a); err == nil {
			r.nets = append(r.nets, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			r.nets = append(r.nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		if strings.ContainsAny(a, "/:") || allNumeric(a) {
			return nil, fmt.Errorf("approve %q: not a valid address or CIDR", a)
		}
		n := strings.TrimPrefix(a, "*.")
		if _, ok := dns.IsDomainName(n); !ok || n == "" || n == "." || strings.Contains(n, "*") || strings.Contains(n, `\`) {
			return nil, fmt.Errorf("approve %q: not a host name, *.suffix, address or CIDR", a)
		}
		if strings.HasPrefix(a, "*.") {
			r.names = append(r.names, "*."+canonical(n))
		} else {
			r.names = append(r.names, canonical(n))
		}
	}
	if len(r.names) == 0 && len(r.nets) == 0 && len(r.bound) == 0 {
		return nil, fmt.Errorf("no approve rule given")
	}
	return r, nil
}

// Approved reports whether a host named name with addrs is approved.
func (r *Rules) Approved(name string, addrs []netip.Addr) bool {
	c := canonical(name)
	if b, ok := r.bound[c]; ok {
		for _, a := range addrs {
			found := false
			for _, x := range b {
				found = found || x == a.Unmap()
			}
			if !found {
				return false
			}
		}
		return true
	}
	if len(r.names) > 0 && !r.matchName(c) {
		return false
	}
	if len(r.names) == 0 && len(r.nets) == 0 {
		return false // only bindings, and this name has none
	}
	if len(r.nets) == 0 {
		return true
	}
	for _, a := range addrs {
		in := false
		for _, p := range r.nets {
			in = in || p.Contains(a.Unmap())
		}
		if !in {
			return false
		}
	}
	return true
}

// matchName compares label by label, without regard to case.
func (r *Rules) matchName(name string) bool {
	labels := dns.SplitDomainName(name)
	for _, p := range r.names {
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			sl := dns.SplitDomainName(suffix)
			if len(labels) > len(sl) && equalLabels(labels[len(labels)-len(sl):], sl) {
				return true
			}
			continue
		}
		if equalLabels(labels, dns.SplitDomainName(p)) {
			return true
		}
	}
	return false
}

func equalLabels(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// allNumeric reports whether every label of s is digits (an address typo,
// not a host name).
func allNumeric(s string) bool {
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || strings.Trim(l, "0123456789") != "" {
			return false
		}
	}
	return true
}
