package gsstsig

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/miekg/dns"
)

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
