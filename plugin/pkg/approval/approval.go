// Package approval is kmsdns's allowlist: the rules of the `approve` property of the CoreDNS
// plugin vlmcs, shared by the plugin (updates, static members, scrubbed answers, probes) and by
// `kms-responder audit`, so that both read and apply the rules the same way.
//
// A rule is one of:
//
//	NAME                   a host name (kms1.corp.test)
//	*.SUFFIX               every host name strictly below SUFFIX (*.kms.corp.test)
//	ADDRESS | CIDR         a network (10.0.0.5, 10.0.0.0/24, 2001:db8::/64)
//	NAME=ADDRESS[,ADDRESS] a host name bound to its addresses (kms1.corp.test=10.0.0.5)
//
// A host (a target name with the addresses it will be reached at) is approved when
//
//  1. its name is a host name (see dnsname.HostName: no dot or other odd byte inside a label)
//     and matches a NAME, *.SUFFIX or NAME=ADDRESS rule, or there is no name rule at all and
//     at least one network rule; and
//  2. every address is one of the addresses bound to its name when NAME=ADDRESS rules name it
//     (the binding is the rule for that name: network rules do not widen it), and otherwise
//     lies in an ADDRESS or CIDR rule, or there is no network rule.
//
// Names are compared label by label, case-insensitively, with escapes decoded (see dnsname).
// Rules with no rule at all approve nothing.
package approval

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// ErrName is wrapped by Check's error when the name is not approved.
var ErrName = errors.New("name not approved")

// ErrAddr is wrapped by Check's error when an address is not approved for the name.
var ErrAddr = errors.New("address not approved")

// Rules is a parsed allowlist. The zero value approves nothing; Add rules to it. A Rules is
// safe for concurrent reads once no more rules are added.
type Rules struct {
	names []dnsname.Pattern
	nets  []netip.Prefix
	bound map[string][]netip.Addr // canonical name → addresses
	order []string                // bound names in the order first given, for String
}

