package gsstsig

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/miekg/dns"
)

const testKeyName = "123.sig-dc1.corp.example."

// tkeyAnswer is a well-formed answer to a TKEY query carrying token.
func tkeyAnswer(token []byte) *dns.Msg {
	q := NewTKEYQuery(testKeyName, []byte{1}, time.Unix(1e9, 0))
	r := new(dns.Msg)
	r.SetReply(q)
	tk := *q.Extra[0].(*dns.TKEY)
	tk.Key, tk.KeySize = hex.EncodeToString(token), uint16(len(token))
	r.Answer = []dns.RR{&tk}
	return r
}

func TestParseTKEYAnswer(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*dns.Msg)
		want   string // error text; "" for success
		reason Reason
	}{
		{"good", func(*dns.Msg) {}, "", 0},
		{"not a response", func(m *dns.Msg) { m.Response = false }, "not a response", ReasonBadServer},
		{"refused", func(m *dns.Msg) { m.Rcode = dns.RcodeRefused }, "with REFUSED", ReasonBadServer},
		{"no TKEY", func(m *dns.Msg) { m.Answer = nil }, "no TKEY record", ReasonBadServer},
		{"two TKEYs", func(m *dns.Msg) { m.Answer = append(m.Answer, m.Answer[0]) }, "more than one", ReasonBadServer},
		{"other key", func(m *dns.Msg) { m.Answer[0].Header().Name = "9.sig-x." }, "not the", ReasonBadServer},
		{"other algorithm", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Algorithm = "hmac-sha256." }, "not gss-tsig", ReasonBadServer},
		{"BADKEY", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Error = dns.RcodeBadKey }, "did not accept the Kerberos ticket", ReasonUnknownSPN},
		{"BADTIME", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Error = dns.RcodeBadTime }, "clocks differ", ReasonClockSkew},
		{"mode 2", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Mode = 2 }, "mode 2", ReasonBadServer},
		{"empty token", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Key = "" }, "no context token", ReasonBadServer},
		{"oversized token", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Key = strings.Repeat("00", maxToken+1) }, "over the", ReasonBadServer},
		{"not hex", func(m *dns.Msg) { m.Answer[0].(*dns.TKEY).Key = "zz" }, "key data", ReasonBadServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tkeyAnswer([]byte{0xa1, 0x00})
			tt.edit(r)
			tok, err := ParseTKEYAnswer(r, testKeyName)
			if tt.want == "" {
				if err != nil || len(tok) != 2 {
					t.Fatalf("got %x, %v; want the token", tok, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.want) || e.Reason != tt.reason {
				t.Fatalf("err %v; want an *Error of reason %d saying %q", err, tt.reason, tt.want)
			}
		})
	}
}

func TestParseAcceptorTokenRefusesMalformed(t *testing.T) {
	tests := []struct {
		name string
		tok  []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"oversized", make([]byte, maxToken+1), "bytes (1 to"},
		{"truncated SPNEGO", []byte{0xa1, 0x05, 0x30}, "SPNEGO answer"},
		{"not GSS-API", []byte{0x30, 0x00}, "not a GSS-API token"},
		{"other mechanism", krb5TokenWithOID([]byte{0x06, 0x03, 0x2a, 0x03, 0x04}, 0x0200), "not a Kerberos 5 token"},
		{"unknown token ID", krb5Token(0x0404, []byte{0x30, 0x00}), "not an AP-REP or KRB-ERROR"},
		{"truncated Kerberos token", krb5Token(0x0200, nil)[:4], "not a GSS-API token"},
		{"KRB-ERROR garbage", krb5Token(0x0300, []byte{0x7e, 0x01, 0x00}), "Kerberos error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAcceptorToken(tt.tok)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v; want one saying %q", err, tt.want)
			}
		})
	}
	// An AP-REP passes through to the decryption step.
	out, err := ParseAcceptorToken(krb5Token(0x0200, []byte{0x6f, 0x00}))
	if err != nil || len(out.apRep) != 2 {
		t.Fatalf("AP-REP token: %+v, %v", out, err)
	}
}

// krb5TokenWithOID is krb5Token with another mechanism OID (DER).
func krb5TokenWithOID(oid []byte, id uint16) []byte {
	b := append(append([]byte{}, oid...), byte(id>>8), byte(id), 0x30, 0x00)
	return append([]byte{0x60, byte(len(b))}, b...)
}

// testContext is a context with a fixed AES key, as after negotiation with an acceptor subkey.
func testContext() *Context {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	for i := range key.KeyValue {
		key.KeyValue[i] = byte(i)
	}
	return &Context{KeyName: testKeyName, key: key, acceptSub: true, seq: 7}
}

