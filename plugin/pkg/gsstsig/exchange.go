package gsstsig

import (
	"context"
	"errors"
	"time"

	"github.com/miekg/dns"
)

// Exchange signs m with the context, sends it to addr over TCP and returns the answer. An
// answer claiming success counts only once its gss-tsig signature verifies; an error answer
// is returned as it is, signed or not (a server that could not check the request, or Samba
// refusing, does not sign it), and never taken for success.
func (c *Context) Exchange(ctx context.Context, m *dns.Msg, addr string, timeout time.Duration) (*dns.Msg, error) {
	m.SetTsig(c.KeyName, Algorithm, 300, time.Now().Unix())
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, _, err := (&dns.Client{Net: "tcp", Timeout: timeout, TsigProvider: c}).ExchangeContext(ctx, m, addr)
	if r != nil && r.Id == m.Id && (errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrKeyAlg)) {
		if r.Rcode == dns.RcodeSuccess {
			return nil, fail(ReasonBadServer, err, "the answer from %s is not signed by the GSS-TSIG context (forged or altered on the way)", addr)
		}
		// A refusal whose signature does not verify (Samba 4.17 returns the request's own
		// TSIG record on REFUSED) changes nothing and is reported as the failure it is.
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	t := r.IsTsig()
	switch {
	case t != nil && t.Error != 0:
		return r, tsigError(t.Error)
	case t == nil && r.Rcode == dns.RcodeSuccess:
		return nil, fail(ReasonBadServer, nil, "the answer from %s claims success but is not signed (GSS-TSIG answers must be)", addr)
	}
	return r, nil
}

// tsigError explains the error field of the server's TSIG record.
func tsigError(code uint16) *Error {
	switch code {
	case dns.RcodeBadTime:
		return fail(ReasonClockSkew, nil, "the DNS server says the clocks differ (TSIG error BADTIME): set this machine's time (NTP)")
	case dns.RcodeBadKey:
		return fail(ReasonContextLost, nil, "the DNS server no longer knows the GSS-TSIG context (TSIG error BADKEY): try again")
	case dns.RcodeBadSig:
		return fail(ReasonBadServer, nil, "the DNS server could not verify the GSS-TSIG signature (TSIG error BADSIG)")
	}
	return fail(ReasonBadServer, nil, "the DNS server answered with TSIG error %d", code)
}
