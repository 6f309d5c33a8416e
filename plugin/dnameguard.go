package vlmcs

import (
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// dnameGuard wraps the ResponseWriter of queries vlmcs passes on, and removes from their
// answers every DNAME whose owner is an ancestor of `_vlmcs._tcp.<zone>` for a zone of vlmcs
// (for example `_tcp.<zone> DNAME ...`): a resolver that cached it would rewrite a client's
// `_vlmcs._tcp.<zone>` question itself and ask the DNAME target, which vlmcs does not see, so
// the allowlist would not apply. The synthesized CNAME of the asked name stays, so the answer
// still leads where the DNAME led for that name (RFC 6672 §3.4 lets clients use the CNAME
// alone). Answers without a DNAME pass untouched.
type dnameGuard struct {
	dns.ResponseWriter
	v *Vlmcs
}

// WriteMsg implements dns.ResponseWriter.
func (g *dnameGuard) WriteMsg(m *dns.Msg) error {
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == dns.TypeDNAME {
			return g.ResponseWriter.WriteMsg(g.v.stripDNAMEs(m))
		}
	}
	return g.ResponseWriter.WriteMsg(m)
}

// stripDNAMEs returns m without the DNAME records (and their RRSIGs) that cover a
// `_vlmcs._tcp` name of vlmcs's zones, or m itself when there is none.
func (v *Vlmcs) stripDNAMEs(m *dns.Msg) *dns.Msg {
	covers := func(owner string) string {
		for _, z := range v.cfg.zones {
			if dnsname.Below(owner, srvLabel+z) {
				return z
			}
		}
		return ""
	}
	var out []dns.RR
	stripped := false
	for i, rr := range m.Answer {
		owner := rr.Header().Name
		drop := false
		switch rr := rr.(type) {
		case *dns.DNAME:
			if z := covers(owner); z != "" {
				drop = true
				scrubbedTotal.WithLabelValues(v.server, z, "dname").Inc()
				v.logger.Logf("removed DNAME %s -> %s: it would redirect _vlmcs._tcp.%s past vlmcs", owner, rr.Target, z)
			}
		case *dns.RRSIG:
			drop = rr.TypeCovered == dns.TypeDNAME && covers(owner) != ""
		}
		if drop {
			if !stripped {
				out = append(make([]dns.RR, 0, len(m.Answer)), m.Answer[:i]...)
				stripped = true
			}
			continue
		}
		if stripped {
			out = append(out, rr)
		}
	}
	if !stripped {
		return m
	}
	c := new(dns.Msg)
	*c = *m // shallow: the next plugin (cache) may share m
	c.Answer = out
	return c
}
