package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/gsstsig"
)

// GSS is how --fix signs by GSS-TSIG (RFC 3645), as Active Directory's secure dynamic update
// requires: the operator's Kerberos credentials, and the DNS server's host name (its service
// principal is DNS/ServerName; empty: the primary named in the zone's SOA).
type GSS struct {
	Credentials gsstsig.Credentials
	ServerName  string
}

// DeleteGSS is Delete with each zone's UPDATE signed by GSS-TSIG: one Kerberos login, one
// security context per server name, every answer's signature verified.
func DeleteGSS(ctx context.Context, server string, g GSS, removals []Removal, timeout time.Duration) []Deletion {
	var out []Deletion
	cl, loginErr := g.Credentials.Client()
	contexts := map[string]*gsstsig.Context{}
	for _, zone := range removalZones(removals) {
		d := Deletion{Zone: zone}
		for _, r := range removals {
			if r.Zone == zone {
				d.Removals = append(d.Removals, r)
			}
		}
		if loginErr != nil {
			d.Err = fmt.Errorf("GSS-TSIG with %s: %w", g.Credentials, loginErr)
		} else {
			d.Err = deleteZoneGSS(ctx, server, g, cl, contexts, zone, d.Removals, timeout)
		}
		out = append(out, d)
	}
	return out
}

func deleteZoneGSS(ctx context.Context, server string, g GSS, cl *client.Client, contexts map[string]*gsstsig.Context, zone string, removals []Removal, timeout time.Duration) error {
	name := g.ServerName
	if name == "" {
		var err error
		if name, err = gsstsig.PrimaryOf(ctx, server, zone, timeout); err != nil {
			return err
		}
	}
	c := contexts[name]
	if c == nil {
		var err error
		if c, err = gsstsig.Negotiate(ctx, cl, server, name, timeout); err != nil {
			return fmt.Errorf("GSS-TSIG with %s at %s: %w", g.Credentials, server, err)
		}
		contexts[name] = c
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	var rrs []dns.RR
	for _, r := range removals {
		rrs = append(rrs, r.RR())
	}
	m.Remove(rrs)
	resp, err := c.Exchange(ctx, m, server, timeout)
	if err != nil {
		return fmt.Errorf("UPDATE of zone %s at %s (GSS-TSIG): %w", zone, server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		hint := ""
		switch resp.Rcode {
		case dns.RcodeRefused, dns.RcodeServerFailure:
			// Windows answers a signed update the zone's ACL denies with REFUSED, Samba with
			// SERVFAIL.
			hint = fmt.Sprintf(": the zone's access control does not let %s change these records (in Active Directory the record's owner, Domain Admins and DnsAdmins may): use credentials that may, or --powershell-out", principal(cl))
			if resp.Rcode == dns.RcodeServerFailure {
				hint = ": the server failed the update, as Samba does when" + strings.TrimPrefix(hint, ":")
			}
		}
		return fmt.Errorf("UPDATE of zone %s at %s (GSS-TSIG as %s): %s%s", zone, server, principal(cl), rcodeText(resp.Rcode), hint)
	}
	return nil
}

// principal names the Kerberos identity, "administrator@CORP.EXAMPLE".
func principal(cl *client.Client) string {
	return cl.Credentials.UserName() + "@" + cl.Credentials.Domain()
}
