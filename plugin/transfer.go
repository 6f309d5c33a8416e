package vlmcs

import (
	"context"
	"strconv"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
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

// opcodeZone returns a zone of vlmcs that a question of r (a message with an opcode other
// than QUERY and UPDATE) is at or below, else "". Only QUERY reaches the plugins behind vlmcs
// for its zones: a NOTIFY (or any other opcode) the next plugin relayed (forward) would reach
// the DNS behind from CoreDNS's own address, unauthenticated, as a relayed UPDATE would.
func (v *Vlmcs) opcodeZone(r *dns.Msg) string {
	for _, q := range r.Question {
		for _, z := range v.cfg.zones {
			if dnsname.InZone(z, q.Name) {
				return z
			}
		}
	}
	return ""
}

// refuseOpcode answers REFUSED (counted, reason "opcode") to a message of another opcode than
// QUERY or UPDATE for zone, a zone of vlmcs.
func (v *Vlmcs) refuseOpcode(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, zone string) (int, error) {
	refusedTotal.WithLabelValues(v.serverOf(ctx), zone, "opcode").Inc()
	v.logger.Logf("refused %s for %s from %s: only queries reach the plugins behind vlmcs for %s", opcodeName(r.Opcode), r.Question[0].Name, w.RemoteAddr(), zone)
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// opcodeName is the mnemonic of an opcode, or its number.
func opcodeName(op int) string {
	if s, ok := dns.OpcodeToString[op]; ok {
		return s
	}
	return "OPCODE" + strconv.Itoa(op)
}
