package dnsexchange

import (
	"strings"

	"github.com/miekg/dns"
)

// MaxAliases bounds the CNAME/DNAME links FollowAliases follows from one
// name (a loop or a longer chain stops there).
const MaxAliases = 8

// FollowAliases walks name's alias chain inside one answer, as a client's
// resolver does: a CNAME at the name, or else a DNAME at one of its
// ancestors (synthesizing the CNAME, RFC 6672, when the server did not). It
// returns the name at the end of the chain and the names passed, in lower
// case, at most MaxAliases of them.
func FollowAliases(rrs []dns.RR, name string) (string, []string) {
	var chain []string
	for range MaxAliases {
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
		chain = append(chain, strings.ToLower(dns.Fqdn(next)))
		name = next
	}
	return name, chain
}
