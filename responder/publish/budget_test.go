package publish

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// drain counts the updates the server has received so far.
func (u *updateServer) drain() int {
	n := 0
	for {
		select {
		case <-u.got:
			n++
		default:
			return n
		}
	}
}

// TestGrantedLeaseClampedToFloor: a server that grants a 1-second lease to
// a 40-second request is refreshed at 40-50% of LeaseFloor, not twice a
// second; the clamp is logged once; State does not claim a registration
// the server let lapse.
func TestGrantedLeaseClampedToFloor(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.maxLease = 1 })
	clk := newFakeClock()
	var buf testkit.SyncBuffer
	cfg := baseConfig(t, srv.addr)
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	p := newPublisher(t, cfg)
	runPublisher(t, p)

	for i := range 3 {
		d := clk.nextTimer(t)
		if d < LeaseFloor*2/5 || d > LeaseFloor/2 {
			t.Fatalf("refresh %d scheduled after %v, want %v-%v (40-50%% of the floor)", i, d, LeaseFloor*2/5, LeaseFloor/2)
		}
		if got := srv.drain(); got != 1 {
			t.Fatalf("refresh %d: %d updates sent, want 1", i, got)
		}
		st := p.State().Servers[0]
		if st.GrantedLease != time.Second {
			t.Errorf("State says granted %v, want the server's 1s", st.GrantedLease)
		}
		clk.Advance(2 * time.Second)
		if st := p.State().Servers[0]; st.Registered {
			t.Errorf("2s after a 1s grant State says registered: %+v", st)
		}
		clk.Advance(d - 2*time.Second)
	}
	var clamps int
	for _, l := range logLines(t, &buf) {
		if strings.HasPrefix(l["msg"].(string), "DNS server granted a lease below the floor") {
			clamps++
			if l["granted_lease"] != "1s" || l["floor"] != "30s" || l["level"] != "WARN" {
				t.Errorf("clamp line %v", l)
			}
		}
	}
	if clamps != 1 {
		t.Errorf("%d clamp lines logged over 3 registrations, want 1:\n%s", clamps, buf.String())
	}
}

// TestUpdateBudgetPerServer: a server that refuses every UPDATE, with the
// retry backoff at a millisecond, gets at most updateBurst UPDATEs at once
// and then one per 40% of the floor: over two simulated minutes, not
// thousands.
func TestUpdateBudgetPerServer(t *testing.T) {
	srv := startTestServer(t)
	srv.set(func(u *updateServer) { u.rcode = dns.RcodeRefused })
	clk := newFakeClock()
	var buf testkit.SyncBuffer
	cfg := baseConfig(t, srv.addr)
	cfg.Clock = clk
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 2*time.Millisecond
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	p := newPublisher(t, cfg)
	runPublisher(t, p)

	start := clk.Now()
	sent := 0
	for clk.Now().Sub(start) < 2*time.Minute {
		d := clk.nextTimer(t)
		sent += srv.drain()
		clk.Advance(d)
	}
	sent += srv.drain()
	refill := LeaseFloor * 2 / 5
	limit := updateBurst + int(2*time.Minute/refill) + 1
	t.Logf("%d UPDATEs in 2 simulated minutes (bound %d)", sent, limit)
	if sent > limit || sent < updateBurst {
		t.Errorf("%d UPDATEs sent to a refusing server in 2 minutes, want %d-%d", sent, updateBurst, limit)
	}
	if !strings.Contains(buf.String(), "holding back DNS UPDATEs to this server") {
		t.Errorf("the budget's hold was not logged:\n%s", buf.String())
	}
	if st := p.State().Servers[0]; st.Registered || st.Refusals["refused"] == 0 {
		t.Errorf("state: %+v", st)
	}
}

// TestRefusedRefreshIsNotRegistered: once the server refuses a refresh,
// State no longer says registered, although the last accepted lease has
// not run out; a later accepted refresh registers again.
func TestRefusedRefreshIsNotRegistered(t *testing.T) {
	srv := startTestServer(t)
	clk := newFakeClock()
	cfg := baseConfig(t, srv.addr)
	cfg.Clock = clk
	p := newPublisher(t, cfg)
	runPublisher(t, p)
	srv.next(5 * time.Second)
	waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })

	srv.set(func(u *updateServer) { u.rcode = dns.RcodeRefused })
	clk.Advance(clk.nextTimer(t))
	srv.next(5 * time.Second)
	st := waitState(t, p, "refused", func(s State) bool { return s.Servers[0].Failures > 0 })
	if s0 := st.Servers[0]; s0.Registered || !clk.Now().Before(s0.LeaseExpires) {
		t.Errorf("after a refused refresh, within the old lease: %+v", s0)
	}

	srv.set(func(u *updateServer) { u.rcode = dns.RcodeSuccess })
	clk.Advance(clk.nextTimer(t))
	srv.next(5 * time.Second)
	waitState(t, p, "registered again", func(s State) bool { return s.Servers[0].Registered })
}
