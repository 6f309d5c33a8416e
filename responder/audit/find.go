package audit

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
)

// Service is the owner-name prefix of KMS SRV records, in the case
// Windows clients ask it.
const Service = "_VLMCS._TCP."

// maxTransferRRs bounds the records read from one zone transfer.
const maxTransferRRs = 2000000

// found is one SRV record with its target's addresses.
type found struct {
	rec     Record
	addrs   []netip.Addr
	addrErr string
}

// srvAnswer is what one SRV lookup (with its alias chain) found.
type srvAnswer struct {
	owner   string
	aliases []string
	// alias is the record at (or above, a DNAME) the name asked that
	// starts the chain; nil without one.
	alias *Alias
	srvs  []*dns.SRV
	glue  []dns.RR
	rcode int
	trunc bool
}

// lookupSRV asks for name's SRV records as a client would: over UDP, TCP
// on truncation, following CNAME and DNAME chains (asking again for the
// end of a chain the answer does not complete), at most maxAliases links.
func (r *resolver) lookupSRV(ctx context.Context, name string) (srvAnswer, error) {
	ans := srvAnswer{owner: dns.Fqdn(name)}
	ask := ans.owner
	for range maxAliases {
		res, err := r.exchange(ctx, newQuery(ask, dns.TypeSRV))
		ans.trunc = ans.trunc || res.truncated
		if err != nil {
			return ans, err
		}
		m := res.msg
		ans.rcode = m.Rcode
		owner, chain := dnsexchange.FollowAliases(m.Answer, ask)
		if ans.alias == nil && len(chain) > 0 {
			ans.alias = firstAlias(m.Answer, ask)
		}
		ans.aliases = append(ans.aliases, chain...)
		ans.owner = owner
		for _, rr := range m.Answer {
			if s, ok := rr.(*dns.SRV); ok && s.Hdr.Class == dns.ClassINET && strings.EqualFold(s.Hdr.Name, owner) {
				ans.srvs = append(ans.srvs, s)
			}
		}
		ans.glue = append(ans.glue, m.Answer...)
		ans.glue = append(ans.glue, m.Extra...)
		if len(ans.srvs) > 0 || len(chain) == 0 || m.Rcode != dns.RcodeSuccess {
			return ans, nil
		}
		// The chain leaves what this answer holds: ask for its end.
		ask = owner
	}
	return ans, fmt.Errorf("SRV %s: more than %d aliases", name, maxAliases)
}

// firstAlias returns the alias record that FollowAliases takes first from
// name: a CNAME at name, else a DNAME at an ancestor.
func firstAlias(rrs []dns.RR, name string) *Alias {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Class == dns.ClassINET && strings.EqualFold(c.Hdr.Name, name) {
			return &Alias{Type: "CNAME", Owner: canonical(c.Hdr.Name), Target: canonical(c.Target)}
		}
	}
	for _, rr := range rrs {
		if d, ok := rr.(*dns.DNAME); ok && d.Hdr.Class == dns.ClassINET && !strings.EqualFold(d.Hdr.Name, name) && dns.IsSubDomain(d.Hdr.Name, name) {
			return &Alias{Type: "DNAME", Owner: canonical(d.Hdr.Name), Target: canonical(d.Target)}
		}
	}
	return nil
}

// isServiceOwner reports whether name's first two labels are _vlmcs and
// _tcp (any case), and returns the domain below them.
func isServiceOwner(name string) (string, bool) {
	labels := dns.SplitDomainName(name)
	if len(labels) < 3 || !strings.EqualFold(labels[0], "_vlmcs") || !strings.EqualFold(labels[1], "_tcp") {
		return "", false
	}
	return canonical(strings.Join(labels[2:], ".")), true
}

