package publish

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
	"github.com/kmsdns/kmsdns/test/testkit"
)

const (
	testKeyName = "kms1-key."
	testSecret  = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM=" // 32 bytes
	otherSecret = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItMDE=" // 32 bytes
)

func testKey(t *testing.T, secret string) *tsigkey.Key {
	t.Helper()
	k, err := tsigkey.New("hmac-sha256", testKeyName, secret)
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// baseConfig registers kms1.example.test with 127.0.0.2 and ::1 at the
// given servers.
func baseConfig(t *testing.T, servers ...string) Config {
	return Config{
		Servers:    servers,
		Zone:       "Example.Test",
		Target:     "KMS1.example.test.",
		Addresses:  []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")},
		Port:       1688,
		Priority:   10,
		Weight:     100,
		TTL:        30,
		Lease:      40 * time.Second,
		Key:        testKey(t, testSecret),
		Timeout:    time.Second,
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 800 * time.Millisecond,
		Logger:     quietLogger(),
	}
}

func serverSecrets() map[string]string { return map[string]string{testKeyName: testSecret} }

// startTestServer starts an UPDATE server on a loopback port that knows
// the test key.
func startTestServer(t *testing.T) *updateServer {
	t.Helper()
	return startUpdateServer(t, "127.0.0.1:0", serverSecrets())
}

// newPublisher is New that fails the test on error.
func newPublisher(t *testing.T, cfg Config) *Publisher {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runPublisher starts Run and returns a function that stops it and
// returns Run's result.
func runPublisher(t *testing.T, p *Publisher) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- p.Run(ctx) }()
	var once bool
	var err error
	stop = func() error {
		if !once {
			once = true
			cancel()
			select {
			case err = <-res:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of cancellation")
			}
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitState(t *testing.T, p *Publisher, what string, ok func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.State()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never became %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaseOption(t *testing.T, m *dns.Msg) (uint32, bool) {
	t.Helper()
	opt := m.IsEdns0()
	if opt == nil {
		return 0, false
	}
	for _, o := range opt.Option {
		if ul, ok := o.(*dns.EDNS0_UL); ok {
			return ul.Lease, true
		}
	}
	return 0, false
}

func TestRegisterMessageOnTheWire(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.maxLease = 25 })
	p := newPublisher(t, baseConfig(t, srv.addr))
	runPublisher(t, p)

	got := srv.next(5 * time.Second)
	if got.net != "udp" {
		t.Errorf("transport %s, want udp first", got.net)
	}
	if !got.signed || got.tsig != nil {
		t.Fatalf("update signed=%v, server's TSIG verdict %v; want a valid signature", got.signed, got.tsig)
	}
	m := got.msg
	if m.Opcode != dns.OpcodeUpdate {
		t.Errorf("opcode %s, want UPDATE", dns.OpcodeToString[m.Opcode])
	}
	if len(m.Question) != 1 || m.Question[0] != (dns.Question{Name: "example.test.", Qtype: dns.TypeSOA, Qclass: dns.ClassINET}) {
		t.Errorf("zone section %v, want example.test. IN SOA", m.Question)
	}
	if len(m.Answer) != 0 {
		t.Errorf("prerequisite section %v, want none", m.Answer)
	}
	wantUpdate := []string{
		"kms1.example.test. 0 ANY A",
		"kms1.example.test. 0 ANY AAAA",
		"kms1.example.test. 30 IN A 127.0.0.2",
		"kms1.example.test. 30 IN AAAA ::1",
		"_vlmcs._tcp.example.test. 30 IN SRV 10 100 1688 kms1.example.test.",
	}
	if got := rrLines(m.Ns); !slices.Equal(got, wantUpdate) {
		t.Errorf("update section\n got %q\nwant %q", got, wantUpdate)
	}
	if lease, ok := leaseOption(t, m); !ok || lease != 40 {
		t.Errorf("lease option %d (present %v), want 40", lease, ok)
	}
	if len(m.Extra) != 2 || m.Extra[0].Header().Rrtype != dns.TypeOPT || m.Extra[1].Header().Rrtype != dns.TypeTSIG {
		t.Errorf("additional section %v, want OPT then TSIG", m.Extra)
	}
	if ts := m.IsTsig(); ts == nil || ts.Algorithm != dns.HmacSHA256 || ts.Fudge != 300 || ts.Hdr.Name != testKeyName {
		t.Errorf("TSIG %v, want %s hmac-sha256 fudge 300", ts, testKeyName)
	}

	st := waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
	s0 := st.Servers[0]
	if s0.GrantedLease != 25*time.Second {
		t.Errorf("granted lease %v, want the server's 25s", s0.GrantedLease)
	}
	if s0.Failures != 0 || s0.LastError != "" || s0.LastSuccess.IsZero() || s0.NextAttempt.IsZero() {
		t.Errorf("state after success: %+v", s0)
	}
}

func TestWithdrawMessageAndRunEnds(t *testing.T) {
	srv := startTestServer(t)
	p := newPublisher(t, baseConfig(t, srv.addr))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- p.Run(ctx) }()
	srv.next(5 * time.Second)

	if err := p.Withdraw(context.Background()); err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	select {
	case err := <-res:
		if err != nil {
			t.Errorf("Run after Withdraw returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Withdraw")
	}
	got := srv.next(5 * time.Second)
	if got.tsig != nil || !got.signed {
		t.Fatalf("withdraw not validly signed: %v", got.tsig)
	}
	want := []string{
		"_vlmcs._tcp.example.test. 0 NONE SRV 10 100 1688 kms1.example.test.",
		"kms1.example.test. 0 ANY A",
		"kms1.example.test. 0 ANY AAAA",
	}
	if got := rrLines(got.msg.Ns); !slices.Equal(got, want) {
		t.Errorf("withdraw update section\n got %q\nwant %q", got, want)
	}
	if _, ok := leaseOption(t, got.msg); ok {
		t.Error("withdraw carries a lease option")
	}
	st := p.State()
	if !st.Withdrawn || st.Servers[0].Registered || !st.Servers[0].Withdrawn {
		t.Errorf("state after withdraw: %+v", st)
	}
	if err := p.Run(context.Background()); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("Run after Withdraw: %v, want ErrWithdrawn", err)
	}
	srv.none(100 * time.Millisecond)
}

func TestSRVOnlyWithoutAddresses(t *testing.T) {
	srv := startTestServer(t)
	cfg := baseConfig(t, srv.addr)
	cfg.Addresses = nil
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	got := srv.next(5 * time.Second)
	want := []string{"_vlmcs._tcp.example.test. 30 IN SRV 10 100 1688 kms1.example.test."}
	if got := rrLines(got.msg.Ns); !slices.Equal(got, want) {
		t.Errorf("update section %q, want %q", got, want)
	}
}

// TestRefreshTiming moves a fake clock: each refresh is scheduled at 40-50%
// of the lease the server granted, and fires a new, identical update.
func TestRefreshTiming(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.maxLease = 10 })
	clk := newFakeClock()
	cfg := baseConfig(t, srv.addr)
	cfg.Lease = 10 * time.Second // at the floor (LeaseFloor applies to the longer requests)
	cfg.Clock = clk
	p := newPublisher(t, cfg)
	runPublisher(t, p)

	first := srv.next(5 * time.Second)
	for i := range 4 {
		d := clk.nextTimer(t)
		if d < 4*time.Second || d > 5*time.Second {
			t.Fatalf("refresh %d scheduled after %v, want 4s-5s (40-50%% of the granted 10s)", i, d)
		}
		srv.none(20 * time.Millisecond)
		clk.Advance(d)
		got := srv.next(5 * time.Second)
		if !slices.Equal(rrLines(got.msg.Ns), rrLines(first.msg.Ns)) {
			t.Fatalf("refresh %d differs from the registration:\n%q\n%q", i, rrLines(got.msg.Ns), rrLines(first.msg.Ns))
		}
		if got.tsig != nil {
			t.Fatalf("refresh %d: TSIG %v", i, got.tsig)
		}
	}
	clk.nextTimer(t) // the state is recorded before the next timer starts
	st := p.State()
	if want := clk.Now().Add(10 * time.Second); !st.Servers[0].LeaseExpires.Equal(want) {
		t.Errorf("lease expires %v, want %v", st.Servers[0].LeaseExpires, want)
	}
}

