package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/internal/dnsexchange"
	"github.com/kmsdns/kmsdns/internal/tsigkey"
)

// TSIGKey is a TSIG key (name, algorithm, base64 secret) for zone
// transfers and updates.
type TSIGKey = tsigkey.Key

// udpSize is the EDNS0 buffer size advertised.
const udpSize = 1232

// resolver asks one DNS server. Its exchanges go over UDP and again over
// TCP when the answer is truncated, as a Windows client's resolver does.
type resolver struct {
	server  string
	timeout time.Duration
	tsig    *TSIGKey
}

// ServerAddr normalizes a DNS server address: "host:port", or an address
// or host name for port 53.
func ServerAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("no DNS server given (--dns HOST:PORT)")
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
	return net.JoinHostPort(s, strconv.Itoa(53)), nil
}

// canonical returns a name fully qualified and in lower case.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(strings.TrimSpace(name)))
}

func newQuery(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	q.SetEdns0(udpSize, false)
	return q
}

// exchangeResult is one question's answer and how it came.
type exchangeResult struct {
	msg *dns.Msg
	// truncated is set when the UDP answer had TC and TCP was used.
	truncated bool
}

// exchange sends q over UDP and again over TCP when the answer is
// truncated (internal/dnsexchange). The answer must match q (ID, QR,
// question).
func (r *resolver) exchange(ctx context.Context, q *dns.Msg) (exchangeResult, error) {
	rep, err := dnsexchange.Exchange(ctx, r.server, q, dnsexchange.Options{Timeout: r.timeout, Key: r.tsig})
	if err != nil {
		return exchangeResult{truncated: errors.Is(err, dnsexchange.ErrUDPTruncated)}, err
	}
	m := rep.Msg
	if len(m.Question) > 0 && !questionIs(m, q.Question[0].Name, q.Question[0].Qtype) {
		return exchangeResult{}, fmt.Errorf("%s over %s: reply for another question (%s)", r.server, rep.Net, m.Question[0].String())
	}
	return exchangeResult{msg: m, truncated: rep.Net == "tcp"}, nil
}

func questionIs(m *dns.Msg, name string, qtype uint16) bool {
	if len(m.Question) != 1 {
		return false
	}
	q := m.Question[0]
	return q.Qtype == qtype && q.Qclass == dns.ClassINET && strings.EqualFold(q.Name, name)
}

// rcodeText names a response code.
func rcodeText(rc int) string {
	if n, ok := dns.RcodeToString[rc]; ok {
		return n
	}
	return "RCODE" + strconv.Itoa(rc)
}

// maxAddrs bounds the addresses kept per target.
const maxAddrs = 16

// addrsOf returns the A/AAAA addresses of owner in rrs, without
// duplicates, unspecified or multicast addresses, at most maxAddrs.
func addrsOf(addrs []netip.Addr, rrs []dns.RR, owner string) []netip.Addr {
	for _, rr := range rrs {
		if len(addrs) == maxAddrs {
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
			dup = dup || a == b
		}
		if !dup {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// maxAliases bounds the CNAME/DNAME links followed from one name.
const maxAliases = 8

// follow walks name's alias chain inside one answer: CNAME at the name, or
// a DNAME at an ancestor (synthesizing the CNAME as RFC 6672 says when the
// server did not). It returns the final name and the names passed.
func follow(rrs []dns.RR, name string) (string, []string) {
	var chain []string
	for range maxAliases {
		next := ""
		for _, rr := range rrs {
			if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Class == dns.ClassINET && strings.EqualFold(c.Hdr.Name, name) {
				next = c.Target
				break
			}
		}
		if next == "" {
			for _, rr := range rrs {
				d, ok := rr.(*dns.DNAME)
				if !ok || d.Hdr.Class != dns.ClassINET || strings.EqualFold(d.Hdr.Name, name) || !dns.IsSubDomain(d.Hdr.Name, name) {
					continue
				}
				prefix := name[:len(name)-len(d.Hdr.Name)]
				if n := prefix + d.Target; len(n) <= 255 {
					if _, ok := dns.IsDomainName(n); ok {
						next = n
					}
				}
				break
			}
		}
		if next == "" || strings.EqualFold(next, name) {
			break
		}
		chain = append(chain, canonical(next))
		name = next
	}
	return name, chain
}

// resolveAddrs asks the server for name's A and AAAA records (following
// CNAMEs in the answers); failures leave it without addresses.
func (r *resolver) resolveAddrs(ctx context.Context, name string) ([]netip.Addr, error) {
	var (
		out     []netip.Addr
		lastErr error
	)
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		res, err := r.exchange(ctx, newQuery(name, qt))
		if err != nil {
			lastErr = err
			continue
		}
		m := res.msg
		if m.Rcode != dns.RcodeSuccess {
			lastErr = fmt.Errorf("%s %s: %s", name, dns.TypeToString[qt], rcodeText(m.Rcode))
			continue
		}
		owner, _ := follow(m.Answer, dns.Fqdn(name))
		out = addrsOf(out, m.Answer, owner)
	}
	if len(out) > 0 {
		return out, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%s has no A or AAAA record", strings.TrimSuffix(name, "."))
	}
	return nil, lastErr
}

// zoneOf asks for name's SOA to find the zone that holds it.
func (r *resolver) zoneOf(ctx context.Context, name string) (string, error) {
	res, err := r.exchange(ctx, newQuery(name, dns.TypeSOA))
	if err != nil {
		return "", err
	}
	for _, sec := range [][]dns.RR{res.msg.Answer, res.msg.Ns} {
		for _, rr := range sec {
			if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name) {
				return canonical(soa.Hdr.Name), nil
			}
		}
	}
	return "", fmt.Errorf("no SOA for %s: cannot tell which zone holds it", name)
}
