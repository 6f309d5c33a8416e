package discover

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/kms"
)

// wordHost is a TCP host on loopback that writes one word to every
// connection: "OK", or an HRESULT such as "C004F042".
func wordHost(t *testing.T, word string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(word))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// deadHost returns a loopback address nothing listens on.
func deadHost(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

func target(name string, ap netip.AddrPort, extra ...string) Target {
	t := Target{Name: name, Port: ap.Port(), Addrs: []netip.Addr{ap.Addr()}}
	for _, a := range extra {
		t.Addrs = append(t.Addrs, netip.MustParseAddr(a))
	}
	return t
}

// speak dials addr and turns the host's word into a result or an error.
func speak(ctx context.Context, tg Target, addr netip.AddrPort) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	switch w := string(b); w {
	case "OK":
		return "served by " + tg.Name, nil
	case "C004F042":
		return "", kms.ErrKMSIDMismatch
	case "C004F06C":
		return "", kms.ErrInvalidTimestamp
	default:
		return "", errors.New("garbled reply " + w)
	}
}

func attemptsSummary(log []Attempt) []string {
	var out []string
	for _, a := range log {
		s := a.Target.Name + "@" + a.Addr.Addr().String()
		if !a.Addr.IsValid() {
			s = a.Target.Name + "@-"
		}
		switch {
		case a.Err == nil:
			s += " ok"
		case errors.Is(a.Err, kms.ErrKMSIDMismatch):
			s += " F042"
		case errors.Is(a.Err, ErrNoAddress):
			s += " noaddr"
		default:
			s += " fail"
		}
		out = append(out, s)
	}
	return out
}

func TestTryFailsOver(t *testing.T) {
	dead := deadHost(t)
	mismatch := wordHost(t, "C004F042")
	garbled := wordHost(t, "????")
	good := wordHost(t, "OK")
	never := wordHost(t, "OK")
	targets := []Target{
		{Name: "noaddr.", Port: 1688},
		target("dead.", dead),
		target("mismatch.", mismatch, "127.0.0.2"), // the second address must not be tried
		target("garbled.", garbled),
		target("good.", good),
		target("never.", never),
	}
	res, log, err := Try(context.Background(), targets, Limits{}, speak)
	if err != nil || res != "served by good." {
		t.Fatalf("Try = %q, %v", res, err)
	}
	want := []string{"noaddr.@- noaddr", "dead.@127.0.0.1 fail", "mismatch.@127.0.0.1 F042", "garbled.@127.0.0.1 fail", "good.@127.0.0.1 ok"}
	if got := attemptsSummary(log); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("attempts %q, want %q", got, want)
	}
	if s := log[2].String(); !strings.Contains(s, "mismatch:") || !strings.Contains(s, "0xC004F042") {
		t.Errorf("attempt text %q", s)
	}
	if s := log[4].String(); !strings.HasSuffix(s, ": served") {
		t.Errorf("attempt text %q", s)
	}
}

func TestTryNoneReachable(t *testing.T) {
	targets := []Target{target("a.", deadHost(t)), target("b.", deadHost(t)), {Name: "c.", Port: 1688}}
	_, log, err := Try(context.Background(), targets, Limits{}, speak)
	var h kms.HRESULT
	if !errors.As(err, &h) || h != kms.ErrNoKMSContacted {
		t.Fatalf("error %v, want 0xC004F074", err)
	}
	var te *TryError
	if !errors.As(err, &te) || len(te.Attempts) != 3 || len(log) != 3 {
		t.Fatalf("TryError %+v, log %d", te, len(log))
	}
	if !strings.Contains(err.Error(), "no KMS host could be contacted") || !strings.Contains(err.Error(), "a:") {
		t.Errorf("error text %q", err)
	}
	if _, _, err := Try(context.Background(), nil, Limits{}, speak); !errors.Is(err, kms.ErrNoKMSContacted) {
		t.Errorf("no targets: %v", err)
	}
}

