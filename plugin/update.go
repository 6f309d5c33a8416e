package vlmcs

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
	"github.com/kmsdns/kmsdns/plugin/pkg/refusal"
)

// Reasons label updates_total, appear in the refusal log and travel to the registrant in an
// Extended DNS Error: the set is fixed, and shared with kms-responder (plugin/pkg/refusal).
const (
	reasonOK               = refusal.OK
	reasonFormat           = refusal.Format
	reasonNotZone          = refusal.NotZone
	reasonBadKey           = refusal.BadKey
	reasonBadSig           = refusal.BadSig
	reasonBadTime          = refusal.BadTime
	reasonUnsigned         = refusal.Unsigned
	reasonOutside          = refusal.Outside
	reasonDeleteAll        = refusal.DeleteAll
	reasonUnapprovedTarget = refusal.UnapprovedTarget
	reasonUnapprovedAddr   = refusal.UnapprovedAddr
	reasonForeignAddr      = refusal.ForeignAddr
	reasonNotGranted       = refusal.NotGranted
	reasonPrereq           = refusal.Prereq
	reasonReplay           = refusal.Replay
	reasonFull             = refusal.Full
	reasonTransport        = refusal.Transport
	reasonSigned           = refusal.Signed
	reasonBeforeStart      = refusal.BeforeStart
	reasonUnapprovedPort   = refusal.UnapprovedPort
	reasonMemberLimit      = refusal.MemberLimit
	reasonForeignTarget    = refusal.ForeignTarget
	reasonBadName          = refusal.BadName
	reasonStatic           = refusal.Static
	reasonReplayFull       = refusal.ReplayFull
)

// Bounds on what updates can make a pool hold (a key granted `*.suffix` could otherwise grow it
// without limit).
const (
	maxMembers   = 1024 // SRV members per pool
	maxHosts     = 1024 // target names with registered addresses per pool
	maxHostAddrs = 16   // addresses per target name
)

// verdict is the outcome of one UPDATE.
type verdict struct {
	rcode   int
	reason  string
	detail  string
	tsigErr uint16 // TSIG error for NOTAUTH
}

func refuse(rcode int, reason, format string, args ...any) *verdict {
	return &verdict{rcode: rcode, reason: reason, detail: fmt.Sprintf(format, args...)}
}

// requester is who sent an update, as far as vlmcs trusts it.
type requester struct {
	key string // TSIG key name when the MAC verified; "" when unsigned
	src netip.Addr
	tcp bool
}

// serveUpdate handles an RFC 2136 UPDATE. Any zone other than a publish zone gets NOTZONE:
// updates are never passed to the next plugin.
func (v *Vlmcs) serveUpdate(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return v.finishUpdate(w, r, "", nil, refuse(dns.RcodeFormatError, reasonFormat, "zone section holds %d records", len(r.Question)), 0, false)
	}
	q := r.Question[0]
	var p *pool
	for _, cand := range v.pools {
		if strings.EqualFold(q.Name, cand.zone) {
			p = cand
			break
		}
	}
	if p == nil {
		// Never passed on: forward would relay it (unauthenticated, from this server's
		// address) to the DNS behind, e.g. Active Directory.
		return v.finishUpdate(w, r, "", nil, refuse(dns.RcodeNotZone, reasonNotZone, "zone %s is not a vlmcs publish zone", q.Name), 0, false)
	}
	if !v.plainDNS {
		return v.finishUpdate(w, r, p.zone, p, refuse(dns.RcodeRefused, reasonTransport, "updates are accepted over plain DNS (UDP, TCP) only"), 0, false)
	}
	if q.Qtype != dns.TypeSOA {
		return v.finishUpdate(w, r, p.zone, p, refuse(dns.RcodeFormatError, reasonFormat, "zone section type is %s, not SOA", dns.TypeToString[q.Qtype]), 0, false)
	}
	now := time.Now()
	who, vd := v.authenticate(w, r)
	if vd == nil && who.key != "" {
		vd = v.notReplayed(who.key, r.IsTsig(), now)
	}
	var lease time.Duration
	var ul bool
	if vd == nil {
		lease, ul = v.leaseFor(r)
		vd = v.applyUpdate(ctx, r, p, who, lease, now)
	}
	return v.finishUpdate(w, r, p.zone, p, vd, lease, ul)
}

