package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
	"github.com/kmsdns/kmsdns/plugin/pkg/refusal"
)

// ErrUnsignedResponse reports a NOERROR answer without TSIG to a signed
// update (RFC 8945 asks the client to treat it as a failure).
var ErrUnsignedResponse = errors.New("answer to a signed update is not signed")

// RcodeError is a DNS server's refusal of an update: its response code,
// the TSIG error it reported (BADSIG, BADKEY, BADTIME) if any, and the
// text of an Extended DNS Error option if it sent one.
type RcodeError struct {
	Server    string
	Rcode     int
	TSIGError uint16
	// Reason is the Extended DNS Error's text (or its code's name);
	// Code is the refusal reason it names (plugin/pkg/refusal), "" without
	// an EDE.
	Reason string
	Code   string
}

// Label names the refusal for a metric label: the reason code of the
// server's Extended DNS Error, else the response code in lower case; a
// bounded set whatever the server sends.
func (e *RcodeError) Label() string {
	if e.Code != "" {
		return e.Code
	}
	switch e.Rcode {
	case dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError, dns.RcodeNotImplemented,
		dns.RcodeRefused, dns.RcodeYXDomain, dns.RcodeYXRrset, dns.RcodeNXRrset, dns.RcodeNotAuth, dns.RcodeNotZone:
		return strings.ToLower(dns.RcodeToString[e.Rcode])
	}
	return refusal.Other
}

// Error says which server refused and how.
func (e *RcodeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s answered %s", e.Server, rcodeName(e.Rcode))
	if e.TSIGError != 0 {
		fmt.Fprintf(&b, " (TSIG %s)", rcodeName(int(e.TSIGError)))
		if e.TSIGError == dns.RcodeBadTime {
			fmt.Fprintf(&b, ": this host's clock and the server's differ by more than %d s", Fudge)
		}
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	return b.String()
}

func rcodeName(rc int) string {
	if n, ok := dns.RcodeToString[rc]; ok {
		return n
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// reply is what a successful exchange learned.
type reply struct {
	granted uint32 // lease granted in seconds; 0 when the answer had none
	net     string // transport that carried the final answer
}

// exchange sends the message build returns to server over UDP, and again
// over TCP when the UDP answer is truncated (or over TCP alone when so
// configured), and checks the answer. Each attempt carries a fresh ID, so
// a signed retry has its own MAC.
func (s *settings) exchange(ctx context.Context, server string, build func() *dns.Msg) (reply, error) {
	if s.signWith != nil {
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		r, err := s.signWith(ctx, server, build())
		if err != nil {
			return reply{}, err
		}
		return s.checkAnswer(server, "tcp", r)
	}
	src, explicit := s.sourceFor(server)
	rep, err := dnsexchange.Exchange(ctx, server, build(), dnsexchange.Options{
		Timeout: s.timeout,
		TCPOnly: s.tcpOnly,
		Key:     s.key,
		Source:  src,
		// The published address may not be this host's (NAT, a VIP held
		// elsewhere), or the server's name has no address of its family:
		// then let the system choose.
		SourceFallback: !explicit,
	})
	if errors.Is(err, dnsexchange.ErrTSIG) && rep.Msg.Rcode != dns.RcodeSuccess {
		// A refusal (BADSIG, BADKEY: the server cannot sign) is still the
		// server's verdict; a success is not to be believed.
		return reply{}, s.rcodeError(server, rep.Msg)
	}
	if err != nil {
		return reply{}, err
	}
	return s.checkAnswer(server, rep.Net, rep.Msg)
}

// sourceFor returns the local address to send to server from, and whether
// it was configured (rather than picked from the published addresses).
func (s *settings) sourceFor(server string) (netip.Addr, bool) {
	if s.source.IsValid() {
		return s.source, true
	}
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return netip.Addr{}, false
	}
	dst, err := netip.ParseAddr(host)
	if err != nil {
		// A host name: the dialer will pick its addresses of this family.
		if len(s.addrs) > 0 {
			return s.addrs[0], false
		}
		return netip.Addr{}, false
	}
	for _, a := range s.addrs {
		if a.Is4() == dst.Unmap().Is4() {
			return a, false
		}
	}
	return netip.Addr{}, false
}

// checkAnswer accepts a NOERROR UPDATE response (signed, if the update
// was) and reads the granted lease from it.
func (s *settings) checkAnswer(server, network string, r *dns.Msg) (reply, error) {
	if !r.Response {
		return reply{}, fmt.Errorf("%s over %s: answer does not have the QR bit set", server, network)
	}
	if r.Opcode != dns.OpcodeUpdate {
		return reply{}, fmt.Errorf("%s over %s: answer has opcode %s, want UPDATE", server, network, dns.OpcodeToString[r.Opcode])
	}
	if r.Rcode != dns.RcodeSuccess {
		return reply{}, s.rcodeError(server, r)
	}
	if s.key != nil && r.IsTsig() == nil && !s.unsigned {
		return reply{}, fmt.Errorf("%s over %s: %w", server, network, ErrUnsignedResponse)
	}
	out := reply{net: network}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ul, ok := o.(*dns.EDNS0_UL); ok {
				out.granted = ul.Lease
			}
		}
	}
	return out, nil
}

// maxReason bounds the Extended DNS Error text kept from an answer.
const maxReason = 256

func (s *settings) rcodeError(server string, r *dns.Msg) *RcodeError {
	e := &RcodeError{Server: server, Rcode: r.Rcode}
	if t := r.IsTsig(); t != nil {
		e.TSIGError = t.Error
	}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ede, ok := o.(*dns.EDNS0_EDE); ok {
				e.Reason = refusal.Clean(ede.ExtraText)
				e.Code = refusal.Reason(e.Reason)
				if e.Reason == "" {
					e.Reason = dns.ExtendedErrorCodeToString[ede.InfoCode]
				}
			}
		}
	}
	return e
}