// TestRefreshRealClock runs with the system clock and a 2 s lease: the
// second and third updates come about one second apart.
func TestRefreshRealClock(t *testing.T) {
	srv := startTestServer(t)
	cfg := baseConfig(t, srv.addr)
	cfg.Lease = 2 * time.Second
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	srv.next(5 * time.Second)
	start := time.Now()
	srv.next(5 * time.Second)
	srv.next(5 * time.Second)
	if el := time.Since(start); el < 1500*time.Millisecond || el > 4*time.Second {
		t.Errorf("two refreshes took %v, want about 2 x 0.8-1s", el)
	}
}

// TestBackoffThenReregister: the server is down, so attempts back off
// exponentially (jittered, capped); when it comes back the next attempt
// registers and refreshes resume.
func TestBackoffThenReregister(t *testing.T) {
	srv := startTestServer(t)
	srv.stop()
	clk := newFakeClock()
	cfg := baseConfig(t, srv.addr)
	cfg.Clock = clk
	p := newPublisher(t, cfg)
	runPublisher(t, p)

	// MinBackoff 100ms, MaxBackoff 800ms: [50,100], [100,200], [200,400],
	// [400,800], then capped at [400,800].
	bounds := []time.Duration{100, 200, 400, 800, 800, 800}
	for i, hi := range bounds {
		hi *= time.Millisecond
		d := clk.nextTimer(t)
		if d < hi/2 || d > hi {
			t.Fatalf("retry %d after %v, want %v-%v", i+1, d, hi/2, hi)
		}
		st := p.State().Servers[0]
		if st.Registered || st.Failures != i+1 || st.LastError == "" {
			t.Fatalf("after failure %d: %+v", i+1, st)
		}
		clk.Advance(d)
	}

	d := clk.nextTimer(t)
	srv.restart()
	clk.Advance(d)
	got := srv.next(5 * time.Second)
	if got.tsig != nil || len(got.msg.Ns) != 5 {
		t.Fatalf("re-registration: TSIG %v, %d updates", got.tsig, len(got.msg.Ns))
	}
	if d := clk.nextTimer(t); d < 16*time.Second || d > 20*time.Second {
		t.Errorf("after re-registration the next refresh is in %v, want 16s-20s", d)
	}
	st := p.State().Servers[0]
	if !st.Registered || st.Failures != 0 {
		t.Errorf("after re-registration: %+v", st)
	}
}

