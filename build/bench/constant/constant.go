// Package constant is a benchmark-only CoreDNS plugin: it answers one SRV name with a
// response packed once at startup (SRV records plus A glue), copying only the query ID and
// the RD bit into it. It is the lower bound that `make bench` compares vlmcs against; it
// is linked only into build/bench/coredns, never into the kmsdns build.
//
//	constant NAME TTL {
//	    srv PRIORITY WEIGHT PORT TARGET ADDRESS
//	}
//
// Queries for other names or types go to the next plugin. The answer carries no OPT record
// even when the query has one (the benchmark clients send none); it is a bound, not a server.
package constant

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

const name = "constant"

func init() { plugin.Register(name, setup) }

// Constant is the handler: the prepacked answer for one SRV question.
type Constant struct {
	Next plugin.Handler
	// qname is the question name the answer is packed for (lower case, fully qualified).
	qname string
	// wire is the packed response with ID 0; ServeDNS copies it and patches the header.
	wire []byte
}

// Name implements plugin.Handler.
func (c *Constant) Name() string { return name }

// ServeDNS implements plugin.Handler.
func (c *Constant) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeSRV || r.Question[0].Name != c.qname {
		return plugin.NextOrFailure(name, c.Next, ctx, w, r)
	}
	buf := make([]byte, len(c.wire))
	copy(buf, c.wire)
	buf[0], buf[1] = byte(r.Id>>8), byte(r.Id)
	if r.RecursionDesired {
		buf[2] |= 0x01
	}
	if _, err := w.Write(buf); err != nil {
		return dns.RcodeServerFailure, fmt.Errorf("constant: write: %w", err)
	}
	return dns.RcodeSuccess, nil
}

func setup(c *caddy.Controller) error {
	h, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// parse reads the directive and packs the answer.
func parse(c *caddy.Controller) (*Constant, error) {
	c.Next() // the directive name
	args := c.RemainingArgs()
	if len(args) != 2 {
		return nil, c.ArgErr()
	}
	qname := dns.CanonicalName(args[0])
	ttl, err := strconv.ParseUint(args[1], 10, 31)
	if err != nil {
		return nil, c.Errf("TTL %q: %v", args[1], err)
	}
	m := new(dns.Msg)
	m.SetQuestion(qname, dns.TypeSRV)
	m.Response, m.Authoritative, m.RecursionDesired = true, true, false
	m.Compress = true
	for c.NextBlock() {
		if c.Val() != "srv" {
			return nil, c.Errf("unknown property %q", c.Val())
		}
		a := c.RemainingArgs()
		if len(a) != 5 {
			return nil, c.ArgErr()
		}
		var n [3]uint16
		for i := range n {
			v, err := strconv.ParseUint(a[i], 10, 16)
			if err != nil {
				return nil, c.Errf("srv field %d %q: %v", i+1, a[i], err)
			}
			n[i] = uint16(v)
		}
		target := dns.CanonicalName(a[3])
		addr, err := netip.ParseAddr(a[4])
		if err != nil || !addr.Is4() {
			return nil, c.Errf("srv address %q: want an IPv4 address", a[4])
		}
		hdr := func(owner string, t uint16) dns.RR_Header {
			return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: uint32(ttl)}
		}
		m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(qname, dns.TypeSRV), Priority: n[0], Weight: n[1], Port: n[2], Target: target})
		m.Extra = append(m.Extra, &dns.A{Hdr: hdr(target, dns.TypeA), A: addr.AsSlice()})
	}
	if len(m.Answer) == 0 {
		return nil, c.Err("at least one srv line is required")
	}
	wire, err := m.Pack()
	if err != nil {
		return nil, c.Errf("packing the answer: %v", err)
	}
	return &Constant{qname: qname, wire: wire}, nil
}
