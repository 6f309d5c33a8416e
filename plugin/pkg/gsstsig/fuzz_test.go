package gsstsig

import (
	"encoding/hex"
	"testing"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/miekg/dns"
)

// FuzzTKEYAnswer feeds hostile DNS answers to the TKEY parsing and the token decoding behind it.
func FuzzTKEYAnswer(f *testing.F) {
	for _, tok := range [][]byte{{0xa1, 0x00}, krb5Token(0x0200, []byte{0x6f, 0x00}), krb5Token(0x0300, []byte{0x7e, 0x00})} {
		b, _ := tkeyAnswer(tok).Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		tok, err := ParseTKEYAnswer(m, testKeyName)
		if err != nil {
			return
		}
		if len(tok) == 0 || len(tok) > maxToken {
			t.Fatalf("accepted a token of %d bytes", len(tok))
		}
		ParseAcceptorToken(tok)
	})
}

// FuzzAcceptorToken feeds hostile context tokens (SPNEGO, Kerberos GSS-API framing, AP-REP,
// KRB-ERROR) to the decoder.
func FuzzAcceptorToken(f *testing.F) {
	f.Add([]byte{0xa1, 0x00})
	f.Add(krb5Token(0x0200, []byte{0x6f, 0x03, 0x30, 0x01, 0x00}))
	f.Add(krb5Token(0x0300, []byte{0x7e, 0x03, 0x30, 0x01, 0x00}))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := ParseAcceptorToken(b)
		if err == nil && out.apRep == nil && out.krbErr == nil {
			t.Fatal("accepted a token carrying neither an AP-REP nor a KRB-ERROR")
		}
	})
}

// FuzzGSSTSIGVerify feeds hostile gss-tsig MACs and digests to the verification: it never
// panics, and accepts only the acceptor's MIC over the exact digest.
func FuzzGSSTSIGVerify(f *testing.F) {
	c := testContext()
	good := acceptorMIC(f, c, []byte("digest"), gssapi.MICTokenFlagSentByAcceptor|gssapi.MICTokenFlagAcceptorSubkey, keyusage.GSSAPI_ACCEPTOR_SIGN)
	f.Add([]byte("digest"), good)
	f.Add([]byte{}, []byte{4, 4})
	f.Fuzz(func(t *testing.T, msg, mac []byte) {
		ts := &dns.TSIG{Hdr: dns.RR_Header{Name: testKeyName}, Algorithm: Algorithm, MAC: hex.EncodeToString(mac)}
		if c.Verify(msg, ts) == nil && (string(msg) != "digest") {
			t.Fatalf("accepted a MAC over %q", msg)
		}
	})
}
