package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Deletion is the outcome of one zone's removals.
type Deletion struct {
	Zone     string
	Removals []Removal
	Err      error
}

// Delete carries out removals (Report.Removals) by RFC 2136 UPDATE at
// server, one message per zone, each record deleted by its full data (so
// other records at the same name stay), over TCP, signed with key when
// given. It returns each zone's result.
func Delete(ctx context.Context, server string, key *TSIGKey, removals []Removal, timeout time.Duration) []Deletion {
	var out []Deletion
	for _, zone := range removalZones(removals) {
		d := Deletion{Zone: zone}
		for _, r := range removals {
			if r.Zone == zone {
				d.Removals = append(d.Removals, r)
			}
		}
		d.Err = deleteZone(ctx, server, key, zone, d.Removals, timeout)
		out = append(out, d)
	}
	return out
}

func deleteZone(ctx context.Context, server string, key *TSIGKey, zone string, removals []Removal, timeout time.Duration) error {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	var rrs []dns.RR
	for _, r := range removals {
		rrs = append(rrs, r.RR())
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