// find collects the SRV records of every domain (and, with axfr, every
// _vlmcs._tcp name inside each domain's zone) with their addresses.
func find(ctx context.Context, r *resolver, domains []string, axfr bool) ([]found, []string) {
	var (
		out      []found
		problems []string
		seen     = map[string]bool{}
		zones    = map[string]string{} // owner -> zone
		hosts    = map[string][]netip.Addr{}
	)
	full := false
	add := func(rec Record, glue []dns.RR) {
		if len(out) >= maxRecords {
			if !full {
				full = true
				problems = append(problems, fmt.Sprintf("more than %d records: the rest are not audited", maxRecords))
			}
			return
		}
		k := rec.key()
		if seen[k] {
			return
		}
		seen[k] = true
		f := found{rec: rec}
		f.addrs = dnsexchange.AppendAddrs(nil, glue, rec.Target, maxAddrs)
		if len(f.addrs) == 0 {
			f.addrs = hosts[strings.ToLower(rec.Target)]
		}
		out = append(out, f)
	}
	fromAnswer := func(domain, name, source, zone string, ans srvAnswer) {
		for _, s := range ans.srvs {
			if s.Target == "." || s.Target == "" {
				continue // "decidedly not available" (RFC 2782): names no host
			}
			rec := Record{Domain: domain, Name: canonical(name), Aliases: append([]string{}, ans.aliases...), Owner: canonical(ans.owner),
				Zone: zone, Source: source, Target: canonical(s.Target), Port: s.Port, Priority: s.Priority, Weight: s.Weight, TTL: s.Hdr.Ttl}
			if ans.alias != nil {
				a := *ans.alias
				rec.Alias = &a
			}
			add(rec, ans.glue)
		}
	}
	transferred := map[string]*xfrRecs{}
	for _, d := range domains {
		if axfr {
			// Transfer the zone that holds d (once), keep what is at or below d.
			zone := d
			if z, err := r.zoneOf(ctx, d); err == nil {
				zone = z
			}
			x, ok := transferred[zone]
			if !ok {
				recs, addrs, aliases, err := r.transfer(ctx, zone)
				if err != nil {
					problems = append(problems, transferProblem(zone, r.server, err))
				}
				for n, a := range addrs {
					hosts[n] = append(hosts[n], a...)
				}
				x = &xfrRecs{recs, aliases}
				transferred[zone] = x
			}
			for _, rec := range x.recs {
				if !dns.IsSubDomain(d, rec.Owner) {
					continue
				}
				rec.Zone = zone
				zones[rec.Owner] = zone
				add(rec, nil)
			}
			// Aliases at _vlmcs._tcp names are followed as a client would.
			for _, name := range x.aliases {
				if !dns.IsSubDomain(d, name) {
					continue
				}
				zones[name] = zone
				dom, _ := isServiceOwner(name)
				ans, err := r.lookupSRV(ctx, name)
				if err != nil {
					problems = append(problems, fmt.Sprintf("SRV %s: %v", name, err))
					continue
				}
				fromAnswer(dom, name, "axfr", "", ans)
			}
		}
		name := Service + d
		ans, err := r.lookupSRV(ctx, name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("SRV %s: %v", name, err))
			continue
		}
		if ans.rcode != dns.RcodeSuccess && ans.rcode != dns.RcodeNameError {
			problems = append(problems, fmt.Sprintf("SRV %s: server answered %s", name, rcodeText(ans.rcode)))
			continue
		}
		fromAnswer(d, name, "query", "", ans)
		if axfr {
			if p := transferBypass(r.server, name, transferredAt(transferred, canonical(name)), ans); p != "" {
				problems = append(problems, p)
			}
		}
	}
	// Zones of records found by query, addresses of targets without glue.
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	type addrRes struct {
		addrs []netip.Addr
		err   error
	}
	resolved := map[string]*addrRes{}
	for i := range out {
		f := &out[i]
		if a := f.rec.Alias; a != nil && a.Zone == "" {
			// A CNAME's owner holds no SOA (a question for it follows the
			// alias): its zone is its parent's.
			ask := a.Owner
			if j, end := dns.NextLabel(ask, 0); a.Type == "CNAME" && !end {
				ask = ask[j:]
			}
			if z, ok := zones[a.Owner]; ok {
				a.Zone = z
			} else if z, err := r.zoneOf(ctx, ask); err == nil {
				zones[a.Owner], a.Zone = z, z
			}
		}
		if f.rec.Zone == "" {
			if z, ok := zones[f.rec.Owner]; ok {
				f.rec.Zone = z
			} else if z, err := r.zoneOf(ctx, f.rec.Owner); err == nil {
				zones[f.rec.Owner], f.rec.Zone = z, z
			}
		}
		if len(f.addrs) > 0 {
			continue
		}
		t := strings.ToLower(f.rec.Target)
		if _, ok := resolved[t]; ok {
			continue
		}
		res := &addrRes{}
		resolved[t] = res
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := r.resolveAddrs(ctx, t)
			mu.Lock()
			res.addrs, res.err = a, err
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range out {
		f := &out[i]
		if len(f.addrs) > 0 {
			continue
		}
		if res := resolved[strings.ToLower(f.rec.Target)]; res != nil {
			f.addrs = res.addrs
			if res.err != nil {
				f.addrErr = res.err.Error()
			}
		}
	}
	return out, problems
}

// xfrRecs is what one zone transfer found: _vlmcs._tcp SRV records and the
// _vlmcs._tcp names that are aliases.
type xfrRecs struct {
	recs    []Record
	aliases []string
}