// TestServerRestartLosesPool: a server that restarts (and forgets the
// registration) gets it back at the next refresh.
func TestServerRestartGetsRefresh(t *testing.T) {
	srv := startTestServer(t)
	clk := newFakeClock()
	cfg := baseConfig(t, srv.addr)
	cfg.Clock = clk
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	srv.next(5 * time.Second)
	d := clk.nextTimer(t)
	srv.restart()
	clk.Advance(d)
	srv.next(5 * time.Second)
}

func TestSlowServerTimesOut(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.delay = 600 * time.Millisecond })
	clk := newFakeClock()
	cfg := baseConfig(t, srv.addr)
	cfg.Timeout = 150 * time.Millisecond
	cfg.Clock = clk
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	srv.next(5 * time.Second)
	d := clk.nextTimer(t)
	if d > 100*time.Millisecond {
		t.Errorf("after a timeout the retry is in %v, want a first backoff <= 100ms", d)
	}
	st := p.State().Servers[0]
	if !strings.Contains(st.LastError, "no answer within 150ms") {
		t.Errorf("last error %q, want a timeout", st.LastError)
	}
}

func TestTruncatedAnswerFallsBackToTCP(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.truncateUDP = true })
	p := newPublisher(t, baseConfig(t, srv.addr))
	runPublisher(t, p)
	a, b := srv.next(5*time.Second), srv.next(5*time.Second)
	if a.net != "udp" || b.net != "tcp" {
		t.Fatalf("transports %s then %s, want udp then tcp", a.net, b.net)
	}
	if b.tsig != nil || !slices.Equal(rrLines(a.msg.Ns), rrLines(b.msg.Ns)) {
		t.Fatalf("TCP retry: TSIG %v; sections %q vs %q", b.tsig, rrLines(b.msg.Ns), rrLines(a.msg.Ns))
	}
	if a.from != netip.MustParseAddr("127.0.0.2") || b.from != a.from {
		t.Errorf("sent from %v and %v, want the published IPv4 address 127.0.0.2", a.from, b.from)
	}
	if a.msg.Id == b.msg.Id {
		t.Error("TCP retry reuses the UDP message ID")
	}
	waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name      string
		secret    string // the publisher's secret
		key       bool   // sign at all
		configure func(*updateServer)
		want      string // in State's LastError
		wantErr   func(error) bool
	}{
		{
			name: "wrong secret", secret: otherSecret, key: true,
			want: "NOTAUTH (TSIG BADSIG)",
		},
		{
			name: "refused with reason", secret: testSecret, key: true,
			configure: func(u *updateServer) { u.rcode = dns.RcodeRefused; u.reason = "target not approved" },
			want:      "REFUSED: target not approved",
		},
		{
			name: "not zone", secret: testSecret, key: true,
			configure: func(u *updateServer) { u.rcode = dns.RcodeNotZone },
			want:      "NOTZONE",
		},
		{
			name: "unsigned answer to a signed update", secret: testSecret, key: true,
			configure: func(u *updateServer) { u.unsigned = true },
			want:      ErrUnsignedResponse.Error(),
		},
		{
			name: "unsigned update refused", key: false,
			configure: func(u *updateServer) { u.rcode = dns.RcodeRefused },
			want:      "REFUSED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTestServer(t)
			if tt.configure != nil {
				srv.set(tt.configure)
			}
			cfg := baseConfig(t, srv.addr)
			cfg.Key = nil
			if tt.key {
				cfg.Key = testKey(t, tt.secret)
			}
			cfg.Clock = newFakeClock()
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			runPublisher(t, p)
			got := srv.next(5 * time.Second)
			if got.signed != tt.key {
				t.Errorf("update signed=%v, want %v", got.signed, tt.key)
			}
			if want := map[bool]string{true: "udp", false: "tcp"}[tt.key]; got.net != want {
				t.Errorf("update over %s, want %s", got.net, want)
			}
			st := waitState(t, p, "failed", func(s State) bool { return s.Servers[0].Failures > 0 })
			if !strings.Contains(st.Servers[0].LastError, tt.want) || st.Servers[0].Registered {
				t.Errorf("last error %q, want it to contain %q", st.Servers[0].LastError, tt.want)
			}
		})
	}
}

