package resilience

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestSlowloris opens 10,000 connections from one address (the per-address
// cap lifted above that: this test is about the global cap), most idle and
// every tenth dripping one header byte at a time, against a responder capped
// at 4,000: the oldest idle connections are evicted to admit new ones, the
// drippers hit their deadlines, a well-behaved client activates within a few
// seconds throughout, the events are in /metrics, and the server's peak RSS
// stays bounded.
func TestSlowloris(t *testing.T) {
	const (
		total    = 10000
		maxConns = 4000
		hwmLimit = 300 << 10 // KiB
	)
	if got := raiseNoFile(t, 19000); got < total+1000 {
		t.Skipf("soft RLIMIT_NOFILE is %d; the test needs %d", got, total+1000)
	}
	r := harness.StartResponder(t, t.TempDir(), "--group", testGroup, "--max-connections", "4000", "--max-connections-per-address", "10000",
		"--first-pdu-timeout", "3s", "--idle-timeout", "5s", "--io-timeout", "2s")

	var (
		mu       sync.Mutex
		conns    []net.Conn
		dialErrs atomic.Int64
		stop     = make(chan struct{})
		drippers sync.WaitGroup
	)
	t.Cleanup(func() {
		close(stop)
		drippers.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	drip := func(c net.Conn) {
		defer drippers.Done()
		// A bind header, one byte per tick: never a whole PDU in time.
		hdr := []byte{5, 0, 11, 3, 0x10, 0, 0, 0, 0x74, 0}
		tk := time.NewTicker(400 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i = (i + 1) % len(hdr) {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(hdr[i : i+1]); err != nil {
				return
			}
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	const dialers = 8
	for w := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += dialers {
				c, err := net.DialTimeout("tcp4", r.Addr, 5*time.Second)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				if i%10 == 0 {
					drippers.Add(1)
					go drip(c)
				}
			}
		}()
	}
	// A well-behaved client while the flood is being opened.
	during := mustActivate(t, r.Addr, 5*time.Second)
	wg.Wait()
	opened := time.Since(start)
	after := mustActivate(t, r.Addr, 5*time.Second)
	if open := r.Metric(t, "kms_responder_open_connections"); open < 0 || open > maxConns {
		t.Errorf("kms_responder_open_connections = %v with %d connections offered, want at most the cap %d", open, total, maxConns)
	} else {
		t.Logf("open connections at the cap: %v", open)
	}
	t.Logf("%d connections opened in %v (%d dial errors); activation during the flood %v, after %v",
		total-dialErrs.Load(), opened.Round(time.Millisecond), dialErrs.Load(), during.Round(time.Millisecond), after.Round(time.Millisecond))
	if n := dialErrs.Load(); n > total/100 {
		t.Errorf("%d of %d dials failed: connections are refused, not evicted", n, total)
	}

	// Let the first-PDU and I/O deadlines fire, then activate again.
	time.Sleep(3500 * time.Millisecond)
	late := mustActivate(t, r.Addr, 5*time.Second)

	evicted, timeouts, refused := event(t, r, "conn_evicted"), event(t, r, "timeout"), event(t, r, "conn_refused")
	hwm := vmKiB(t, r, "VmHWM")
	t.Logf("evicted %v, timeouts %v, refused %v; activation after the deadlines %v; server VmHWM %d KiB",
		evicted, timeouts, refused, late.Round(time.Millisecond), hwm)
	if evicted < total-maxConns-total/10 {
		t.Errorf("conn_evicted = %v, want at least %d: the cap did not evict the oldest idle connections", evicted, total-maxConns-total/10)
	}
	if timeouts <= 0 {
		t.Errorf("timeout events = %v, want > 0 after the first-PDU deadline", timeouts)
	}
	if hwm > hwmLimit {
		t.Errorf("server VmHWM %d KiB exceeds %d KiB", hwm, hwmLimit)
	}
}