// acceptorMIC is what the acceptor would send over msg.
func acceptorMIC(t testing.TB, c *Context, msg []byte, flags byte, usage uint32) []byte {
	t.Helper()
	mt := gssapi.MICToken{Flags: flags, SndSeqNum: 99, Payload: msg}
	if err := mt.SetChecksum(c.key, usage); err != nil {
		t.Fatal(err)
	}
	b, err := mt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyMIC(t *testing.T) {
	c := testContext()
	msg := []byte("the TSIG digest input")
	good := acceptorMIC(t, c, msg, gssapi.MICTokenFlagSentByAcceptor|gssapi.MICTokenFlagAcceptorSubkey, keyusage.GSSAPI_ACCEPTOR_SIGN)
	if err := c.VerifyMIC(msg, good); err != nil {
		t.Fatalf("the acceptor's MIC: %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
		mic  []byte
	}{
		{"altered message", []byte("the TSIG digest inpuT"), good},
		{"altered checksum", msg, append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1)},
		{"reflected initiator MIC", msg, acceptorMIC(t, c, msg, gssapi.MICTokenFlagAcceptorSubkey, keyusage.GSSAPI_INITIATOR_SIGN)},
		{"initiator key usage", msg, acceptorMIC(t, c, msg, gssapi.MICTokenFlagSentByAcceptor|gssapi.MICTokenFlagAcceptorSubkey, keyusage.GSSAPI_INITIATOR_SIGN)},
		{"subkey flag missing", msg, acceptorMIC(t, c, msg, gssapi.MICTokenFlagSentByAcceptor, keyusage.GSSAPI_ACCEPTOR_SIGN)},
		{"sealed flag", msg, acceptorMIC(t, c, msg, 0x07, keyusage.GSSAPI_ACCEPTOR_SIGN)},
		{"truncated", msg, good[:20]},
		{"oversized", msg, append(append([]byte{}, good...), make([]byte, 64)...)},
	}
	for _, tt := range tests {
		if err := c.VerifyMIC(tt.msg, tt.mic); !errors.Is(err, dns.ErrSig) {
			t.Errorf("%s: %v, want dns.ErrSig", tt.name, err)
		}
	}
}

// TestGenerateThenAcceptorView: the initiator's MIC carries the subkey flag and consecutive
// sequence numbers, and checks with the initiator's key usage.
func TestGenerate(t *testing.T) {
	c := testContext()
	ts := &dns.TSIG{Hdr: dns.RR_Header{Name: testKeyName}, Algorithm: Algorithm}
	for i := range 2 {
		b, err := c.Generate([]byte("m"), ts)
		if err != nil {
			t.Fatal(err)
		}
		var mt gssapi.MICToken
		if err := mt.Unmarshal(b, false); err != nil {
			t.Fatal(err)
		}
		mt.Payload = []byte("m")
		if ok, err := mt.Verify(c.key, keyusage.GSSAPI_INITIATOR_SIGN); !ok || mt.Flags != gssapi.MICTokenFlagAcceptorSubkey || mt.SndSeqNum != uint64(7+i) {
			t.Fatalf("MIC %d: ok %v (%v), flags %#x, seq %d", i, ok, err, mt.Flags, mt.SndSeqNum)
		}
	}
	if _, err := c.Generate([]byte("m"), &dns.TSIG{Hdr: dns.RR_Header{Name: testKeyName}, Algorithm: "hmac-sha256."}); err == nil {
		t.Error("Generate signed for another algorithm")
	}
}

// TestVerifySambaDigest: an answer signed over the request MAC without its length verifies
// only when that MAC is one this context made.
func TestVerifySambaDigest(t *testing.T) {
	c := testContext()
	ts := &dns.TSIG{Hdr: dns.RR_Header{Name: testKeyName}, Algorithm: Algorithm}
	reqMAC, err := c.Generate([]byte("request"), ts)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("answer and TSIG variables")
	samba := append(append([]byte{}, reqMAC...), body...)
	mic := acceptorMIC(t, c, samba, gssapi.MICTokenFlagSentByAcceptor|gssapi.MICTokenFlagAcceptorSubkey, keyusage.GSSAPI_ACCEPTOR_SIGN)
	ts.MAC = hex.EncodeToString(mic)
	rfc := binary.BigEndian.AppendUint16(nil, uint16(len(reqMAC)))
	rfc = append(append(rfc, reqMAC...), body...)
	if err := c.Verify(rfc, ts); err != nil {
		t.Errorf("Samba's digest over our own request MAC: %v", err)
	}
	other := testContext()
	if err := other.Verify(rfc, ts); !errors.Is(err, dns.ErrSig) {
		t.Errorf("Samba's digest over a MAC the context did not make: %v, want dns.ErrSig", err)
	}
}

// TestKerberosErrorsInWords: the Kerberos errors an operator can act on say what to do.
func TestKerberosErrorsInWords(t *testing.T) {
	tests := []struct {
		code   int32
		reason Reason
		want   string
	}{
		{errorcode.KRB_AP_ERR_SKEW, ReasonClockSkew, "clocks of this machine and the domain controller differ"},
		{errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, ReasonUnknownSPN, "knows no service principal DNS/dc9.corp.example"},
		{errorcode.KRB_AP_ERR_TKT_EXPIRED, ReasonNoCredential, "run kinit again"},
		{errorcode.KRB_AP_ERR_MODIFIED, ReasonUnknownSPN, "not that service"},
		{errorcode.KDC_ERR_BADOPTION, ReasonOther, "Kerberos error 13"},
	}
	for _, tt := range tests {
		e := krbError(messages.KRBError{ErrorCode: tt.code}, "DNS/dc9.corp.example")
		if e.Reason != tt.reason || !strings.Contains(e.Error(), tt.want) {
			t.Errorf("code %d: reason %d %q; want reason %d saying %q", tt.code, e.Reason, e, tt.reason, tt.want)
		}
	}
	// gokrb5 reports some as text only.
	e := kerberosError(errors.New("[Root cause: KDC_Error] KDC_Error: TGS Exchange Error: kerberos error response from KDC: KRB Error: (7) KDC_ERR_S_PRINCIPAL_UNKNOWN Server not found in Kerberos database"), "DNS/dc9.corp.example")
	if e.Reason != ReasonUnknownSPN {
		t.Errorf("text KDC_ERR_S_PRINCIPAL_UNKNOWN: reason %d (%v)", e.Reason, e)
	}
}
