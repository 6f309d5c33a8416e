package vlmcs

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"

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
		return v.finishUpdate(ctx, w, r, "", nil, refuse(dns.RcodeFormatError, reasonFormat, "zone section holds %d records", len(r.Question)), 0, false)
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
		return v.finishUpdate(ctx, w, r, "", nil, refuse(dns.RcodeNotZone, reasonNotZone, "zone %s is not a vlmcs publish zone", q.Name), 0, false)
	}
	if !v.plainDNS {
		return v.finishUpdate(ctx, w, r, p.zone, p, refuse(dns.RcodeRefused, reasonTransport, "updates are accepted over plain DNS (UDP, TCP) only"), 0, false)
	}
	if q.Qtype != dns.TypeSOA {
		return v.finishUpdate(ctx, w, r, p.zone, p, refuse(dns.RcodeFormatError, reasonFormat, "zone section type is %s, not SOA", dns.TypeToString[q.Qtype]), 0, false)
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
	return v.finishUpdate(ctx, w, r, p.zone, p, vd, lease, ul)
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
	case replayUnstored:
		log.Errorf("replay_file: %v", v.replay.lastErr()) // the operator's to fix; not sent to the client
		return refuse(dns.RcodeRefused, reasonReplayFull, "the replay memory could not be written: retry later")
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

// finishUpdate counts, logs refusals, and writes the response (with the granted lease and a
// TSIG record when the request was signed).
func (v *Vlmcs) finishUpdate(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, zone string, p *pool, vd *verdict, lease time.Duration, ul bool) (int, error) {
	label := zone
	if label == "" {
		label = v.updateZoneLabel(r)
	}
	updatesTotal.WithLabelValues(v.serverOf(ctx), label, dns.RcodeToString[vd.rcode], vd.reason).Inc()
	if vd.rcode != dns.RcodeSuccess {
		src := "?"
		if a := w.RemoteAddr(); a != nil {
			src = a.String()
		}
		key, class := "-", "update unsigned "+vd.reason
		if t := r.IsTsig(); t != nil {
			key, class = t.Hdr.Name, "update signed "+vd.reason
		}
		v.logger.Classf(class, "refused update from %s key %s zone %s: %s %s: %s", src, key, zone, dns.RcodeToString[vd.rcode], vd.reason, vd.detail)
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

// updateZoneLabel returns the metrics zone of an update that names no publish zone: the
// closest zone of vlmcs holding the zone section's name, else the closest zone of the server
// block (CoreDNS routed the update to this block by that name, so one holds it), else the root.
// The name itself is the sender's choice and never a label.
func (v *Vlmcs) updateZoneLabel(r *dns.Msg) string {
	if len(r.Question) == 0 {
		return "."
	}
	name := r.Question[0].Name
	if z := plugin.Zones(v.cfg.zones).Matches(name); z != "" {
		return z
	}
	if z := plugin.Zones(v.cfg.block).Matches(name); z != "" {
		return z
	}
	return "."
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
