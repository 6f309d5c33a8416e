package gsstsig

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/miekg/dns"
)

// Context is an established GSS-TSIG security context with one DNS server. It signs requests
// and verifies answers as a dns.TsigProvider; it is safe for concurrent use.
type Context struct {
	KeyName string // the TKEY/TSIG key name, "<n>.sig-<server>."
	SPN     string // the service principal the context is with, "DNS/dc1.corp.example"

	key       types.EncryptionKey // the acceptor subkey, else the ticket's session key
	acceptSub bool                // key is the acceptor's subkey (MIC flag 0x04)

	mu     sync.Mutex
	seq    uint64   // the next initiator sequence number
	recent [][]byte // the last MACs Generate made, for Samba's form of the answer digest
}

// keepMACs is how many of its own MACs a context remembers (one per exchange in flight).
const keepMACs = 16

// Negotiate sets up a context with the DNS server at addr (host:port, over TCP) whose host
// name is serverName (the SPN is DNS/serverName), with cl's Kerberos identity.
func Negotiate(ctx context.Context, cl *client.Client, addr, serverName string, timeout time.Duration) (*Context, error) {
	serverName = strings.TrimSuffix(serverName, ".")
	spn := "DNS/" + serverName
	tkt, sessKey, err := cl.GetServiceTicket(spn)
	if err != nil {
		return nil, kerberosError(err, spn)
	}
	auth, err := types.NewAuthenticator(cl.Credentials.Domain(), cl.Credentials.CName())
	if err != nil {
		return nil, fail(ReasonOther, err, "building the Kerberos authenticator")
	}
	auth.Cksum = types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: authenticatorChecksum(gssapi.ContextFlagMutual | gssapi.ContextFlagInteg)}
	apReq, err := messages.NewAPReq(tkt, sessKey, auth)
	if err != nil {
		return nil, fail(ReasonOther, err, "building the Kerberos AP-REQ")
	}
	types.SetFlag(&apReq.APOptions, flags.APOptionMutualRequired)
	apBytes, err := apReq.Marshal()
	if err != nil {
		return nil, fail(ReasonOther, err, "encoding the Kerberos AP-REQ")
	}
	krbTok := krb5Token(0x0100, apBytes)
	init := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes:      []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()},
		MechTokenBytes: krbTok,
	}}
	tok, err := init.Marshal()
	if err != nil {
		return nil, fail(ReasonOther, err, "encoding the SPNEGO token")
	}

	var rnd [4]byte
	rand.Read(rnd[:])
	c := &Context{KeyName: KeyName(binary.BigEndian.Uint32(rnd[:])&0x7fffffff, serverName), SPN: spn,
		seq: uint64(auth.SeqNumber)}
	q := NewTKEYQuery(c.KeyName, tok, time.Now())
	raw, r, err := exchangeRaw(ctx, q, addr, timeout)
	if err != nil {
		return nil, fail(ReasonOther, err, "GSS-TSIG negotiation (TKEY) with %s", addr)
	}
	if r.Id != q.Id {
		return nil, fail(ReasonBadServer, nil, "the TKEY answer's ID %d is not the query's %d", r.Id, q.Id)
	}
	srvTok, err := ParseTKEYAnswer(r, c.KeyName)
	if err != nil {
		return nil, err
	}
	rep, err := ParseAcceptorToken(srvTok)
	if err != nil {
		return nil, err
	}
	if rep.krbErr != nil {
		return nil, krbError(*rep.krbErr, spn)
	}
	if err := c.finish(rep.apRep, sessKey, auth); err != nil {
		return nil, err
	}
	// The TKEY answer is signed with the new context: check it.
	if r.IsTsig() == nil {
		return nil, fail(ReasonBadServer, nil, "the server's TKEY answer is not signed (GSS-TSIG answers must be)")
	}
	if err := dns.TsigVerifyWithProvider(raw, c, "", false); err != nil {
		return nil, fail(ReasonBadServer, err, "the signature of the server's TKEY answer does not verify")
	}
	return c, nil
}

// exchangeRaw sends q over TCP and returns the answer as received and decoded, its TSIG
// unchecked (the context to check it with exists only once the answer is read).
func exchangeRaw(ctx context.Context, q *dns.Msg, addr string, timeout time.Duration) ([]byte, *dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&dns.Client{Net: "tcp", Timeout: timeout}).DialContext(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := conn.WriteMsg(q); err != nil {
		return nil, nil, err
	}
	buf := make([]byte, dns.MaxMsgSize)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		return nil, nil, fmt.Errorf("malformed TKEY answer: %v", err)
	}
	return buf[:n], r, nil
}

// finish checks the acceptor's AP-REP (mutual authentication) and takes its subkey.
func (c *Context) finish(apRepBytes []byte, sessKey types.EncryptionKey, auth types.Authenticator) error {
	var rep messages.APRep
	if err := guard(func() error { return rep.Unmarshal(apRepBytes) }); err != nil {
		return fail(ReasonBadServer, err, "the server's AP-REP")
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, sessKey, keyusage.AP_REP_ENCPART)
	if err != nil {
		return fail(ReasonBadServer, err, "the server's AP-REP does not decrypt with the ticket's session key (not the service the ticket is for)")
	}
	var part messages.EncAPRepPart
	if err := guard(func() error { return part.Unmarshal(plain) }); err != nil {
		return fail(ReasonBadServer, err, "the server's AP-REP")
	}
	if part.CTime.Unix() != auth.CTime.Unix() || part.Cusec != auth.Cusec {
		return fail(ReasonBadServer, nil, "the server's AP-REP does not answer this authenticator (mutual authentication failed)")
	}
	c.key = sessKey
	if part.Subkey.KeyType != 0 && len(part.Subkey.KeyValue) > 0 {
		c.key, c.acceptSub = part.Subkey, true
	}
	if _, err := crypto.GetEtype(c.key.KeyType); err != nil {
		return fail(ReasonBadServer, err, "the context key's encryption type %d", c.key.KeyType)
	}
	return nil
}

