package gsstsig

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Algorithm is the TSIG and TKEY algorithm name of GSS-TSIG.
const Algorithm = "gss-tsig."

// tkeyModeGSSAPI is TKEY mode 3, GSS-API negotiation (RFC 2930).
const tkeyModeGSSAPI = 3

// maxToken bounds a context token carried by TKEY (an AP-REP is a few hundred bytes; a
// KRB-ERROR less): anything larger is refused before it is decoded.
const maxToken = 16 << 10

// NewTKEYQuery builds the TKEY query that opens a GSS-API context named keyName: the question
// keyName ANY TKEY and, as nsupdate and Windows send it, a TKEY record in the additional
// section carrying token.
func NewTKEYQuery(keyName string, token []byte, now time.Time) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(keyName), dns.TypeTKEY)
	m.Question[0].Qclass = dns.ClassANY
	m.RecursionDesired = false
	t := uint32(now.Unix())
	m.Extra = append(m.Extra, &dns.TKEY{
		Hdr:       dns.RR_Header{Name: dns.Fqdn(keyName), Rrtype: dns.TypeTKEY, Class: dns.ClassANY},
		Algorithm: Algorithm,
		Inception: t, Expiration: t + 86400,
		Mode:    tkeyModeGSSAPI,
		KeySize: uint16(len(token)),
		Key:     hex.EncodeToString(token),
	})
	return m
}

// ParseTKEYAnswer checks a server's answer to NewTKEYQuery for keyName and returns the
// server's context token. It refuses an answer that is not a NOERROR response carrying exactly
// one TKEY record for keyName, algorithm gss-tsig, mode 3, with no TKEY error and a token of
// at most 16 KiB.
func ParseTKEYAnswer(r *dns.Msg, keyName string) ([]byte, error) {
	if !r.Response {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY answer is not a response")
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fail(ReasonBadServer, nil, "the server answered the GSS-TSIG negotiation (TKEY) with %s: it does not take GSS-TSIG", dns.RcodeToString[r.Rcode])
	}
	var tk *dns.TKEY
	for _, rr := range r.Answer {
		t, ok := rr.(*dns.TKEY)
		if !ok {
			continue
		}
		if tk != nil {
			return nil, fail(ReasonBadServer, nil, "the server's TKEY answer holds more than one TKEY record")
		}
		tk = t
	}
	if tk == nil {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY answer holds no TKEY record")
	}
	if !strings.EqualFold(tk.Hdr.Name, dns.Fqdn(keyName)) {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY record is for key %q, not the %q asked for", tk.Hdr.Name, keyName)
	}
	if !strings.EqualFold(tk.Algorithm, Algorithm) {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY record has algorithm %q, not gss-tsig", tk.Algorithm)
	}
	if tk.Error != 0 {
		return nil, tkeyError(tk.Error)
	}
	if tk.Mode != tkeyModeGSSAPI {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY record has mode %d, not 3 (GSS-API)", tk.Mode)
	}
	if len(tk.Key) > 2*maxToken {
		return nil, fail(ReasonBadServer, nil, "the server's context token is %d bytes, over the %d allowed", len(tk.Key)/2, maxToken)
	}
	tok, err := hex.DecodeString(tk.Key)
	if err != nil {
		return nil, fail(ReasonBadServer, err, "the server's TKEY key data")
	}
	if len(tok) == 0 {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY record carries no context token")
	}
	return tok, nil
}

// tkeyError explains a TKEY error field.
func tkeyError(code uint16) *Error {
	switch code {
	case dns.RcodeBadSig:
		return fail(ReasonBadServer, nil, "the server refused the negotiation (TKEY error BADSIG)")
	case dns.RcodeBadKey:
		return fail(ReasonUnknownSPN, nil, "the DNS server did not accept the Kerberos ticket (TKEY error BADKEY): the ticket is for another service than this server (check --gss-server-name), or the clocks differ by more than 5 minutes")
	case dns.RcodeBadTime:
		return fail(ReasonClockSkew, nil, "the DNS server says the clocks differ (TKEY error BADTIME): set this machine's time (NTP)")
	}
	return fail(ReasonBadServer, nil, "the server refused the negotiation (TKEY error %d)", code)
}

// KeyName returns a fresh context name in Windows' form, "<random>.sig-<server>".
func KeyName(random uint32, server string) string {
	return fmt.Sprintf("%d.sig-%s", random, dns.Fqdn(server))
}