// notReplayed refuses a verified signed update that could be a replay: signed before the
// process started, or its MAC remembered; it also refuses one the replay memory has no room
// for (the key's quota or the whole memory is full of unexpired MACs), since a MAC that is not
// remembered could be replayed.
func (v *Vlmcs) notReplayed(key string, t *dns.TSIG, now time.Time) *verdict {
	signed, until := tsigWindow(t)
	if signed.Before(v.started.Truncate(time.Second)) {
		// The replay memory starts empty with the process: a message signed before then
		// (within its fudge) could be a captured one, replayed after a restart. TSIG time
		// counts whole seconds, so the second the process started in is let through.
		return refuse(dns.RcodeRefused, reasonBeforeStart, "update signed at %d, before the server started at %d", t.TimeSigned, v.started.Unix())
	}
	switch v.replay.check(key, strings.ToLower(t.MAC), until, now) {
	case replaySeen:
		return refuse(dns.RcodeRefused, reasonReplay, "update signed at %d was seen before", t.TimeSigned)
	case replayKeyFull:
		return refuse(dns.RcodeRefused, reasonReplayFull, "key %s has %d unexpired signatures remembered (at most %d): retry later", key, maxReplayPerKey, maxReplayPerKey)
	case replayFull:
		return refuse(dns.RcodeRefused, reasonReplayFull, "the replay memory holds %d unexpired signatures: retry later", maxReplayEntries)
	}
	return nil
}

// authenticate checks TSIG placement and verdict, or the unsigned-update networks.
func (v *Vlmcs) authenticate(w dns.ResponseWriter, r *dns.Msg) (requester, *verdict) {
	who := requester{}
	if a := w.RemoteAddr(); a != nil {
		who.src, who.tcp = addrOf(a)
	}
	if tsigMisplaced(r) {
		return who, refuse(dns.RcodeFormatError, reasonFormat, "TSIG is not the last additional record")
	}
	if t := r.IsTsig(); t != nil {
		if err := w.TsigStatus(); err != nil {
			vd := &verdict{rcode: dns.RcodeNotAuth, detail: fmt.Sprintf("key %s: %v", t.Hdr.Name, err)}
			switch err {
			case dns.ErrSecret, dns.ErrKeyAlg:
				vd.reason, vd.tsigErr = reasonBadKey, dns.RcodeBadKey
			case dns.ErrTime:
				vd.reason, vd.tsigErr = reasonBadTime, dns.RcodeBadTime
			default:
				vd.reason, vd.tsigErr = reasonBadSig, dns.RcodeBadSig
			}
			return who, vd
		}
		who.key = plugin.Name(t.Hdr.Name).Normalize()
		// A key is bound to the algorithm it was defined with: miekg/dns verifies the MAC
		// with whatever algorithm the message names, so the same secret under another
		// algorithm would pass. RFC 8945 §5.2.1: a key the server does not know with that
		// algorithm is BADKEY.
		if d, ok := v.cfg.keys[who.key]; ok && dns.CanonicalName(t.Algorithm) != d.algorithm {
			return who, &verdict{rcode: dns.RcodeNotAuth, reason: reasonBadKey, tsigErr: dns.RcodeBadKey,
				detail: fmt.Sprintf("key %s is defined for %s, the update is signed with %s", who.key, strings.TrimSuffix(d.algorithm, "."), strings.TrimSuffix(dns.CanonicalName(t.Algorithm), "."))}
		}
		return who, nil
	}
	if !v.cfg.unsignedFrom(who.src, who.tcp) {
		tr := "udp"
		if who.tcp {
			tr = "tcp"
		}
		return who, refuse(dns.RcodeRefused, reasonUnsigned, "unsigned update over %s from a network not allowed to send one", tr)
	}
	return who, nil
}