// authenticatorChecksum is the GSS-API checksum of RFC 4121 4.1.1 (no channel bindings).
func authenticatorChecksum(ctxFlags uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:4], 16)
	binary.LittleEndian.PutUint32(b[20:24], ctxFlags)
	return b
}

// krb5Token wraps a Kerberos message in the GSS-API initial context token framing
// (RFC 2743 3.1, RFC 4121 4.1) with its two-byte token ID.
func krb5Token(tokID uint16, msg []byte) []byte {
	oid, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
	b := append(oid, byte(tokID>>8), byte(tokID))
	b = append(b, msg...)
	return asn1tools.AddASNAppTag(b, 0)
}

// Generate signs: the MAC of a gss-tsig TSIG record is an initiator MIC token over msg, the
// TSIG digest input miekg/dns builds.
func (c *Context) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	if !strings.EqualFold(t.Algorithm, Algorithm) || !strings.EqualFold(t.Hdr.Name, c.KeyName) {
		return nil, dns.ErrKeyAlg
	}
	c.mu.Lock()
	seq := c.seq
	c.seq++
	c.mu.Unlock()
	mt := gssapi.MICToken{SndSeqNum: seq, Payload: msg}
	if c.acceptSub {
		mt.Flags = gssapi.MICTokenFlagAcceptorSubkey
	}
	if err := mt.SetChecksum(c.key, keyusage.GSSAPI_INITIATOR_SIGN); err != nil {
		return nil, err
	}
	mac, err := mt.Marshal()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.recent = append(c.recent, mac)
	if len(c.recent) > keepMACs {
		c.recent = c.recent[1:]
	}
	c.mu.Unlock()
	return mac, nil
}

// Verify checks an answer's gss-tsig MAC: an acceptor MIC token over msg.
func (c *Context) Verify(msg []byte, t *dns.TSIG) error {
	if !strings.EqualFold(t.Algorithm, Algorithm) || !strings.EqualFold(t.Hdr.Name, c.KeyName) {
		return dns.ErrKeyAlg
	}
	mac, err := decodeMAC(t.MAC)
	if err != nil {
		return fmt.Errorf("%w: %v", dns.ErrSig, err)
	}
	err = c.VerifyMIC(msg, mac)
	if err == nil || !errors.Is(err, dns.ErrSig) {
		return err
	}
	// Samba's DNS server (4.17) signs an answer over the request's MAC without the MAC's
	// two-byte length that RFC 8945 4.3.3 puts before it. The digest still covers the whole
	// answer and the MAC this context made for the request, so it is accepted in that form,
	// and only when the request MAC is one of ours.
	if len(msg) >= 2 {
		n := int(binary.BigEndian.Uint16(msg[:2]))
		if 2+n <= len(msg) && c.ownMAC(msg[2:2+n]) {
			return c.VerifyMIC(msg[2:], mac)
		}
	}
	return err
}

// ownMAC reports whether mac is one this context generated recently.
func (c *Context) ownMAC(mac []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.recent {
		if bytes.Equal(m, mac) {
			return true
		}
	}
	return false
}

// VerifyMIC checks that mic is the acceptor's MIC token over msg under this context. Every
// failure wraps dns.ErrSig.
func (c *Context) VerifyMIC(msg, mic []byte) error {
	mt, err := ParseMIC(mic)
	if err != nil {
		return fmt.Errorf("%w: %v", dns.ErrSig, err)
	}
	if (mt.Flags&gssapi.MICTokenFlagAcceptorSubkey != 0) != c.acceptSub {
		return fmt.Errorf("%w: gss-tsig: the MIC token's acceptor-subkey flag does not match the context", dns.ErrSig)
	}
	mt.Payload = msg
	if ok, err := mt.Verify(c.key, keyusage.GSSAPI_ACCEPTOR_SIGN); !ok || err != nil {
		return dns.ErrSig
	}
	return nil
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

// ParseMIC decodes an RFC 4121 MIC token: 16 header bytes (04 04, flags, five 0xff, sequence
// number) and a checksum of 12 to 64 bytes.
func ParseMIC(b []byte) (*gssapi.MICToken, error) {
	if len(b) < 16+12 || len(b) > 16+64 {
		return nil, fmt.Errorf("gss-tsig: MIC token of %d bytes (28 to 80 expected)", len(b))
	}
	var mt gssapi.MICToken
	if err := mt.Unmarshal(b, true); err != nil {
		return nil, fmt.Errorf("gss-tsig: MIC token: %v", err)
	}
	if mt.Flags&^(gssapi.MICTokenFlagSentByAcceptor|gssapi.MICTokenFlagAcceptorSubkey) != 0 {
		return nil, fmt.Errorf("gss-tsig: MIC token flags %#02x (sealed or unknown bits set)", mt.Flags)
	}
	return &mt, nil
}

// decodeMAC decodes the hex MAC of a TSIG record as miekg/dns holds it.
func decodeMAC(s string) ([]byte, error) {
	if len(s) > 2*(16+64) {
		return nil, fmt.Errorf("gss-tsig: MAC of %d bytes is too long for a MIC token", len(s)/2)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gss-tsig: MAC is not hex: %v", err)
	}
	return b, nil
}

// guard runs a decoder of the Kerberos library, turning a panic on hostile input into an error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed (decoder panicked: %v)", r)
		}
	}()
	return f()
}
