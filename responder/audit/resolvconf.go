package audit

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Limits for ParseResolvConf.
const (
	maxResolvConf = 64 << 10
	maxSearch     = 32
)

// ResolvConf is what resolv.conf(5) says about a client's DNS: its name
// servers and its suffix search list.
type ResolvConf struct {
	Nameservers []netip.Addr
	Search      []string
}

// ParseResolvConf reads resolv.conf text: "nameserver ADDRESS" lines and
// the last "search" or "domain" line (as the resolver uses them); other
// options are ignored. Comments start with # or ;. Malformed lines are
// errors naming the line.
func ParseResolvConf(data []byte) (ResolvConf, error) {
	var rc ResolvConf
	if len(data) > maxResolvConf {
		return rc, fmt.Errorf("resolv.conf is larger than %d bytes", maxResolvConf)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxResolvConf)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) != 2 {
				return rc, fmt.Errorf("line %d: nameserver wants one address", line)
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return rc, fmt.Errorf("line %d: nameserver %q is not an IP address", line, f[1])
			}
			rc.Nameservers = append(rc.Nameservers, a)
		case "search", "domain":
			if len(f) < 2 {
				return rc, fmt.Errorf("line %d: %s wants at least one domain", line, f[0])
			}
			if f[0] == "domain" && len(f) != 2 {
				return rc, fmt.Errorf("line %d: domain wants one domain", line)
			}
			if len(f)-1 > maxSearch {
				return rc, fmt.Errorf("line %d: more than %d search domains", line, maxSearch)
			}
			var list []string
			for _, d := range f[1:] {
				if _, ok := dns.IsDomainName(d); !ok || len(d) > 253 || d == "." || strings.ContainsAny(d, `\`) {
					return rc, fmt.Errorf("line %d: %q is not a domain name", line, d)
				}
				list = append(list, canonical(d))
			}
			rc.Search = list // the last search or domain line wins
		}
	}
	if err := sc.Err(); err != nil {
		return rc, fmt.Errorf("line %d: %w", line+1, err)
	}
	return rc, nil
}
