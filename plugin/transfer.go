package vlmcs

import (
	"context"

	"github.com/miekg/dns"
)

// refuseTransfer answers REFUSED to an AXFR or IXFR question whose zone holds, or lies in,
// zone (a zone of vlmcs). A transfer carries every record of the zone as the next plugin
// holds it, the rogue `_vlmcs._tcp` SRV records of a scrub zone and the next plugin's
// `_vlmcs._tcp` records of a publish zone (not vlmcs's members) among them, and a
// secondary or a cache loaded from it would answer them unjudged. Transfers of the zone are
// to be taken from the DNS server behind CoreDNS directly.
func (v *Vlmcs) refuseTransfer(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, zone string) (int, error) {
	refusedTotal.WithLabelValues(v.serverOf(ctx), zone, "transfer").Inc()
	v.logger.Logf("refused %s of %s from %s: it would hand out %s's records unjudged", dns.TypeToString[r.Question[0].Qtype], r.Question[0].Name, w.RemoteAddr(), zone)
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil // written: the server must not write another reply
}