func TestUnsignedAnswerAllowedWhenConfigured(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.unsigned, u.noLease = true, true })
	cfg := baseConfig(t, srv.addr)
	cfg.AllowUnsignedResponses = true
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	st := waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
	if st.Servers[0].GrantedLease != 40*time.Second {
		t.Errorf("granted lease %v without a UL answer, want the requested 40s", st.Servers[0].GrantedLease)
	}
}

// TestSuspendResume: Suspend withdraws at every server and stops refreshes;
// Resume registers again at once.
func TestSuspendResume(t *testing.T) {
	a := startTestServer(t)
	b := startTestServer(t)
	p := newPublisher(t, baseConfig(t, a.addr, b.addr))
	runPublisher(t, p)
	for _, s := range []*updateServer{a, b} {
		if got := s.next(5 * time.Second); len(got.msg.Ns) != 5 {
			t.Fatalf("%s: registration has %d updates", s.addr, len(got.msg.Ns))
		}
	}
	waitState(t, p, "registered at both", func(s State) bool { return s.Servers[0].Registered && s.Servers[1].Registered })

	p.Suspend("disk full")
	for _, s := range []*updateServer{a, b} {
		got := s.next(5 * time.Second)
		if rrLines(got.msg.Ns)[0] != "_vlmcs._tcp.example.test. 0 NONE SRV 10 100 1688 kms1.example.test." {
			t.Fatalf("%s: after Suspend got %q, want the withdraw", s.addr, rrLines(got.msg.Ns))
		}
	}
	st := waitState(t, p, "withdrawn at both", func(s State) bool { return s.Servers[0].Withdrawn && s.Servers[1].Withdrawn })
	if !st.Suspended || st.Reason != "disk full" || st.Servers[0].Registered {
		t.Errorf("state while suspended: %+v", st)
	}
	p.Suspend("disk full") // idempotent: no second withdraw
	a.none(100 * time.Millisecond)

	p.Resume()
	for _, s := range []*updateServer{a, b} {
		if got := s.next(5 * time.Second); len(got.msg.Ns) != 5 {
			t.Fatalf("%s: after Resume got %q, want the registration", s.addr, rrLines(got.msg.Ns))
		}
	}
	st = waitState(t, p, "registered again", func(s State) bool { return s.Servers[0].Registered && s.Servers[1].Registered })
	if st.Suspended || st.Servers[0].Withdrawn {
		t.Errorf("state after Resume: %+v", st)
	}
}

