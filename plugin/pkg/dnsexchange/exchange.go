// Package dnsexchange sends one DNS message to one server the way a stub
// resolver does: over UDP first and again over TCP when the UDP answer is
// truncated, each attempt bounded by a timeout and aborted at once when
// the context ends, optionally signed with TSIG. kms-responder uses it for
// its registrations (RFC 2136 UPDATE) and its lookups, and the audit
// helper for its queries.
//
// Sizes are bounded by the protocol: a UDP answer is read into a buffer of
// the size the query advertises in EDNS0 (512 bytes without), a TCP answer
// is at most 65535 bytes.
package dnsexchange

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

// DefaultTimeout bounds one attempt over one transport when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// ErrTSIG reports an answer whose TSIG does not verify. Exchange returns
// the answer with it: a refusal (NOTAUTH with BADSIG or BADKEY, which a
// server cannot sign) is still the server's verdict, a success is not to
// be believed.
var ErrTSIG = errors.New("answer's TSIG does not verify")

// ErrUDPTruncated marks the failure of the TCP retry of an answer that was
// truncated over UDP (a resolver reports the truncation, not only the TCP
// error).
var ErrUDPTruncated = errors.New("answer truncated over UDP")

// ErrTruncated reports an answer truncated over TCP, where it cannot be.
var ErrTruncated = errors.New("answer over TCP is truncated")

// Options are an exchange's settings. The zero value sends unsigned over
// UDP, then TCP, with DefaultTimeout per attempt, from the address the
// system chooses.
type Options struct {
	// Timeout bounds each attempt (dial, send, receive) over one transport.
	Timeout time.Duration
	// TCPOnly skips UDP (for updates: a UDP source address can be spoofed).
	TCPOnly bool
	// Key verifies signed answers. The message itself is signed when it
	// carries a TSIG record (dns.Msg.SetTsig) for Key's name.
	Key *tsigkey.Key
	// Source, when valid, is the local address to send from.
	Source netip.Addr
	// SourceFallback retries a dial that failed from Source from the
	// address the system chooses (Source is a preference, not a must).
	SourceFallback bool
}

// Reply is an exchange's answer, the query it answers and the transport
// that carried it.
type Reply struct {
	Msg *dns.Msg
	// Sent is the copy of the message that was sent, with its ID.
	Sent *dns.Msg
	// Net is "udp" or "tcp".
	Net string
}

// Exchange sends m to server ("host:port") over UDP, and again over TCP
// when the UDP answer is truncated (or over TCP alone with TCPOnly), and
// returns the answer. Each attempt sends a copy of m with a fresh ID (so a
// signed retry has a new MAC, and a server's replay memory does not take it
// for the first attempt); the answer must be a response with that ID. m is
// not modified. Errors name
// the server and the transport; a timeout wraps context.DeadlineExceeded.
func Exchange(ctx context.Context, server string, m *dns.Msg, o Options) (Reply, error) {
	if o.TCPOnly {
		return once(ctx, "tcp", server, m, o)
	}
	r, err := once(ctx, "udp", server, m, o)
	if err != nil || !r.Msg.Truncated {
		return r, err
	}
	r, err = once(ctx, "tcp", server, m, o)
	if err != nil {
		return r, fmt.Errorf("%w, and over TCP: %w", ErrUDPTruncated, err)
	}
	return r, nil
}

// once performs one attempt over one transport.
func once(ctx context.Context, network, server string, m *dns.Msg, o Options) (Reply, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: timeout}
	if o.Key != nil {
		c.TsigSecret = map[string]string{o.Key.Name: o.Key.Secret}
	}
	if o.Source.IsValid() {
		c.Dialer = &net.Dialer{Timeout: timeout, LocalAddr: localAddr(network, o.Source)}
	}
	conn, err := c.DialContext(ctx, server)
	if err != nil && o.Source.IsValid() && o.SourceFallback && ctx.Err() == nil {
		c.Dialer = nil
		conn, err = c.DialContext(ctx, server)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("%s over %s: %w", server, network, err)
	}
	defer conn.Close()
	// miekg/dns honours only the context's deadline; closing the
	// connection makes cancellation immediate too.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	q := m.Copy()
	q.Id = dns.Id()
	if t := q.IsTsig(); t != nil {
		t.OrigId = q.Id // SetTsig copied the old ID; the MAC covers it
	}
	r, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		// miekg/dns returns the message with the error when only the TSIG
		// check failed (the TSIG RR is the last thing unpacked).
		if r != nil && r.Response && r.Id == q.Id && r.IsTsig() != nil {
			return Reply{Msg: r, Sent: q, Net: network}, fmt.Errorf("%s over %s: %w: %v", server, network, ErrTSIG, err)
		}
		var ne net.Error
		switch cause := context.Cause(ctx); {
		case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
			return Reply{}, fmt.Errorf("%s over %s: %w", server, network, cause)
		case cause != nil, errors.As(err, &ne) && ne.Timeout():
			return Reply{}, fmt.Errorf("%s over %s: no answer within %v: %w", server, network, timeout, context.DeadlineExceeded)
		}
		return Reply{}, fmt.Errorf("%s over %s: %w", server, network, err)
	}
	if !r.Response || r.Id != q.Id {
		return Reply{}, fmt.Errorf("%s over %s: answer is not a response to the query (QR %v, ID %d, want %d)", server, network, r.Response, r.Id, q.Id)
	}
	if network == "tcp" && r.Truncated {
		return Reply{}, fmt.Errorf("%s over %s: %w", server, network, ErrTruncated)
	}
	return Reply{Msg: r, Sent: q, Net: network}, nil
}

func localAddr(network string, a netip.Addr) net.Addr {
	if network == "tcp" {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
}
