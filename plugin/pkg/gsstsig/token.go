package gsstsig

import (
	"encoding/binary"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// krb5Token wraps a Kerberos message in the GSS-API initial context token framing
// (RFC 2743 3.1, RFC 4121 4.1) with its two-byte token ID.
func krb5Token(tokID uint16, msg []byte) []byte {
	oid, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
	b := append(oid, byte(tokID>>8), byte(tokID))
	b = append(b, msg...)
	return asn1tools.AddASNAppTag(b, 0)
}

// acceptorToken is what the acceptor's context token carries.
type acceptorToken struct {
	apRep  []byte             // the AP-REP, when the context is accepted
	krbErr *messages.KRBError // the Kerberos error, when it is not
}

// ParseAcceptorToken decodes the server's context token: a SPNEGO NegTokenResp (or a bare
// Kerberos GSS-API token) that accepts with an AP-REP or refuses with a KRB-ERROR.
func ParseAcceptorToken(b []byte) (acceptorToken, error) {
	var out acceptorToken
	if len(b) == 0 || len(b) > maxToken {
		return out, fail(ReasonBadServer, nil, "the server's context token is %d bytes (1 to %d allowed)", len(b), maxToken)
	}
	mech := b
	if b[0] == 0xa1 {
		var resp spnego.NegTokenResp
		if err := guard(func() error { return resp.Unmarshal(b) }); err != nil {
			return out, fail(ReasonBadServer, err, "the server's SPNEGO answer")
		}
		if spnego.NegState(resp.NegState) == spnego.NegStateReject {
			if len(resp.ResponseToken) == 0 {
				return out, fail(ReasonUnknownSPN, nil, "the DNS server rejected the Kerberos ticket (SPNEGO reject): it is not the service DNS/<its host name>, or the clocks differ")
			}
		} else if spnego.NegState(resp.NegState) != spnego.NegStateAcceptCompleted {
			return out, fail(ReasonBadServer, nil, "the server's SPNEGO answer has state %d, not accept-completed (GSS-TSIG with Kerberos takes one round)", resp.NegState)
		}
		mech = resp.ResponseToken
		if len(mech) == 0 {
			return out, fail(ReasonBadServer, nil, "the server's SPNEGO answer carries no Kerberos token (no mutual authentication)")
		}
	}
	id, msg, err := parseKRB5Token(mech)
	if err != nil {
		return out, err
	}
	switch id {
	case 0x0200:
		out.apRep = msg
	case 0x0300:
		var ke messages.KRBError
		if err := guard(func() error { return ke.Unmarshal(msg) }); err != nil {
			return out, fail(ReasonBadServer, err, "the server's Kerberos error")
		}
		out.krbErr = &ke
	default:
		return out, fail(ReasonBadServer, nil, "the server's Kerberos token has ID %#04x, not an AP-REP or KRB-ERROR", id)
	}
	return out, nil
}

// parseKRB5Token undoes krb5Token: [APPLICATION 0] { OID 1.2.840.113554.1.2.2, token ID, msg }.

func parseKRB5Token(b []byte) (uint16, []byte, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(b, &raw)
	if err != nil || len(rest) != 0 || raw.Class != asn1.ClassApplication || raw.Tag != 0 || !raw.IsCompound {
		return 0, nil, fail(ReasonBadServer, err, "the server's Kerberos token is not a GSS-API token")
	}
	var oid asn1.ObjectIdentifier
	inner, err := asn1.Unmarshal(raw.Bytes, &oid)
	if err != nil || !oid.Equal(gssapi.OIDKRB5.OID()) {
		return 0, nil, fail(ReasonBadServer, err, "the server's token is not a Kerberos 5 token (OID %v)", oid)
	}
	if len(inner) < 3 {
		return 0, nil, fail(ReasonBadServer, nil, "the server's Kerberos token is truncated")
	}
	return binary.BigEndian.Uint16(inner[:2]), inner[2:], nil
}
