package resilience

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/test/harness"
)

// activationLoop activates once every interval until stopped and counts
// answered and failed attempts.
type activationLoop struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startActivationLoop(t *testing.T, addr string, interval time.Duration) *activationLoop {
	l := &activationLoop{stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			out, err := activate(ctx, t, addr)
			cancel()
			switch {
			case err != nil:
				l.failed.Add(1)
				l.lastErr.Store(err.Error())
			case out.Status != kms.OK:
				l.failed.Add(1)
				l.lastErr.Store(fmt.Sprintf("status %v", out.Status))
			default:
				l.ok.Add(1)
			}
			select {
			case <-l.stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *activationLoop) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// registerFailures returns the retry delays the responder logged for
// failed registration attempts, in order.
func registerFailures(t *testing.T, log string) []time.Duration {
	var out []time.Duration
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Msg     string `json:"msg"`
			RetryIn string `json:"retry_in"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Msg != "DNS register failed" {
			continue
		}
		d, err := time.ParseDuration(e.RetryIn)
		if err != nil {
			t.Fatalf("retry_in %q: %v", e.RetryIn, err)
		}
		out = append(out, d)
	}
	return out
}

// TestDNSOutage registers at a DNS server that is down at start, then up,
// then slow, then restarted on the same port: activations are answered
// throughout, failed registrations are retried with growing delays, and the
// registration is sent again each time the server comes back.
func TestDNSOutage(t *testing.T) {
	dnsSrv := startDNSStub(t)
	dnsSrv.stop() // unreachable: nothing listens on its port
	r := harness.StartResponderWith(t, harness.ResponderOptions{Prefix: nil, Env: []string{tsigEnv()}}, t.TempDir(), append([]string{"--group", testGroup}, dnsSrv.registrationFlags("2s")...)...)
	loop := startActivationLoop(t, r.Addr, 100*time.Millisecond)

	// Down: at least three failed attempts, spaced by growing delays.
	deadline := time.Now().Add(10 * time.Second)
	for len(registerFailures(t, r.Stderr.String())) < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	delays := registerFailures(t, r.Stderr.String())
	t.Logf("retry delays while the server was down: %v", delays)
	if len(delays) < 3 {
		t.Fatalf("%d failed registration attempts logged in 10s, want 3", len(delays))
	}
	if delays[2] <= delays[0] {
		t.Errorf("retry delay did not grow: %v", delays)
	}

	// Up: the registration arrives.
	back := time.Now()
	if err := dnsSrv.start(); err != nil {
		t.Fatalf("restarting the DNS stub on %s: %v", dnsSrv.addr, err)
	}
	if _, ok := dnsSrv.waitFor(back, 35*time.Second, func(u update) bool { return u.register && u.tsigOK }); !ok {
		t.Fatal("no registration after the DNS server came up")
	}
	t.Logf("registered %v after the server came up", time.Since(back).Round(time.Millisecond))

	// Slow: answers take longer than the responder waits.
	dnsSrv.setDelay(4 * time.Second)
	time.Sleep(3 * time.Second)
	dnsSrv.setDelay(0)

	// Restart on the same port.
	dnsSrv.stop()
	time.Sleep(2 * time.Second)
	back = time.Now()
	if err := dnsSrv.start(); err != nil {
		t.Fatalf("restarting the DNS stub on %s: %v", dnsSrv.addr, err)
	}
	if _, ok := dnsSrv.waitFor(back, 35*time.Second, func(u update) bool { return u.register && u.tsigOK }); !ok {
		t.Fatal("no registration after the DNS server restarted")
	}
	t.Logf("registered again %v after the restart", time.Since(back).Round(time.Millisecond))

	loop.halt()
	t.Logf("activations during the outages: %d answered, %d failed", loop.ok.Load(), loop.failed.Load())
	if n := loop.failed.Load(); n != 0 {
		t.Errorf("%d activations failed while the DNS server was down, slow or restarting: %v", n, loop.lastErr.Load())
	}
	if loop.ok.Load() < 20 {
		t.Errorf("only %d activations answered", loop.ok.Load())
	}
}
