package vlmcs

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// The UPDATE policy: what one RFC 2136 update may change in a publish zone's pool, checked
// record by record (prescan and policy), as a whole (sender's own names, scoped deletes, key
// ownership, limits) and against the pool (prerequisites), then applied atomically. update.go
// receives, authenticates and answers the update.

// Bounds on what updates can make a pool hold (a key granted `*.suffix` could otherwise grow it
// without limit).
const (
	maxMembers   = 1024 // SRV members per pool
	maxHosts     = 1024 // target names with registered addresses per pool
	maxHostAddrs = 16   // addresses per target name
)

// op is one checked change from the update section.
type op struct {
	rr    dns.RR
	name  string // lower-case owner name
	class uint16
	srv   *dns.SRV
	ip    netip.Addr

	otherFamily  bool // an address of the family the sender did not send from
	scopedDelete bool // `_vlmcs._tcp ANY SRV`: limited to the targets this update adds
}

// applyUpdate runs the prescan, the policy and the prerequisites, then applies the changes
// atomically. It returns the verdict.
func (v *Vlmcs) applyUpdate(ctx context.Context, r *dns.Msg, p *pool, who requester, lease time.Duration, now time.Time) *verdict {
	ops := make([]op, 0, len(r.Ns))
	for _, rr := range r.Ns {
		o, vd := v.check(rr, p, who)
		if vd != nil {
			return vd
		}
		ops = append(ops, o)
	}
	if vd := checkSelf(ops, who.src); vd != nil {
		return vd
	}
	if vd := scopeDeletes(ops); vd != nil {
		return vd
	}
	if who.key == "" {
		if vd := v.namesAreSender(ctx, ops, who.src); vd != nil {
			return vd
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if vd := prerequisites(r.Answer, p, now); vd != nil {
		return vd
	}
	if who.key == "" {
		if vd := p.keyOwnedLocked(ops); vd != nil {
			return vd
		}
	}
	if vd := p.fitsLocked(ops, who); vd != nil {
		return vd
	}
	if len(ops) > 0 {
		p.applyLocked(ops, who, now.Add(lease), now)
	}
	return &verdict{rcode: dns.RcodeSuccess, reason: reasonOK}
}

// check runs the RFC 2136 §3.4.1 prescan and the vlmcs policy on one update record.
func (v *Vlmcs) check(rr dns.RR, p *pool, who requester) (op, *verdict) {
	h := rr.Header()
	o := op{rr: rr, name: strings.ToLower(h.Name), class: h.Class}
	if !dns.IsSubDomain(p.zone, o.name) {
		return o, refuse(dns.RcodeNotZone, reasonNotZone, "%s is outside zone %s", h.Name, p.zone)
	}
	switch h.Class {
	case dns.ClassINET:
		if isMeta(h.Rrtype) || h.Rrtype == dns.TypeANY {
			return o, refuse(dns.RcodeFormatError, reasonFormat, "cannot add type %s", dns.TypeToString[h.Rrtype])
		}
	case dns.ClassANY:
		if h.Ttl != 0 || h.Rdlength != 0 || isMeta(h.Rrtype) {
			return o, refuse(dns.RcodeFormatError, reasonFormat, "malformed RRset delete at %s", h.Name)
		}
	case dns.ClassNONE:
		if h.Ttl != 0 || isMeta(h.Rrtype) || h.Rrtype == dns.TypeANY {
			return o, refuse(dns.RcodeFormatError, reasonFormat, "malformed RR delete at %s", h.Name)
		}
	default:
		return o, refuse(dns.RcodeFormatError, reasonFormat, "class %d in update section", h.Class)
	}
	cfg := v.cfg
	if o.name == p.srvName {
		if h.Rrtype != dns.TypeSRV {
			return o, refuse(dns.RcodeRefused, reasonOutside, "only SRV may be updated at %s, not %s", p.srvName, dns.TypeToString[h.Rrtype])
		}
		if h.Class == dns.ClassANY {
			o.scopedDelete = true // judged with the whole update in scopeDeletes
			return o, nil
		}
		srv, ok := rr.(*dns.SRV)
		if !ok {
			return o, refuse(dns.RcodeFormatError, reasonFormat, "SRV without data")
		}
		o.srv = srv
		target, err := dnsname.HostName(srv.Target)
		if err != nil {
			return o, refuse(dns.RcodeRefused, reasonBadName, "SRV target: %v", err)
		}
		if h.Class == dns.ClassINET && srv.Port == 0 {
			return o, refuse(dns.RcodeRefused, reasonOutside, "SRV for %s has port 0", target)
		}
		if cfg.isStatic(target) {
			return o, refuse(dns.RcodeRefused, reasonStatic, "%s is a static member: the configuration owns it", target)
		}
		if !cfg.approve.Name(target) {
			return o, refuse(dns.RcodeRefused, reasonUnapprovedTarget, "target %s is not approved", target)
		}
		if h.Class == dns.ClassINET && !cfg.portAllowed(srv.Port) {
			return o, refuse(dns.RcodeRefused, reasonUnapprovedPort, "SRV for %s has port %d, not one of `ports`", target, srv.Port)
		}
		if who.key != "" && !cfg.granted(who.key, target) {
			return o, refuse(dns.RcodeRefused, reasonNotGranted, "key %s may not register %s", who.key, target)
		}
		return o, nil
	}
	switch h.Rrtype {
	case dns.TypeA, dns.TypeAAAA:
	case dns.TypeANY: // class ANY: delete every address at the name
	default:
		return o, refuse(dns.RcodeRefused, reasonOutside, "type %s at %s is outside what vlmcs manages", dns.TypeToString[h.Rrtype], h.Name)
	}
	if _, err := dnsname.HostName(o.name); err != nil {
		return o, refuse(dns.RcodeRefused, reasonBadName, "owner: %v", err)
	}
	if cfg.isStatic(o.name) {
		return o, refuse(dns.RcodeRefused, reasonStatic, "%s is a static member: the configuration owns its addresses", o.name)
	}
	if !cfg.approve.Name(o.name) {
		return o, refuse(dns.RcodeRefused, reasonUnapprovedTarget, "target %s is not approved", o.name)
	}
	if who.key != "" && !cfg.granted(who.key, o.name) {
		return o, refuse(dns.RcodeRefused, reasonNotGranted, "key %s may not register %s", who.key, o.name)
	}
	if h.Class == dns.ClassANY {
		return o, nil
	}
	ip, ok := rrAddr(rr)
	if !ok {
		return o, refuse(dns.RcodeFormatError, reasonFormat, "%s record at %s without an address", dns.TypeToString[h.Rrtype], h.Name)
	}
	o.ip = ip
	if h.Class == dns.ClassNONE {
		return o, nil
	}
	if !ip.IsGlobalUnicast() && !ip.IsLoopback() || ip.IsMulticast() {
		return o, refuse(dns.RcodeRefused, reasonUnapprovedAddr, "address %s of %s is not a unicast host address", ip, o.name)
	}
	if !cfg.approve.Addr(o.name, ip) {
		if b := cfg.approve.Bound(o.name); b != nil {
			return o, refuse(dns.RcodeRefused, reasonUnapprovedAddr, "address %s is not bound to %s (approve %s=%s)", ip, o.name, o.name, joinAddrs(b))
		}
		return o, refuse(dns.RcodeRefused, reasonUnapprovedAddr, "address %s of %s is not approved", ip, o.name)
	}
	if (who.key != "" && cfg.anyAddress[who.key]) || ip == who.src {
		return o, nil
	}
	if ip.Is4() == who.src.Is4() {
		return o, refuse(dns.RcodeRefused, reasonForeignAddr, "address %s of %s is not the sender's %s", ip, o.name, who.src)
	}
	o.otherFamily = true // allowed if the same update also adds the sender's own address (dual stack)
	return o, nil
}

// namesAreSender refuses an unsigned update unless every host name it touches (SRV targets it
// adds or withdraws, owners of addresses it adds or deletes) is one the next plugin (the
// Active Directory zone) already resolves to the sender, as Windows secure dynamic update ties
// a host to its own record. Nothing the update itself adds, and nothing registered here,
// counts as proof: an unsigned sender can only speak for the names the directory gives it.
// The names are looked up once each, at most max(1, member_limit PER_SENDER) of them.
func (v *Vlmcs) namesAreSender(ctx context.Context, ops []op, src netip.Addr) *verdict {
	var names []string
	for _, o := range ops {
		n := o.name
		switch {
		case o.scopedDelete:
			continue // scoped to the targets the update adds, which are judged here
		case o.srv != nil:
			n = strings.ToLower(dns.Fqdn(o.srv.Target))
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if limit := max(1, v.cfg.membersPerSender); len(names) > limit {
		return refuse(dns.RcodeRefused, reasonMemberLimit, "unsigned update touches %d host names (at most %d, member_limit)", len(names), limit)
	}
	for _, n := range names {
		addrs := v.resolve(ctx, n)
		if !slices.Contains(addrs, src) {
			if len(addrs) > 4 {
				addrs = addrs[:4]
			}
			return refuse(dns.RcodeRefused, reasonForeignTarget, "unsigned update at %s: the zone behind resolves it to [%s], not to the sender %s", n, joinAddrs(addrs), src)
		}
	}
	return nil
}

// scopeDeletes allows a delete of the whole SRV RRset only together with SRV additions (a
// host replacing "its" record set, as some dynamic-update clients do); it then removes only
// the members of the targets the update adds. Alone it would remove every other member.
func scopeDeletes(ops []op) *verdict {
	scoped, adds := false, false
	for _, o := range ops {
		scoped = scoped || o.scopedDelete
		adds = adds || (o.srv != nil && o.class == dns.ClassINET)
	}
	if scoped && !adds {
		return refuse(dns.RcodeRefused, reasonDeleteAll, "deleting the whole SRV RRset would remove other members")
	}
	return nil
}

// checkSelf refuses other-family addresses added to a name unless the same update adds the
// sender's address to that name: a dual-stack host sends from one family but publishes both.
func checkSelf(ops []op, src netip.Addr) *verdict {
	for _, o := range ops {
		if !o.otherFamily {
			continue
		}
		self := false
		for _, p := range ops {
			if p.srv == nil && p.class == dns.ClassINET && p.name == o.name && p.ip == src {
				self = true
				break
			}
		}
		if !self {
			return refuse(dns.RcodeRefused, reasonForeignAddr, "address %s of %s comes without the sender's own address %s", o.ip, o.name, src)
		}
	}
	return nil
}

// prerequisites evaluates RFC 2136 §3.2 against the pool's data: the SRV RRset at
// _vlmcs._tcp.<zone>, the targets' A/AAAA RRsets and the zone's SOA.
func prerequisites(pre []dns.RR, p *pool, now time.Time) *verdict {
	type set struct {
		name string
		typ  uint16
	}
	want := map[set][]dns.RR{}
	var order []set
	for _, rr := range pre {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if h.Ttl != 0 {
			return refuse(dns.RcodeFormatError, reasonFormat, "prerequisite with TTL %d", h.Ttl)
		}
		if !dns.IsSubDomain(p.zone, name) {
			return refuse(dns.RcodeNotZone, reasonNotZone, "prerequisite %s is outside zone %s", h.Name, p.zone)
		}
		switch h.Class {
		case dns.ClassANY:
			if h.Rdlength != 0 {
				return refuse(dns.RcodeFormatError, reasonFormat, "prerequisite with data")
			}
			if h.Rrtype == dns.TypeANY {
				if !p.nameInUseLocked(name, now) {
					return refuse(dns.RcodeNameError, reasonPrereq, "name %s is not in use", name)
				}
			} else if len(p.rrsetLocked(name, h.Rrtype, now)) == 0 {
				return refuse(dns.RcodeNXRrset, reasonPrereq, "RRset %s %s does not exist", name, dns.TypeToString[h.Rrtype])
			}
		case dns.ClassNONE:
			if h.Rdlength != 0 {
				return refuse(dns.RcodeFormatError, reasonFormat, "prerequisite with data")
			}
			if h.Rrtype == dns.TypeANY {
				if p.nameInUseLocked(name, now) {
					return refuse(dns.RcodeYXDomain, reasonPrereq, "name %s is in use", name)
				}
			} else if len(p.rrsetLocked(name, h.Rrtype, now)) != 0 {
				return refuse(dns.RcodeYXRrset, reasonPrereq, "RRset %s %s exists", name, dns.TypeToString[h.Rrtype])
			}
		case dns.ClassINET:
			if isMeta(h.Rrtype) || h.Rrtype == dns.TypeANY {
				return refuse(dns.RcodeFormatError, reasonFormat, "prerequisite of type %s", dns.TypeToString[h.Rrtype])
			}
			k := set{name, h.Rrtype}
			if _, ok := want[k]; !ok {
				order = append(order, k)
			}
			want[k] = append(want[k], rr)
		default:
			return refuse(dns.RcodeFormatError, reasonFormat, "prerequisite of class %d", h.Class)
		}
	}
	for _, k := range order {
		if !sameRdata(want[k], p.rrsetLocked(k.name, k.typ, now)) {
			return refuse(dns.RcodeNXRrset, reasonPrereq, "RRset %s %s differs", k.name, dns.TypeToString[k.typ])
		}
	}
	return nil
}

// sameRdata reports whether a and b hold the same records, ignoring order, TTL and case of names.
func sameRdata(a, b []dns.RR) bool {
	norm := func(rrs []dns.RR) []string {
		out := make([]string, 0, len(rrs))
		for _, rr := range rrs {
			c := dns.Copy(rr)
			c.Header().Ttl = 0
			c.Header().Class = dns.ClassINET
			out = append(out, strings.ToLower(c.String()))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// isMeta reports whether t is a meta type that cannot appear in an update.
func isMeta(t uint16) bool {
	switch t {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeOPT, dns.TypeTSIG, dns.TypeNone:
		return true
	}
	return false
}

// keyOwnedLocked refuses an unsigned update that touches a member or addresses registered
// with a TSIG key: an unsigned sender never changes what a key registered, even at its own
// name.
func (p *pool) keyOwnedLocked(ops []op) *verdict {
	for _, o := range ops {
		if o.srv != nil {
			if m, ok := p.members[memberKey{strings.ToLower(dns.Fqdn(o.srv.Target)), o.srv.Port}]; ok && m.owner != "" {
				return refuse(dns.RcodeRefused, reasonSigned, "%s port %d was registered with key %s", m.target, m.port, m.owner)
			}
			continue
		}
		if h, ok := p.hosts[o.name]; ok && h.owner != "" {
			return refuse(dns.RcodeRefused, reasonSigned, "addresses of %s were registered with key %s", o.name, h.owner)
		}
	}
	return nil
}

// fitsLocked refuses an update that would grow the pool beyond its bounds: the table sizes,
// and member_limit, which bounds both the members and the names with addresses one key (or
// one unsigned sender address) holds.
func (p *pool) fitsLocked(ops []op, who requester) *verdict {
	mine := func(owner string, sender netip.Addr) bool {
		if who.key != "" {
			return owner == who.key
		}
		return owner == "" && sender == who.src
	}
	members, hosts := len(p.members), len(p.hosts)
	myMembers, myHosts := 0, 0
	for _, m := range p.members {
		if !m.static && mine(m.owner, m.sender) {
			myMembers++
		}
	}
	for _, h := range p.hosts {
		if mine(h.owner, h.sender) {
			myHosts++
		}
	}
	added := map[memberKey]bool{}
	addrs := map[string]int{}
	for _, o := range ops {
		switch {
		case o.srv != nil && o.class == dns.ClassINET:
			k := memberKey{strings.ToLower(dns.Fqdn(o.srv.Target)), o.srv.Port}
			if m, ok := p.members[k]; !ok && !added[k] {
				added[k] = true
				members++
				myMembers++
			} else if ok && !m.static && !mine(m.owner, m.sender) && !added[k] {
				added[k] = true
				myMembers++ // taken over (a key refreshing an unsigned member, a host whose address changed)
			}
		case o.srv == nil && o.class == dns.ClassINET:
			if _, seen := addrs[o.name]; !seen {
				h, ok := p.hosts[o.name]
				switch {
				case !ok:
					hosts++
					myHosts++
				case !mine(h.owner, h.sender):
					myHosts++
				}
				if ok {
					addrs[o.name] = len(h.addrs)
				}
			}
			addrs[o.name]++
		}
	}
	limit, holder := p.cfg.membersPerKey, "key "+who.key
	if who.key == "" {
		limit, holder = p.cfg.membersPerSender, "unsigned sender "+who.src.String()
	}
	if len(added) > 0 && myMembers > limit {
		return refuse(dns.RcodeRefused, reasonMemberLimit, "%s would hold %d members (member_limit %d)", holder, myMembers, limit)
	}
	if len(addrs) > 0 && myHosts > limit {
		return refuse(dns.RcodeRefused, reasonMemberLimit, "%s would hold addresses at %d names (member_limit %d)", holder, myHosts, limit)
	}
	if members > maxMembers || hosts > maxHosts {
		return refuse(dns.RcodeRefused, reasonFull, "pool would hold %d members and %d hosts (limits %d, %d)", members, hosts, maxMembers, maxHosts)
	}
	for n, c := range addrs {
		if c > maxHostAddrs {
			return refuse(dns.RcodeRefused, reasonFull, "%s would have more than %d addresses", n, maxHostAddrs)
		}
	}
	return nil
}

// applyLocked performs the checked changes in order.
func (p *pool) applyLocked(ops []op, who requester, expires, now time.Time) {
	owner := who.key
	woke := false
	targets := map[string]bool{}    // targets of SRV additions: the scope of an RRset delete
	readded := map[memberKey]bool{} // members this update adds again keep their health
	for _, o := range ops {
		if o.srv != nil && o.class == dns.ClassINET {
			k := memberKey{strings.ToLower(dns.Fqdn(o.srv.Target)), o.srv.Port}
			targets[k.target], readded[k] = true, true
		}
	}
	for _, o := range ops {
		if o.scopedDelete {
			for k, m := range p.members {
				if targets[k.target] && !readded[k] && !m.static && (owner != "" || m.owner == "") {
					delete(p.members, k)
					p.events.Logf("%s port %d replaced in %s", k.target, k.port, p.srvName)
				}
			}
			continue
		}
		if o.srv != nil {
			k := memberKey{strings.ToLower(dns.Fqdn(o.srv.Target)), o.srv.Port}
			m, ok := p.members[k]
			if ok && m.static {
				continue // configuration owns static members
			}
			if o.class == dns.ClassNONE {
				if ok {
					delete(p.members, k)
					p.events.Logf("%s port %d withdrawn from %s (key %q)", k.target, k.port, p.srvName, owner)
				}
				continue
			}
			if !ok {
				m = &member{memberKey: k}
				p.members[k] = m
				woke = true
				p.events.Logf("%s port %d registered in %s (key %q, lease %s)", k.target, k.port, p.srvName, owner, expires.Sub(now).Round(time.Second))
			}
			m.priority, m.weight, m.expires, m.owner, m.sender = o.srv.Priority, o.srv.Weight, expires, owner, netip.Addr{}
			if owner == "" {
				m.sender = who.src
			}
			continue
		}
		hr := p.hosts[o.name]
		switch o.class {
		case dns.ClassANY:
			if hr != nil {
				hr.addrs = slices.DeleteFunc(hr.addrs, func(ip netip.Addr) bool {
					return o.rr.Header().Rrtype == dns.TypeANY || (ip.Is4() == (o.rr.Header().Rrtype == dns.TypeA))
				})
			}
		case dns.ClassNONE:
			if hr != nil {
				hr.addrs = slices.DeleteFunc(hr.addrs, func(ip netip.Addr) bool { return ip == o.ip })
			}
		default:
			if hr == nil {
				hr = &hostRecord{}
				p.hosts[o.name] = hr
			}
			hr.owner, hr.sender = owner, netip.Addr{}
			if owner == "" {
				hr.sender = who.src
			}
			if !slices.Contains(hr.addrs, o.ip) {
				hr.addrs = append(hr.addrs, o.ip)
				woke = true
			}
			hr.expires = expires
		}
		if hr != nil && len(hr.addrs) == 0 {
			delete(p.hosts, o.name)
		}
	}
	p.rebuildLocked(now)
	if woke {
		p.wake()
	}
}

// rrsetLocked returns the records vlmcs holds at name of type t.
func (p *pool) rrsetLocked(name string, t uint16, now time.Time) []dns.RR {
	var out []dns.RR
	switch {
	case name == p.zone && t == dns.TypeSOA:
		out = append(out, p.soaLocked())
	case name == p.srvName && t == dns.TypeSRV:
		for _, m := range p.members {
			if m.live(now) {
				out = append(out, &dns.SRV{Hdr: dns.RR_Header{Name: p.srvName, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
					Priority: m.priority, Weight: m.weight, Port: m.port, Target: m.target})
			}
		}
	case t == dns.TypeA || t == dns.TypeAAAA:
		seen := map[netip.Addr]bool{}
		add := func(ip netip.Addr) {
			if ip.Is4() == (t == dns.TypeA) && !seen[ip] {
				seen[ip] = true
				out = append(out, addrRR(name, ip, 0))
			}
		}
		if h, ok := p.hosts[name]; ok && now.Before(h.expires) {
			for _, ip := range h.addrs {
				add(ip)
			}
		}
		for _, m := range p.members {
			if m.static && m.target == name {
				for _, ip := range m.staticAddrs {
					add(ip)
				}
			}
		}
	}
	return out
}

// nameInUseLocked reports whether vlmcs holds any record at name.
func (p *pool) nameInUseLocked(name string, now time.Time) bool {
	for _, t := range []uint16{dns.TypeSOA, dns.TypeSRV, dns.TypeA, dns.TypeAAAA} {
		if len(p.rrsetLocked(name, t, now)) > 0 {
			return true
		}
	}
	return false
}
