package audit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
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
// truncated (plugin/pkg/dnsexchange). The answer must match q (ID, QR,
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

// maxAliases bounds the CNAME/DNAME links followed from one name.
const maxAliases = dnsexchange.MaxAliases

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
		owner, _ := dnsexchange.FollowAliases(m.Answer, dns.Fqdn(name))
		out = dnsexchange.AppendAddrs(out, m.Answer, owner, maxAddrs)
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

// ServerAddr normalizes a DNS server address (dnsexchange.ServerAddr).
func ServerAddr(s string) (string, error) { return dnsexchange.ServerAddr(s) }
