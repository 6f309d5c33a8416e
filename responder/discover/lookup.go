// Package discover finds KMS hosts the way a Windows client does: an SRV
// query for _VLMCS._TCP.<domain>, hosts ordered by priority and weighted
// random choice (RFC 2782), and a fail-over loop that moves on when a host
// cannot be reached or cannot serve the product.
package discover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// Service is the owner-name prefix Windows queries, in its case.
const Service = "_VLMCS._TCP."

// Limits for one lookup.
const (
	// exchangeTimeout bounds one DNS exchange over one transport.
	exchangeTimeout = 2 * time.Second
	// maxResolve bounds the A/AAAA lookups made for targets without glue.
	maxResolve = 16
	// udpSize is the EDNS0 buffer size advertised.
	udpSize = 1232
)

// Target is one KMS host named by an SRV record.
type Target struct {
	// Name is the SRV target, fully qualified, in lower case.
	Name     string
	Port     uint16
	Priority uint16
	Weight   uint16
	TTL      uint32
	// Addrs are the target's addresses: the glue in the answer's
	// additional section, or else what the same server resolved. Empty
	// when neither gave any.
	Addrs []netip.Addr
}

// LookupError is a lookup's outcome as a Windows client reports it: Code
// is the HRESULT (DNS_ERROR_RCODE_NAME_ERROR for NXDOMAIN,
// DNS_INFO_NO_RECORDS for NODATA, DNS_ERROR_RCODE_* for other response
// codes). errors.As(err, &h) with h a kms.HRESULT yields Code.
type LookupError struct {
	Name   string
	Server string
	Code   kms.HRESULT
	Detail string
}

// Error names the query, the server, the code and what happened.
func (e *LookupError) Error() string {
	return fmt.Sprintf("SRV %s at %s: %v: %s", e.Name, e.Server, e.Code, e.Detail)
}

// Unwrap returns the HRESULT.
func (e *LookupError) Unwrap() error { return e.Code }

// rcodeHRESULT maps a DNS response code to the HRESULT Windows uses for it:
// HRESULT_FROM_WIN32(DNS_ERROR_RCODE_FORMAT_ERROR - 1 + rcode), so
// NXDOMAIN (3) is 9003 = 0x8007232B.
func rcodeHRESULT(rcode int) kms.HRESULT {
	if rcode == dns.RcodeNameError {
		return kms.ErrDNSNameNotExist
	}
	if rcode >= 1 && rcode <= 10 {
		return kms.HRESULT(0x80070000 | uint32(9000+rcode))
	}
	return kms.ErrDNSServerFailure
}

// QueryName returns the SRV owner name a Windows client asks for domain:
// "_VLMCS._TCP." followed by the domain, fully qualified.
func QueryName(domain string) (string, error) {
	domain = strings.TrimSpace(domain)
	if domain == "" || domain == "." {
		return "", errors.New("discover: no domain to search (Windows sends no query without a DNS suffix)")
	}
	name := Service + dns.Fqdn(domain)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		return "", fmt.Errorf("discover: %q is not a valid domain name", domain)
	}
	return name, nil
}

// Lookup asks dnsServer ("host:port", or a host for port 53) for the SRV
// records of _VLMCS._TCP.<domain> over UDP, retrying over TCP when the
// answer is truncated, and returns the targets in answer order with their
// addresses. Missing glue is resolved through the same server. Use Order
// to put the targets in the order a client tries them.
func Lookup(ctx context.Context, dnsServer, domain string) ([]Target, error) {
	qname, err := QueryName(domain)
	if err != nil {
		return nil, err
	}
	server, err := dnsexchange.ServerAddr(dnsServer)
	if err != nil {
		return nil, err
	}
	rep, err := exchange(ctx, server, newQuery(qname, dns.TypeSRV))
	if err != nil {
		return nil, fmt.Errorf("discover: SRV %s: %w", qname, err)
	}
	targets, err := parseSRVReply(rep.Sent, rep.Msg)
	if err != nil {
		var le *LookupError
		if errors.As(err, &le) {
			le.Server = server
		}
		return nil, err
	}
	// Targets without glue are resolved in parallel, at most maxResolve.
	var wg sync.WaitGroup
	resolved := 0
	for i := range targets {
		if len(targets[i].Addrs) > 0 || resolved == maxResolve {
			continue
		}
		resolved++
		wg.Go(func() { targets[i].Addrs = resolveAddrs(ctx, server, targets[i].Name) })
	}
	wg.Wait()
	return targets, nil
}

func newQuery(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	q.SetEdns0(udpSize, false)
	return q
}

// exchange sends q over UDP, and again over TCP if the answer is truncated.
func exchange(ctx context.Context, server string, q *dns.Msg) (dnsexchange.Reply, error) {
	return dnsexchange.Exchange(ctx, server, q, dnsexchange.Options{Timeout: exchangeTimeout})
}

// resolveAddrs asks server for name's A and AAAA records; failures leave
// the target without addresses (the fail-over loop reports it).
func resolveAddrs(ctx context.Context, server, name string) []netip.Addr {
	var out []netip.Addr
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rep, err := exchange(ctx, server, newQuery(name, qt))
		if err != nil {
			continue
		}
		r := rep.Msg
		if r.Rcode != dns.RcodeSuccess || !questionMatches(r, name, qt) {
			continue
		}
		owner, _ := dnsexchange.FollowAliases(r.Answer, name)
		out = dnsexchange.AppendAddrs(out, r.Answer, owner, maxAddrs)
	}
	return out
}
