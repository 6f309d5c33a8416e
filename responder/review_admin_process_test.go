package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestReviewAdminBusyFromFewLoopbackAddressesStarvesHealthz: any local user
// can bind any of 127.0.0.0/8, so the per-address cap of busy admin
// connections (4) does not bound one attacker: 16 connections from four
// loopback addresses, each trickling a request header one byte a second
// and reconnecting when the header timeout closes it, keep every slot of
// admin_max_connections busy. Expected safe behaviour: a /healthz or
// /metrics request that sends its request at once is still answered (for
// example: a reserve of slots for complete requests, or evicting the
// busy connection that has been sending its header longest).
func TestReviewAdminBusyFromFewLoopbackAddressesStarvesHealthz(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var connects atomic.Int64
	for i := range 16 {
		wg.Go(func() { holdBusy(ctx, p.Admin, byte(2+i%4), &connects) })
	}
	defer func() { cancel(); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); connects.Load() < 16 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	failed := 0
	for i := range 20 {
		path := "/healthz"
		if i%4 == 3 {
			path = "/metrics"
		}
		if code, err := promptGet(p.Admin, path); err != nil || code != http.StatusOK {
			failed++
			t.Logf("GET %s: %d %v", path, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failed > 0 {
		t.Errorf("%d of 20 prompt admin requests failed while 16 slow-header connections from 4 loopback addresses (%d connects) held the port", failed, connects.Load())
	}
}

// holdBusy connects to addr from 127.0.0.<from>, starts a request and
// sends one more header byte each second until the server closes the
// connection, then connects again, until ctx ends.
func holdBusy(ctx context.Context, addr string, from byte, connects *atomic.Int64) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, from)}, Timeout: time.Second}
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		connects.Add(1)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		done := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c); close(done) }()
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nX-A: ")
	trickle:
		for {
			select {
			case <-done:
				break trickle
			case <-ctx.Done():
				break trickle
			case <-time.After(time.Second):
				if _, err := io.WriteString(c, "a"); err != nil {
					break trickle
				}
			}
		}
		stop()
		c.Close()
	}
}
