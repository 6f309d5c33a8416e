package publish

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// received is one UPDATE as the test server saw it.
type received struct {
	msg    *dns.Msg
	net    string // "udp" or "tcp"
	tsig   error  // miekg's verdict on the request's TSIG (nil: valid or absent)
	signed bool
	from   netip.Addr // the sender's address
}

// updateServer is a real miekg/dns server on loopback (UDP and TCP on one
// runtime port) that verifies TSIG with its secrets, records every update
// and answers as configured.
type updateServer struct {
	t       *testing.T
	addr    string
	secrets map[string]string
	udp     *dns.Server
	tcp     *dns.Server
	got     chan received

	mu          sync.Mutex
	maxLease    uint32 // clamp for granted leases; 0: grant what is asked
	rcode       int
	reason      string // EDE text on refusals
	truncateUDP bool
	unsigned    bool // never sign answers
	noLease     bool // never return the UL option
	delay       time.Duration
	queries     int      // SRV queries answered
	listed      []dns.RR // the answer to SRV queries (presence checks)
}

// startUpdateServer listens on addr ("127.0.0.1:0" for a fresh port).
func startUpdateServer(t *testing.T, addr string, secrets map[string]string) *updateServer {
	t.Helper()
	u := &updateServer{t: t, secrets: secrets, got: make(chan received, 64)}
	u.listen(addr)
	t.Cleanup(u.stop)
	return u
}

func (u *updateServer) listen(addr string) {
	u.t.Helper()
	ln, pc := testkit.ListenUDPTCP(u.t, addr)
	u.addr = ln.Addr().String()
	accept := func(dh dns.Header) dns.MsgAcceptAction {
		if dh.Bits&(1<<15) != 0 {
			return dns.MsgIgnore
		}
		return dns.MsgAccept
	}
	started := make(chan struct{}, 2)
	u.udp = &dns.Server{PacketConn: pc, Handler: u, TsigSecret: u.secrets, MsgAcceptFunc: accept,
		NotifyStartedFunc: func() { started <- struct{}{} }}
	u.tcp = &dns.Server{Listener: ln, Handler: u, TsigSecret: u.secrets, MsgAcceptFunc: accept,
		NotifyStartedFunc: func() { started <- struct{}{} }}
	go u.udp.ActivateAndServe()
	go u.tcp.ActivateAndServe()
	<-started
	<-started
}

func (u *updateServer) stop() {
	if u.udp != nil {
		u.udp.Shutdown()
		u.tcp.Shutdown()
		u.udp, u.tcp = nil, nil
	}
}

// restart stops the server and listens again on the same port.
func (u *updateServer) restart() {
	u.stop()
	u.listen(u.addr)
}

func (u *updateServer) set(f func(u *updateServer)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u)
}

// ServeDNS records the update and answers it; a query gets the listed records.
func (u *updateServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r.Opcode == dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetReply(r)
		u.mu.Lock()
		u.queries++
		m.Answer = append(m.Answer, u.listed...)
		u.mu.Unlock()
		w.WriteMsg(m)
		return
	}
	u.mu.Lock()
	maxLease, rcode, reason, trunc, unsigned, noLease, delay :=
		u.maxLease, u.rcode, u.reason, u.truncateUDP, u.unsigned, u.noLease, u.delay
	u.mu.Unlock()

	network := w.LocalAddr().Network()
	from, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	u.got <- received{msg: r.Copy(), net: network, tsig: w.TsigStatus(), signed: r.IsTsig() != nil, from: from.Addr()}
	if delay > 0 {
		time.Sleep(delay)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	reqTsig := r.IsTsig()
	sign := func() {
		if reqTsig != nil && !unsigned {
			m.SetTsig(reqTsig.Hdr.Name, reqTsig.Algorithm, 300, time.Now().Unix())
		}
	}
	switch {
	case trunc && network == "udp":
		m.Truncated = true
		sign()
	case reqTsig != nil && w.TsigStatus() != nil:
		// A TSIG failure: NOTAUTH with the TSIG error, as CoreDNS's tsig
		// plugin answers. miekg signs it with the server's own secret
		// when it knows the key name.
		m.Rcode = dns.RcodeNotAuth
		if _, known := u.secrets[reqTsig.Hdr.Name]; known {
			m.SetTsig(reqTsig.Hdr.Name, reqTsig.Algorithm, 300, time.Now().Unix())
			m.Extra[len(m.Extra)-1].(*dns.TSIG).Error = dns.RcodeBadSig
		}
	default:
		m.Rcode = rcode
		if rcode != dns.RcodeSuccess && reason != "" {
			opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeProhibited, ExtraText: reason})
			m.Extra = append(m.Extra, opt)
		} else if opt := r.IsEdns0(); opt != nil && !noLease {
			for _, o := range opt.Option {
				if ul, ok := o.(*dns.EDNS0_UL); ok {
					lease := ul.Lease
					if maxLease != 0 && lease > maxLease {
						lease = maxLease
					}
					ro := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
					ro.Option = append(ro.Option, &dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: lease})
					m.Extra = append(m.Extra, ro)
				}
			}
		}
		sign()
	}
	if err := w.WriteMsg(m); err != nil {
		u.t.Logf("test server: write: %v", err)
	}
}

// next returns the next update the server received, failing after wait.
func (u *updateServer) next(wait time.Duration) received {
	u.t.Helper()
	select {
	case r := <-u.got:
		return r
	case <-time.After(wait):
		u.t.Fatalf("server %s received no update within %v", u.addr, wait)
		return received{}
	}
}

// none asserts that no update arrives within wait.
func (u *updateServer) none(wait time.Duration) {
	u.t.Helper()
	select {
	case r := <-u.got:
		u.t.Fatalf("unexpected update over %s:\n%v", r.net, r.msg)
	case <-time.After(wait):
	}
}

// rrLine formats an RR as "name ttl class type rdata" with single spaces.
func rrLine(rr dns.RR) string {
	h := rr.Header()
	rdata := strings.TrimSpace(strings.TrimPrefix(rr.String(), h.String()))
	line := fmt.Sprintf("%s %d %s %s", h.Name, h.Ttl, dns.ClassToString[h.Class], dns.TypeToString[h.Rrtype])
	if rdata != "" {
		line += " " + rdata
	}
	return line
}

func rrLines(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rrLine(rr))
	}
	return out
}

// fakeClock is a Clock moved by hand. Every timer created is announced on
// timers, so a test knows what the Publisher is waiting for.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer
	timers  chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), timers: make(chan time.Duration, 64)}
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	ch   chan time.Time
	done bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{c: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.pending = append(c.pending, t)
	c.mu.Unlock()
	c.timers <- d
	return t
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.pending[:0]
	for _, t := range c.pending {
		if !t.done && !t.when.After(c.now) {
			t.done = true
			t.ch <- c.now
			continue
		}
		if !t.done {
			kept = append(kept, t)
		}
	}
	c.pending = kept
}

// nextTimer waits for the Publisher to start a timer and returns its
// duration.
func (c *fakeClock) nextTimer(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.timers:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("publisher started no timer within 5s")
		return 0
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}