// transferProblem says why a zone transfer failed; a refusal names the
// likely cause (a vlmcs CoreDNS refuses transfers of the zones it scrubs,
// since a transfer would hand out the records it hides) and what to do.
func transferProblem(zone, server string, err error) string {
	msg := err.Error()
	for _, rc := range []int{dns.RcodeRefused, dns.RcodeNotAuth} {
		if strings.Contains(msg, fmt.Sprintf("xfr rcode: %d", rc)) {
			return fmt.Sprintf("AXFR %s at %s: %s: the server does not transfer this zone to us. A CoreDNS with vlmcs refuses transfers "+
				"of its scrub zones (a transfer would bypass its scrubbing): without --axfr, audit reports what its clients see; "+
				"to list every record the zone holds, give --dns the zone's own server (an AD domain controller) with --axfr",
				zone, server, rcodeText(rc))
		}
	}
	return fmt.Sprintf("AXFR %s at %s: %v", zone, server, err)
}

// transferredAt returns the transferred SRV records whose owner is name.
func transferredAt(transferred map[string]*xfrRecs, name string) []Record {
	var out []Record
	for _, x := range transferred {
		for _, rec := range x.recs {
			if rec.Owner == name {
				out = append(out, rec)
			}
		}
	}
	return out
}

// transferBypass compares what a transfer holds at name with what the same
// server answers a client asking for name. When the transfer holds records
// the answer leaves out, the server filters answers (a vlmcs scrub zone)
// but not transfers: the transfer is not what clients see, and audit says so.
func transferBypass(server, name string, xfr []Record, ans srvAnswer) string {
	answered := map[string]bool{}
	for _, s := range ans.srvs {
		answered[fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, canonical(s.Target))] = true
	}
	hidden := 0
	for _, r := range xfr {
		if !answered[r.RData()] {
			hidden++
		}
	}
	if hidden == 0 {
		return ""
	}
	return fmt.Sprintf("AXFR at %s lists %d SRV record(s) at %s that its answers to clients leave out: the server filters answers "+
		"(a CoreDNS with vlmcs scrubbing the zone?) but relays zone transfers, so the transfer bypasses it. Clients see only the "+
		"query's answer; the hidden records are audited as the zone holds them (delete them at the zone's own server)",
		server, hidden, trimDot(name))
}

// transfer reads zone by AXFR from the server and returns its _vlmcs._tcp
// SRV records, the addresses of every name (for glue) and the
// _vlmcs._tcp names that are aliases (CNAME) to follow.
func (r *resolver) transfer(ctx context.Context, zone string) ([]Record, map[string][]netip.Addr, []string, error) {
	m := new(dns.Msg)
	m.SetAxfr(dns.Fqdn(zone))
	tr := &dns.Transfer{DialTimeout: r.timeout, ReadTimeout: r.timeout, WriteTimeout: r.timeout}
	if r.tsig != nil {
		tr.TsigSecret = map[string]string{r.tsig.Name: r.tsig.Secret}
		m.SetTsig(r.tsig.Name, r.tsig.Algorithm, 300, 0)
	}
	ch, err := tr.In(m, r.server)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		recs    []Record
		addrs   = map[string][]netip.Addr{}
		aliases []string
		n       int
		soas    int
	)
	// Drain the channel whatever happens, so the transfer's goroutine ends.
	defer func() {
		for range ch {
		}
	}()
	for env := range ch {
		if env.Error != nil {
			return recs, addrs, aliases, fmt.Errorf("transfer failed: %w", env.Error)
		}
		if err := ctx.Err(); err != nil {
			return recs, addrs, aliases, err
		}
		for _, rr := range env.RR {
			if n++; n > maxTransferRRs {
				return recs, addrs, aliases, fmt.Errorf("zone has more than %d records: stopped reading", maxTransferRRs)
			}
			h := rr.Header()
			if h.Class != dns.ClassINET {
				continue
			}
			owner := canonical(h.Name)
			switch v := rr.(type) {
			case *dns.SOA:
				soas++
			case *dns.A, *dns.AAAA:
				if len(addrs[owner]) < maxAddrs {
					addrs[owner] = dnsexchange.AppendAddrs(addrs[owner], []dns.RR{v}, h.Name, maxAddrs)
				}
			case *dns.SRV:
				dom, ok := isServiceOwner(owner)
				if !ok || v.Target == "." || v.Target == "" {
					continue
				}
				recs = append(recs, Record{Domain: dom, Name: owner, Aliases: []string{}, Owner: owner, Source: "axfr",
					Target: canonical(v.Target), Port: v.Port, Priority: v.Priority, Weight: v.Weight, TTL: h.Ttl})
			case *dns.CNAME:
				if _, ok := isServiceOwner(owner); ok && len(aliases) < 1024 {
					aliases = append(aliases, owner)
				}
			}
		}
	}
	if soas == 0 {
		return recs, addrs, aliases, fmt.Errorf("the transfer of %s ended without its SOA", zone)
	}
	return recs, addrs, aliases, nil
}