// leaseFor returns the lease to grant and whether the request carried the Update Lease option.
func (v *Vlmcs) leaseFor(r *dns.Msg) (time.Duration, bool) {
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if ul, ok := e.(*dns.EDNS0_UL); ok {
				return v.cfg.clampLease(ul.Lease, true), true
			}
		}
	}
	return v.cfg.clampLease(0, false), false
}

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

// finishUpdate counts, logs refusals, and writes the response (with the granted lease and a
// TSIG record when the request was signed).
func (v *Vlmcs) finishUpdate(w dns.ResponseWriter, r *dns.Msg, zone string, p *pool, vd *verdict, lease time.Duration, ul bool) (int, error) {
	label := zone
	if label == "" {
		label = "other"
	}
	updatesTotal.WithLabelValues(v.server, label, dns.RcodeToString[vd.rcode], vd.reason).Inc()
	if vd.rcode != dns.RcodeSuccess {
		src := "?"
		if a := w.RemoteAddr(); a != nil {
			src = a.String()
		}
		key := "-"
		if t := r.IsTsig(); t != nil {
			key = t.Hdr.Name
		}
		v.logger.Logf("refused update from %s key %s zone %s: %s %s: %s", src, key, zone, dns.RcodeToString[vd.rcode], vd.reason, vd.detail)
	}

	m := new(dns.Msg)
	m.SetRcode(r, vd.rcode)
	if len(r.Question) == 0 {
		m.Question = nil
	}
	if o := r.IsEdns0(); o != nil {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(max(o.UDPSize(), dns.MinMsgSize))
		if ul && vd.rcode == dns.RcodeSuccess {
			opt.Option = append(opt.Option, &dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: uint32(lease / time.Second)})
		}
		if vd.rcode != dns.RcodeSuccess {
			// Why, for the registrant's own log (RFC 8914): the same reason and detail as
			// vlmcs's log line. Nothing secret goes in a detail.
			opt.Option = append(opt.Option, refusal.EDE(vd.reason, vd.detail))
		}
		m.Extra = append(m.Extra, opt)
	}
	// Sign the response when the request's MAC verified; answer a TSIG failure with a TSIG
	// record carrying the error (RFC 8945 §5.3.2); otherwise (e.g. a malformed TSIG layout whose
	// MAC was never checked) answer unsigned.
	if t := r.IsTsig(); t != nil && (vd.tsigErr != 0 || w.TsigStatus() == nil) && !tsigMisplaced(r) {
		now := time.Now().Unix()
		rt := &dns.TSIG{
			Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm:  t.Algorithm,
			Fudge:      t.Fudge,
			TimeSigned: uint64(now),
			OrigId:     m.Id,
			Error:      vd.tsigErr,
		}
		if vd.tsigErr == dns.RcodeBadTime { // RFC 8945 §5.2.3: client time signed, server time in Other Data
			rt.TimeSigned = t.TimeSigned
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(now))
			rt.OtherLen, rt.OtherData = 6, hex.EncodeToString(b[2:])
		}
		m.Extra = append(m.Extra, rt)
	}
	if err := w.WriteMsg(m); err != nil {
		log.Errorf("writing update response: %v", err)
	}
	return dns.RcodeSuccess, nil
}

// tsigMisplaced reports whether a TSIG record appears before the last additional record.
func tsigMisplaced(r *dns.Msg) bool {
	for i, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeTSIG && i != len(r.Extra)-1 {
			return true
		}
	}
	return false
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

// rrAddr returns the address of an A or AAAA record.
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		ip, ok := netip.AddrFromSlice(rr.A.To4())
		return ip, ok && rr.A.To4() != nil
	case *dns.AAAA:
		if len(rr.AAAA) != net.IPv6len {
			return netip.Addr{}, false
		}
		ip, ok := netip.AddrFromSlice(rr.AAAA)
		return ip, ok
	}
	return netip.Addr{}, false
}

// addrOf returns the address of a peer and whether it is a TCP peer.
func addrOf(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), true
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, a.Network() == "tcp"
	}
	return ap.Addr().Unmap(), a.Network() == "tcp"
}

// joinAddrs lists addresses for a log line.
func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, ip := range addrs {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}