// TestOneServerDownOthersServed: a dead server does not hold up another.
func TestOneServerDownOthersServed(t *testing.T) {
	dead := startTestServer(t)
	dead.stop()
	live := startTestServer(t)
	p := newPublisher(t, baseConfig(t, dead.addr, live.addr))
	runPublisher(t, p)
	live.next(5 * time.Second)
	st := waitState(t, p, "one registered", func(s State) bool { return s.Servers[1].Registered && s.Servers[0].Failures > 0 })
	if st.Servers[0].Registered {
		t.Errorf("dead server reported registered: %+v", st.Servers[0])
	}
	err := p.Withdraw(context.Background())
	if err == nil || !strings.Contains(err.Error(), dead.addr) {
		t.Errorf("Withdraw error %v, want one naming %s", err, dead.addr)
	}
	if got := live.next(5 * time.Second); got.msg.Ns[0].Header().Class != dns.ClassNONE {
		t.Errorf("live server got %q, want the withdraw", rrLines(got.msg.Ns))
	}
}

func TestWithdrawWithoutRun(t *testing.T) {
	srv := startTestServer(t)
	p := newPublisher(t, baseConfig(t, srv.addr))
	if err := p.Withdraw(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(5 * time.Second); got.msg.Ns[0].Header().Class != dns.ClassNONE {
		t.Errorf("got %q, want the withdraw", rrLines(got.msg.Ns))
	}
}

func TestRunTwice(t *testing.T) {
	srv := startTestServer(t)
	p := newPublisher(t, baseConfig(t, srv.addr))
	stop := runPublisher(t, p)
	srv.next(5 * time.Second)
	if err := p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: %v", err)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel returned %v, want context.Canceled", err)
	}
}

// TestSourceAddress: updates over UDP and TCP leave from the configured
// source, else from the published address of the server's family when it
// is this host's, else from the system's choice.
func TestSourceAddress(t *testing.T) {
	tests := []struct {
		name   string
		server string // host name to reach the server by
		source string
		addrs  []string
		want   string
	}{
		{name: "configured", source: "127.0.0.3", addrs: []string{"127.0.0.2"}, want: "127.0.0.3"},
		{name: "published", addrs: []string{"::1", "127.0.0.4"}, want: "127.0.0.4"},
		{name: "published not local", addrs: []string{"192.0.2.1"}, want: "127.0.0.1"},
		{name: "no IPv4 published", addrs: []string{"::1"}, want: "127.0.0.1"},
		{name: "SRV only", want: "127.0.0.1"},
		{name: "server by name", server: "localhost", addrs: []string{"127.0.0.5"}, want: "127.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTestServer(t)
			srv.set(func(u *updateServer) { u.truncateUDP = true })
			cfg := baseConfig(t, srv.addr)
			if tt.server != "" {
				_, port, _ := net.SplitHostPort(srv.addr)
				cfg.Servers = []string{net.JoinHostPort(tt.server, port)}
			}
			cfg.Addresses = nil
			for _, a := range tt.addrs {
				cfg.Addresses = append(cfg.Addresses, netip.MustParseAddr(a))
			}
			if tt.source != "" {
				cfg.Source = netip.MustParseAddr(tt.source)
			}
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			runPublisher(t, p)
			for _, network := range []string{"udp", "tcp"} {
				got := srv.next(5 * time.Second)
				if got.net != network || got.from != netip.MustParseAddr(tt.want) {
					t.Errorf("update over %s from %v, want over %s from %s", got.net, got.from, network, tt.want)
				}
			}
		})
	}
}