// Parse reads rules, each as Add does.
func Parse(rules ...string) (*Rules, error) {
	r := &Rules{}
	for _, s := range rules {
		if err := r.Add(s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Add reads one rule. Names must be written in visible ASCII without escapes (see
// dnsname.Visible); an error says which part of the rule is wrong.
func (r *Rules) Add(rule string) error {
	if rule == "" {
		return errors.New("empty rule")
	}
	if name, addrs, ok := strings.Cut(rule, "="); ok {
		return r.addBinding(rule, name, addrs)
	}
	if looksNumeric(rule) {
		p, err := dnsname.ParsePrefix(rule)
		if err != nil {
			return err
		}
		r.nets = append(r.nets, p)
		return nil
	}
	p, err := dnsname.ParsePattern(rule)
	if err != nil {
		return err
	}
	r.names = append(r.names, p)
	return nil
}

func (r *Rules) addBinding(rule, name, list string) error {
	if strings.HasPrefix(name, "*") {
		return fmt.Errorf("%q: only a single host name can be bound to addresses, not a wildcard", rule)
	}
	if !dnsname.Visible(name) {
		return fmt.Errorf("%q: name %q holds white space, escapes or non-ASCII bytes", rule, name)
	}
	n, err := dnsname.HostName(name)
	if err != nil {
		return fmt.Errorf("%q: %v", rule, err)
	}
	if list == "" {
		return fmt.Errorf("%q: no address after '='", rule)
	}
	var addrs []netip.Addr
	for _, a := range strings.Split(list, ",") {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return fmt.Errorf("%q: %q is not an address (a binding lists addresses, not networks)", rule, a)
		}
		ip = ip.Unmap()
		if !ip.IsGlobalUnicast() && !ip.IsLoopback() || ip.IsMulticast() {
			return fmt.Errorf("%q: %s is not a unicast host address", rule, ip)
		}
		if !slices.Contains(addrs, ip) {
			addrs = append(addrs, ip)
		}
	}
	if r.bound == nil {
		r.bound = map[string][]netip.Addr{}
	}
	if _, ok := r.bound[n]; !ok {
		r.order = append(r.order, n)
	}
	for _, ip := range addrs {
		if !slices.Contains(r.bound[n], ip) {
			r.bound[n] = append(r.bound[n], ip)
		}
	}
	return nil
}

// looksNumeric reports whether s was meant as an address or network rather than a name.
func looksNumeric(s string) bool {
	return strings.ContainsAny(s, ":/%") || strings.Trim(s, "0123456789.") == ""
}

// Empty reports whether there is no rule (nothing is approved).
func (r *Rules) Empty() bool {
	return len(r.names) == 0 && len(r.nets) == 0 && len(r.bound) == 0
}

// HasNetworks reports whether there is an ADDRESS or CIDR rule.
func (r *Rules) HasNetworks() bool { return len(r.nets) > 0 }

// HasNames reports whether there is a NAME, *.SUFFIX or NAME=ADDRESS rule.
func (r *Rules) HasNames() bool { return len(r.names) > 0 || len(r.bound) > 0 }

// Name reports whether name passes the name rules (step 1 of the package comment).
func (r *Rules) Name(name string) bool {
	// Names from answers are plain (no escapes): judged without allocating, as every
	// passed-on answer's address records are.
	if c, isHost, plain := dnsname.PlainHostName(name); plain {
		if !isHost {
			return false
		}
		if !r.HasNames() {
			return len(r.nets) > 0
		}
		if _, ok := r.bound[c]; ok {
			return true
		}
		return dnsname.MatchAnyPlain(r.names, c)
	}
	c, err := dnsname.HostName(name)
	if err != nil {
		return false
	}
	if !r.HasNames() {
		return len(r.nets) > 0
	}
	if _, ok := r.bound[c]; ok {
		return true
	}
	return dnsname.MatchAny(r.names, c)
}

// Addr reports whether ip may be an address of name (step 2 of the package comment); it does
// not judge the name itself.
func (r *Rules) Addr(name string, ip netip.Addr) bool {
	ip = ip.Unmap()
	if b := r.Bound(name); b != nil {
		return slices.Contains(b, ip)
	}
	if len(r.nets) == 0 {
		return r.HasNames()
	}
	for _, p := range r.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Bound returns the addresses bound to name by NAME=ADDRESS rules, nil when it is not bound.
// The slice belongs to r: do not modify it.
func (r *Rules) Bound(name string) []netip.Addr {
	if len(r.bound) == 0 {
		return nil
	}
	c, err := dnsname.Canonical(name)
	if err != nil {
		return nil
	}
	return r.bound[c]
}

// BoundNames returns the names bound to addresses by NAME=ADDRESS rules, canonical, in the
// order first given.
func (r *Rules) BoundNames() []string { return slices.Clone(r.order) }

// Check returns nil when the host name with the addresses addrs is approved, else an error
// wrapping ErrName or ErrAddr that says which rule failed.
func (r *Rules) Check(name string, addrs []netip.Addr) error {
	if _, err := dnsname.HostName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrName, err)
	}
	if !r.Name(name) {
		return fmt.Errorf("%w: %s matches no approve rule", ErrName, name)
	}
	for _, ip := range addrs {
		if r.Addr(name, ip) {
			continue
		}
		if b := r.Bound(name); b != nil {
			return fmt.Errorf("%w: %s is not an address bound to %s (%s)", ErrAddr, ip.Unmap(), name, joinAddrs(b))
		}
		return fmt.Errorf("%w: %s of %s is in no approved network", ErrAddr, ip.Unmap(), name)
	}
	return nil
}

// Host reports whether the host name with the addresses addrs is approved (Check is nil).
func (r *Rules) Host(name string, addrs []netip.Addr) bool {
	if !r.Name(name) {
		return false
	}
	for _, ip := range addrs {
		if !r.Addr(name, ip) {
			return false
		}
	}
	return true
}

// String returns the rules in canonical form, as an `approve` line would list them: names,
// then networks, then bindings.
func (r *Rules) String() string {
	var parts []string
	for _, p := range r.names {
		parts = append(parts, p.String())
	}
	for _, p := range r.nets {
		parts = append(parts, p.String())
	}
	for _, n := range r.order {
		parts = append(parts, n+"="+joinAddrs(r.bound[n]))
	}
	return strings.Join(parts, " ")
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, ip := range addrs {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}
