package publish

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestCheckDelay(t *testing.T) {
	for _, tc := range []struct {
		misses int
		want   time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {3, time.Second}, {4, 2 * time.Second}, {5, 4 * time.Second},
		{8, 32 * time.Second}, {9, 32 * time.Second}, {100, 32 * time.Second},
	} {
		if got := checkDelay(time.Second, tc.misses); got != tc.want {
			t.Errorf("checkDelay(1s, %d) = %s, want %s", tc.misses, got, tc.want)
		}
	}
}

// TestCheckReregistersWhenMissing: while the server lists this host, checks send no update;
// once it does not (a restarted server that lost its state), the Publisher registers again
// at once, counts a repair, and spreads its checks out while the record stays missing.
func TestCheckReregistersWhenMissing(t *testing.T) {
	srv := startTestServer(t)
	own := &dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 30},
		Priority: 10, Weight: 100, Port: 1688, Target: "kms1.example.test."}
	other := &dns.SRV{Hdr: own.Hdr, Port: 1688, Target: "kms2.example.test."}
	srv.set(func(u *updateServer) { u.listed = []dns.RR{other, own} })
	cfg := baseConfig(t, srv.addr)
	cfg.Lease = time.Hour // refreshes are 30 min apart: every update below is a repair
	cfg.CheckInterval = 50 * time.Millisecond
	p := newPublisher(t, cfg)
	stop := runPublisher(t, p)
	defer stop()
	srv.next(2 * time.Second) // the first registration
	srv.none(400 * time.Millisecond)
	srv.set(func(u *updateServer) {
		if u.queries < 2 {
			t.Errorf("%d checks in 400 ms at a 50 ms interval", u.queries)
		}
	})

	srv.set(func(u *updateServer) { u.listed = []dns.RR{other} }) // the server lost us
	lost := time.Now()
	srv.next(time.Second)
	if d := time.Since(lost); d > 800*time.Millisecond {
		t.Errorf("registered again %s after the record went missing; want about one check interval", d)
	}
	if r := p.State().Servers[0].Repairs; r != 1 {
		t.Errorf("Repairs = %d, want 1", r)
	}
	// Still missing (the server registers but does not list us): after three quick repairs
	// checks back off, so far fewer than 1.5 s / 50 ms = 30 repairs follow.
	n := 0
	end := time.After(1500 * time.Millisecond)
loop:
	for {
		select {
		case <-srv.got:
			n++
		case <-end:
			break loop
		}
	}
	if n < 3 || n > 10 {
		t.Errorf("%d repairs in 1.5 s while the record stays missing; want a few, backing off", n)
	}
	// Listed again: repairs stop.
	srv.set(func(u *updateServer) { u.listed = []dns.RR{own} })
	time.Sleep(2 * time.Second) // the backed-off check in flight may still repair once
	for len(srv.got) > 0 {
		<-srv.got
	}
	srv.none(500 * time.Millisecond)
}
