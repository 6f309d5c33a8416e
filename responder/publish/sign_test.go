package publish

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// signRecorder is a Sign hook answering every update with rcode and recording what it got.
type signRecorder struct {
	mu    sync.Mutex
	rcode int
	got   []*dns.Msg
}

func (s *signRecorder) sign(_ context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, m.Copy())
	r := new(dns.Msg)
	r.SetRcode(m, s.rcode)
	return r, nil
}

func (s *signRecorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// TestSignHookCarriesEveryUpdate: with Sign (GSS-TSIG), the registration and the withdrawal
// both go through the hook, unsigned by TSIG (the hook signs), and its refusal is the
// server's refusal.
func TestSignHookCarriesEveryUpdate(t *testing.T) {
	rec := &signRecorder{rcode: dns.RcodeSuccess}
	cfg := baseConfig(t, "127.0.0.1:53")
	cfg.Key, cfg.Sign = nil, rec.sign
	p := newPublisher(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !p.State().Servers[0].Registered {
		if time.Now().After(deadline) {
			t.Fatalf("not registered through the hook: %+v", p.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Withdraw(context.Background()); err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	rec.mu.Lock()
	got := rec.got
	rec.mu.Unlock()
	if len(got) < 2 {
		t.Fatalf("the hook saw %d updates, want the registration and the withdrawal", len(got))
	}
	for i, m := range got {
		if m.Opcode != dns.OpcodeUpdate || m.IsTsig() != nil {
			t.Errorf("update %d: opcode %d, TSIG %v; want an UPDATE left for the hook to sign", i, m.Opcode, m.IsTsig())
		}
	}
	if last := got[len(got)-1]; len(last.Ns) == 0 || last.Ns[0].Header().Class != dns.ClassNONE {
		t.Errorf("the last update is not the withdrawal: %v", last)
	}

	refused := &signRecorder{rcode: dns.RcodeRefused}
	cfg.Sign = refused.sign
	s, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.exchange(context.Background(), "127.0.0.1:53", s.registerMsg)
	var re *RcodeError
	if !errors.As(err, &re) || re.Rcode != dns.RcodeRefused {
		t.Errorf("a refusal through the hook: %v, want an RcodeError REFUSED", err)
	}
	if refused.count() != 1 {
		t.Errorf("the hook saw %d updates, want 1", refused.count())
	}

	cfg.Key = testKey(t, testSecret)
	if _, err := New(cfg); err == nil {
		t.Error("New took both Key and Sign")
	}
}
