package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Deletion is the outcome of deleting one zone's records.
type Deletion struct {
	Zone    string
	Records []Record
	Err     error
}

// Delete removes recs by RFC 2136 UPDATE at server, one message per zone,
// each record deleted by its full data (so other records at the same name
// stay), over TCP, signed with key when given. It returns each zone's
// result.
func Delete(ctx context.Context, server string, key *TSIGKey, recs []Record, timeout time.Duration) []Deletion {
	var out []Deletion
	for _, zone := range zonesOf(recs) {
		d := Deletion{Zone: zone}
		for _, r := range recs {
			if r.Zone == zone {
				d.Records = append(d.Records, r)
			}
		}
		if zone == "" {
			d.Err = fmt.Errorf("the zone holding %s is unknown (no SOA found)", d.Records[0].Owner)
			out = append(out, d)
			continue
		}
		d.Err = deleteZone(ctx, server, key, zone, d.Records, timeout)
		out = append(out, d)
	}
	return out
}

func deleteZone(ctx context.Context, server string, key *TSIGKey, zone string, recs []Record, timeout time.Duration) error {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	var rrs []dns.RR
	for _, r := range recs {
		rr := &dns.SRV{Hdr: dns.RR_Header{Name: r.Owner, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
			Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: r.Target}
		rrs = append(rrs, rr)
	}
	m.Remove(rrs)
	c := &dns.Client{Net: "tcp", Timeout: timeout}
	if key != nil {
		c.TsigSecret = map[string]string{key.Name: key.Secret}
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return fmt.Errorf("UPDATE of zone %s at %s: %w", zone, server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		hint := ""
		switch resp.Rcode {
		case dns.RcodeRefused:
			hint = ": the server does not accept this update (unsigned or this key): give --tsig-key-file with a key it allows; an AD zone that takes secure updates only needs Kerberos: give --gss-tsig (after kinit, or with --krb5-keytab)"
		case dns.RcodeNotAuth:
			hint = ": the TSIG signature was not accepted (wrong key, or the clocks differ)"
		case dns.RcodeNotZone:
			hint = ": the server is not authoritative for the zone (ask the primary server)"
		}
		return fmt.Errorf("UPDATE of zone %s at %s: %s%s", zone, server, rcodeText(resp.Rcode), hint)
	}
	return nil
}
