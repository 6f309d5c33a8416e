package dnsexchange

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
	"github.com/kmsdns/kmsdns/test/testkit"
)

const secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// server is a miekg/dns server on loopback, UDP and TCP on one port, that
// records what it receives and answers as configured.
type server struct {
	addr string
	mu   sync.Mutex
	got  []got
	// truncUDP sets TC on UDP answers; truncTCP on TCP answers; silent
	// answers nothing; badSign signs answers with another secret.
	truncUDP, truncTCP, silent, badSign bool
}

type got struct {
	net  string
	id   uint16
	mac  string
	from netip.Addr
	tsig error
}

func startServer(t *testing.T, key *tsigkey.Key, configure func(*server)) *server {
	t.Helper()
	s := &server{}
	if configure != nil {
		configure(s)
	}
	ln, pc := testkit.ListenUDPTCP(t, "127.0.0.1:0")
	s.addr = ln.Addr().String()
	secrets := map[string]string{}
	if key != nil {
		secrets[key.Name] = secret
	}
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s, TsigSecret: secrets, NotifyStartedFunc: func() { started <- struct{}{} }},
		{Listener: ln, Handler: s, TsigSecret: secrets, NotifyStartedFunc: func() { started <- struct{}{} }},
	} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	<-started
	<-started
	return s
}

func (s *server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	network := w.LocalAddr().Network()
	from, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	g := got{net: network, id: r.Id, from: from.Addr(), tsig: w.TsigStatus()}
	if t := r.IsTsig(); t != nil {
		g.mac = t.MAC
	}
	s.mu.Lock()
	s.got = append(s.got, g)
	truncUDP, truncTCP, silent, badSign := s.truncUDP, s.truncTCP, s.silent, s.badSign
	s.mu.Unlock()
	if silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Truncated = (network == "udp" && truncUDP) || (network == "tcp" && truncTCP)
	if t := r.IsTsig(); t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	if badSign {
		// Sign with another secret: the client's check must fail.
		b, _, err := dns.TsigGenerate(m, "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMTIzNDU=", r.IsTsig().MAC, false)
		if err == nil {
			w.Write(b)
		}
		return
	}
	w.WriteMsg(m)
}

func (s *server) received() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]got(nil), s.got...)
}

func query() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion("_vlmcs._tcp.example.test.", dns.TypeSRV)
	return m
}

func TestExchange(t *testing.T) {
	key, err := tsigkey.New("hmac-sha256", "k", secret)
	if err != nil {
		t.Fatal(err)
	}
	signed := func() *dns.Msg {
		m := query()
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		return m
	}
	tests := []struct {
		name      string
		configure func(*server)
		msg       func() *dns.Msg
		opts      Options
		wantNets  []string // transports the server saw, in order
		wantNet   string   // transport of the answer; "" for an error
		wantErr   error
	}{
		{name: "udp", msg: query, wantNets: []string{"udp"}, wantNet: "udp"},
		{name: "truncated falls back to tcp", configure: func(s *server) { s.truncUDP = true }, msg: query, wantNets: []string{"udp", "tcp"}, wantNet: "tcp"},
		{name: "tcp only", msg: query, opts: Options{TCPOnly: true}, wantNets: []string{"tcp"}, wantNet: "tcp"},
		{name: "truncated over tcp", configure: func(s *server) { s.truncUDP, s.truncTCP = true, true }, msg: query, wantNets: []string{"udp", "tcp"}, wantErr: ErrTruncated},
		{name: "signed", msg: signed, opts: Options{Key: &key}, wantNets: []string{"udp"}, wantNet: "udp"},
		{name: "signed retry over tcp", configure: func(s *server) { s.truncUDP = true }, msg: signed, opts: Options{Key: &key}, wantNets: []string{"udp", "tcp"}, wantNet: "tcp"},
		{name: "answer signed with another secret", configure: func(s *server) { s.badSign = true }, msg: signed, opts: Options{Key: &key}, wantNets: []string{"udp"}, wantErr: ErrTSIG},
		{name: "no answer", configure: func(s *server) { s.silent = true }, msg: query, opts: Options{Timeout: 200 * time.Millisecond}, wantNets: []string{"udp"}, wantErr: context.DeadlineExceeded},
		{name: "source address", msg: query, opts: Options{Source: netip.MustParseAddr("127.0.0.2")}, wantNets: []string{"udp"}, wantNet: "udp"},
		{name: "source not local, fallback", msg: query, opts: Options{Source: netip.MustParseAddr("192.0.2.1"), SourceFallback: true}, wantNets: []string{"udp"}, wantNet: "udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k *tsigkey.Key
			if tt.opts.Key != nil {
				k = &key
			}
			s := startServer(t, k, tt.configure)
			m := tt.msg()
			id := m.Id
			rep, err := Exchange(context.Background(), s.addr, m, tt.opts)
			if m.Id != id {
				t.Error("Exchange modified the message")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				if rep.Net != tt.wantNet || rep.Msg.Id != rep.Sent.Id || !rep.Msg.Response {
					t.Errorf("reply over %s, ID %d for %d; want over %s, matching", rep.Net, rep.Msg.Id, rep.Sent.Id, tt.wantNet)
				}
			}
			gots := s.received()
			if len(gots) != len(tt.wantNets) {
				t.Fatalf("server received %d messages (%+v), want %v", len(gots), gots, tt.wantNets)
			}
			for i, g := range gots {
				if g.net != tt.wantNets[i] {
					t.Errorf("message %d over %s, want %s", i, g.net, tt.wantNets[i])
				}
				if tt.opts.Key != nil && (g.mac == "" || g.tsig != nil) {
					t.Errorf("message %d: signed %v, server's TSIG check %v", i, g.mac != "", g.tsig)
				}
				if src := tt.opts.Source; src.IsValid() && !tt.opts.SourceFallback && g.from != src {
					t.Errorf("message %d from %s, want %s", i, g.from, src)
				}
			}
			if len(gots) == 2 && (gots[0].id == gots[1].id || (gots[0].mac != "" && gots[0].mac == gots[1].mac)) {
				t.Errorf("the retry reused the first attempt's ID or MAC: a server's replay memory would refuse it")
			}
		})
	}
}

func TestExchangeSourceWithoutFallback(t *testing.T) {
	s := startServer(t, nil, nil)
	_, err := Exchange(context.Background(), s.addr, query(), Options{Source: netip.MustParseAddr("192.0.2.1")})
	if err == nil {
		t.Fatal("sent from an address this host does not have")
	}
	if len(s.received()) != 0 {
		t.Error("the server received the message")
	}
}

func TestExchangeCancel(t *testing.T) {
	s := startServer(t, nil, func(s *server) { s.silent = true })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Exchange(ctx, s.addr, query(), Options{Timeout: 10 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancellation took %v", took)
	}
}
