package vlmcs

import (
	"context"
	"net"
	"net/netip"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

// lookupNext asks the next plugin for name's records of type qt and returns the addresses
// in its answer. It is how vlmcs finds the address of a host that registered only an SRV
// record (a Windows KMS host, whose A record lives in Active Directory).
func lookupNext(ctx context.Context, next plugin.Handler, name string, qt uint16) []netip.Addr {
	q := new(dns.Msg)
	q.SetQuestion(name, qt)
	cw := &captureWriter{}
	if _, err := next.ServeDNS(ctx, cw, q); err != nil || cw.msg == nil {
		return nil
	}
	var out []netip.Addr
	for _, rr := range cw.msg.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(rr.A.To4()); ok {
				out = append(out, ip)
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(rr.AAAA); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// captureWriter is a dns.ResponseWriter for internal requests: it keeps the reply.
type captureWriter struct {
	msg *dns.Msg
}

func loopback() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }

func (c *captureWriter) LocalAddr() net.Addr       { return loopback() }
func (c *captureWriter) RemoteAddr() net.Addr      { return loopback() }
func (c *captureWriter) WriteMsg(m *dns.Msg) error { c.msg = m; return nil }
func (c *captureWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	c.msg = m
	return len(b), nil
}
func (c *captureWriter) Close() error        { return nil }
func (c *captureWriter) TsigStatus() error   { return nil }
func (c *captureWriter) TsigTimersOnly(bool) {}
func (c *captureWriter) Hijack()             {}
func (c *captureWriter) Network() string     { return "udp" }
