package gsstsig

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
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

// guard runs a decoder of the Kerberos library, turning a panic on hostile input into an error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed (decoder panicked: %v)", r)
		}
	}()
	return f()
}