// TestLeaseLapsesInState: while refreshes fail, State reports the
// registration until the granted lease runs out, then no longer.
func TestLeaseLapsesInState(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.maxLease = 10 })
	clk := newFakeClock()
	cfg := baseConfig(t, srv.addr)
	cfg.Lease = 10 * time.Second // at the floor (LeaseFloor applies to the longer requests)
	cfg.Clock = clk
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	srv.next(5 * time.Second)
	registeredAt := clk.Now()
	d := clk.nextTimer(t)
	srv.stop()
	clk.Advance(d)
	for clk.Now().Before(registeredAt.Add(10 * time.Second)) {
		if st := p.State().Servers[0]; !st.Registered {
			t.Fatalf("at +%v, before the lease ends, State says not registered: %+v", clk.Now().Sub(registeredAt), st)
		}
		clk.Advance(clk.nextTimer(t))
	}
	st := p.State().Servers[0]
	if st.Registered || st.Failures == 0 || !st.LeaseExpires.Equal(registeredAt.Add(10*time.Second)) {
		t.Errorf("after the lease ran out: %+v", st)
	}
}

// TestIPv6Server: a server on ::1 gets the update from the published IPv6
// address.
func TestIPv6Server(t *testing.T) {
	srv := startUpdateServer(t, "[::1]:0", serverSecrets())
	p := newPublisher(t, baseConfig(t, srv.addr))
	runPublisher(t, p)
	got := srv.next(5 * time.Second)
	if got.from != netip.MustParseAddr("::1") || got.tsig != nil || len(got.msg.Ns) != 5 {
		t.Errorf("update from %v, TSIG %v, %d updates", got.from, got.tsig, len(got.msg.Ns))
	}
	waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
}

// logLines decodes the JSON log lines written to buf.
func logLines(t *testing.T, buf *testkit.SyncBuffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLogs: registration, failure and withdrawal each log one line with
// the server, zone and target, durations as text.
func TestLogs(t *testing.T) {
	srv := startTestServer(t)
	var buf testkit.SyncBuffer
	cfg := baseConfig(t, srv.addr)
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Clock = newFakeClock()
	p := newPublisher(t, cfg)
	stop := runPublisher(t, p)
	waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
	srv.set(func(u *updateServer) { u.rcode = dns.RcodeRefused })
	p.Suspend("test")
	waitState(t, p, "withdraw failed", func(s State) bool { return s.Servers[0].Failures > 0 })
	stop()

	var msgs []string
	for _, l := range logLines(t, &buf) {
		msgs = append(msgs, l["level"].(string)+" "+l["msg"].(string))
		if l["server"] != nil && (l["server"] != srv.addr || l["zone"] != "example.test." || l["target"] != "kms1.example.test.") {
			t.Errorf("log line without server/zone/target: %v", l)
		}
		switch l["msg"] {
		case "registered in DNS":
			if l["lease"] != "40s" || l["transport"] != "udp" {
				t.Errorf("registration line %v", l)
			}
		case "DNS withdraw failed":
			if l["retry_in"] == nil || !strings.Contains(l["err"].(string), "REFUSED") {
				t.Errorf("failure line %v", l)
			}
		}
	}
	want := []string{"INFO registered in DNS", "WARN suspending DNS registration", "ERROR DNS withdraw failed"}
	if !slices.Equal(msgs, want) {
		t.Errorf("log messages %q, want %q", msgs, want)
	}
}

func TestTCPOnly(t *testing.T) {
	srv := startTestServer(t)
	cfg := baseConfig(t, srv.addr)
	cfg.TCP = true
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	if got := srv.next(5 * time.Second); got.net != "tcp" || got.tsig != nil || !got.signed {
		t.Errorf("update over %s (TSIG %v, signed %v), want a signed update over tcp", got.net, got.tsig, got.signed)
	}
	waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
}