func TestTryAllMismatch(t *testing.T) {
	targets := []Target{target("dead.", deadHost(t)), target("m1.", wordHost(t, "C004F042")), target("m2.", wordHost(t, "C004F042"))}
	_, log, err := Try(context.Background(), targets, Limits{}, speak)
	if !errors.Is(err, kms.ErrKMSIDMismatch) || len(log) != 3 {
		t.Fatalf("error %v after %d attempts, want 0xC004F042 after 3", err, len(log))
	}
}

func TestTryStopsOnOtherHRESULT(t *testing.T) {
	targets := []Target{target("skew.", wordHost(t, "C004F06C")), target("good.", wordHost(t, "OK"))}
	_, log, err := Try(context.Background(), targets, Limits{}, speak)
	var te *TryError
	if !errors.Is(err, kms.ErrInvalidTimestamp) || errors.As(err, &te) || len(log) != 1 {
		t.Fatalf("error %v after %d attempts, want the host's 0xC004F06C after 1", err, len(log))
	}
}

func TestTryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	targets := []Target{target("a.", deadHost(t)), target("b.", wordHost(t, "OK"))}
	calls := 0
	_, _, err := Try(ctx, targets, Limits{}, func(ctx context.Context, tg Target, ap netip.AddrPort) (string, error) {
		calls++
		cancel()
		return speak(ctx, tg, ap)
	})
	var te *TryError
	if !errors.Is(err, context.Canceled) || !errors.Is(err, kms.ErrNoKMSContacted) || !errors.As(err, &te) || calls != 1 {
		t.Fatalf("error %v after %d calls, want a TryError (0xC004F074, context.Canceled) after 1", err, calls)
	}
}

// TestTryLimits: the loop stops at the attempt cap and at the ctx's
// deadline (the time budget), whatever the number of targets and
// addresses: 128 targets x 16 blackholed addresses do not take
// 2048 x the per-attempt timeout.
func TestTryLimits(t *testing.T) {
	var many []Target
	for i := range 128 {
		tg := Target{Name: "t" + strconv.Itoa(i) + ".", Port: 1688}
		for j := range 16 {
			tg.Addrs = append(tg.Addrs, netip.AddrFrom4([4]byte{192, 0, 2, byte(j)}))
		}
		many = append(many, tg)
	}
	slow := func(d time.Duration) func(ctx context.Context, tg Target, ap netip.AddrPort) (string, error) {
		return func(ctx context.Context, tg Target, ap netip.AddrPort) (string, error) {
			select { // a blackholed address: no answer until the attempt's timeout
			case <-time.After(d):
				return "", errors.New("i/o timeout")
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
	}
	t.Run("attempt cap", func(t *testing.T) {
		_, log, err := Try(context.Background(), many, Limits{MaxAttempts: 16}, slow(0))
		var te *TryError
		if !errors.As(err, &te) || !errors.Is(err, ErrAttemptCap) || !errors.Is(err, kms.ErrNoKMSContacted) || len(log) != 16 {
			t.Fatalf("error %v after %d attempts, want 0xC004F074 stopped by the cap after 16", err, len(log))
		}
		if !strings.Contains(err.Error(), "attempt cap reached: 16 addresses tried") {
			t.Errorf("error text %q", err)
		}
	})
	t.Run("time budget", func(t *testing.T) {
		budget := errors.New("total time budget of 300ms spent")
		ctx, cancel := context.WithTimeoutCause(context.Background(), 300*time.Millisecond, budget)
		defer cancel()
		start := time.Now()
		_, log, err := Try(ctx, many, Limits{}, slow(50*time.Millisecond))
		took := time.Since(start)
		if !errors.Is(err, budget) || !errors.Is(err, kms.ErrNoKMSContacted) {
			t.Fatalf("error %v, want 0xC004F074 stopped by the budget", err)
		}
		if took > 5*time.Second || len(log) >= 2048 {
			t.Fatalf("took %s and %d attempts; the budget is 300ms", took, len(log))
		}
	})
	t.Run("no cap tries all", func(t *testing.T) {
		_, log, err := Try(context.Background(), many[:4], Limits{}, slow(0))
		var te *TryError
		if !errors.As(err, &te) || te.Stopped != nil || len(log) != 64 {
			t.Fatalf("error %v (stopped %v) after %d attempts, want every one of 64 tried", err, te, len(log))
		}
	})
}
