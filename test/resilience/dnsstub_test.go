package resilience

import (
	"encoding/base64"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The TSIG key the responder signs its updates with.
const (
	tsigName   = "resilience-key."
	testZone   = "example.test."
	testTarget = "kms1.example.test."
)

var tsigSecret = base64.StdEncoding.EncodeToString([]byte("resilience test secret, 32 bytes"))

// tsigEnv is the environment entry that hands the responder the key.
func tsigEnv() string { return "KMS_RESPONDER_TSIG_KEY=hmac-sha256:" + tsigName + ":" + tsigSecret }

// update is one UPDATE the stub server received.
type update struct {
	at       time.Time
	refused  bool // the stub answered REFUSED
	withdraw bool // it deletes the SRV record (and adds none)
	register bool // it adds the SRV record
	tsigOK   bool
}

// dnsStub is a DNS server on one loopback port (UDP and TCP) that records
// UPDATEs and answers them NOERROR, signed, after an optional delay. It can
// be stopped and started again on the same port.
type dnsStub struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	udp     *dns.Server
	tcp     *dns.Server
	delay   time.Duration
	refuse  bool   // answer every UPDATE REFUSED
	grant   uint32 // answer registrations with this Update Lease (seconds); 0: no lease option
	updates []update
}

// startDNSStub listens on a free loopback port.
func startDNSStub(t testing.TB) *dnsStub {
	t.Helper()
	s := &dnsStub{t: t}
	var err error
	for range 20 {
		var ln net.Listener
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s.addr = ln.Addr().String()
		ln.Close()
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("DNS stub: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

// start serves on s.addr.
func (s *dnsStub) start() error {
	ln, err := net.Listen("tcp4", s.addr)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp4", s.addr)
	if err != nil {
		ln.Close()
		return err
	}
	secrets := map[string]string{tsigName: tsigSecret}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	// miekg/dns's default acceptor answers UPDATE with NOTIMP.
	accept := func(dh dns.Header) dns.MsgAcceptAction {
		if dh.Bits&(1<<15) != 0 {
			return dns.MsgIgnore
		}
		return dns.MsgAccept
	}
	s.mu.Lock()
	s.udp = &dns.Server{PacketConn: pc, Handler: s, TsigSecret: secrets, MsgAcceptFunc: accept, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: s, TsigSecret: secrets, MsgAcceptFunc: accept, NotifyStartedFunc: notify}
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	<-started
	<-started
	return nil
}

// stop shuts the server down; the port is free afterwards.
func (s *dnsStub) stop() {
	s.mu.Lock()
	udp, tcp := s.udp, s.tcp
	s.udp, s.tcp = nil, nil
	s.mu.Unlock()
	if udp != nil {
		udp.Shutdown()
		tcp.Shutdown()
	}
}

// setDelay makes the server answer after d (a slow server).
func (s *dnsStub) setDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// setRefuse makes the server refuse (REFUSED) every UPDATE, or accept them again.
func (s *dnsStub) setRefuse(on bool) {
	s.mu.Lock()
	s.refuse = on
	s.mu.Unlock()
}

// setGrant makes the server grant lease seconds to registrations.
func (s *dnsStub) setGrant(lease uint32) {
	s.mu.Lock()
	s.grant = lease
	s.mu.Unlock()
}

// received returns a copy of the updates so far.
func (s *dnsStub) received() []update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]update(nil), s.updates...)
}

// waitFor waits up to limit for an update after since that satisfies ok.
func (s *dnsStub) waitFor(since time.Time, limit time.Duration, ok func(update) bool) (update, bool) {
	deadline := time.Now().Add(limit)
	for {
		for _, u := range s.received() {
			if !u.at.Before(since) && ok(u) {
				return u, true
			}
		}
		if time.Now().After(deadline) {
			return update{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ServeDNS records an UPDATE and answers it.
func (s *dnsStub) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	u := update{at: time.Now(), tsigOK: r.IsTsig() != nil && w.TsigStatus() == nil}
	for _, rr := range r.Ns {
		h := rr.Header()
		if h.Rrtype != dns.TypeSRV && !(h.Rrtype == dns.TypeANY && h.Class == dns.ClassANY) {
			continue
		}
		switch h.Class {
		case dns.ClassNONE, dns.ClassANY:
			u.withdraw = true
		case dns.ClassINET:
			u.register = true
		}
	}
	if u.register {
		u.withdraw = false
	}
	s.mu.Lock()
	u.refused = s.refuse || !u.tsigOK
	if r.Opcode == dns.OpcodeUpdate {
		s.updates = append(s.updates, u)
	}
	delay, refuse, grant := s.delay, s.refuse, s.grant
	s.mu.Unlock()
	time.Sleep(delay)
	m := new(dns.Msg)
	m.SetReply(r)
	if !u.tsigOK || refuse {
		m.Rcode = dns.RcodeRefused
	}
	if u.register && grant > 0 && m.Rcode == dns.RcodeSuccess {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(dns.DefaultMsgSize)
		o.Option = append(o.Option, &dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: grant})
		m.Extra = append(m.Extra, o)
	}
	if t := r.IsTsig(); t != nil && u.tsigOK {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	w.WriteMsg(m)
}

// registrationFlags are the serve flags that register with s.
func (s *dnsStub) registrationFlags(lease string) []string {
	return []string{"--dns-server", s.addr, "--zone", testZone, "--target", testTarget, "--lease", lease, "--drain", "0s"}
}
