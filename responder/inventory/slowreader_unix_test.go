//go:build unix

package inventory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/admin"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// TestListLeavesOutSlowReaderWaits: the work a listing's rest is measured
// from leaves out the time its writes waited for a slow reader, so that a
// reader that stalls does not lengthen the rests (and hold the export slot
// longer than it takes to read).
func TestListLeavesOutSlowReaderWaits(t *testing.T) {
	store, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	app := guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f")
	now := time.Now()
	const n = 40000 // about 8 MB of CSV: more than the sockets hold (tcp_wmem allows 4 MB)
	var last ledger.Pending
	for i := range n {
		cm := guid.MustParse(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		if last, err = store.Enqueue(ctx, ledger.Activation{Time: now.Add(time.Duration(i) * time.Millisecond), CMID: cm, App: app,
			Workstation: fmt.Sprintf("workstation-with-a-long-name-%d", i), Source: "192.0.2.1:5000", Counted: true, Cap: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := last.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// In the store now, so that no chunk's work includes applying them.
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cat := catalog.Default()
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(store, cat, h, 7*24*time.Hour, 2*time.Hour)
	var maxWork time.Duration
	svc.sleep = func(r *http.Request, work, d time.Duration) bool {
		maxWork = max(maxWork, work)
		return rest(r, d)
	}
	a, err := admin.Start(admin.Options{Addr: "127.0.0.1:0", MaxConns: 4,
		Registry: prometheus.NewRegistry(), Healthy: func() error { return nil }, Logger: slog.New(slog.DiscardHandler),
		Routes: []admin.Route{{Pattern: "GET /clients", Handler: svc.List}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	// A reader with a small receive buffer that reads nothing for a
	// while: the listing's writes block on it.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.DialContext(ctx, "tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /clients?format=csv HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", a.Addr()); err != nil {
		t.Fatal(err)
	}
	const stall = 600 * time.Millisecond
	start := time.Now()
	time.Sleep(stall)
	body, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(body, []byte("\n")); lines < n {
		t.Fatalf("read %d lines, want at least %d", lines, n)
	}
	if took := time.Since(start); took < stall {
		t.Fatalf("the listing took %v, less than the reader's stall", took)
	}
	if maxWork >= stall/2 {
		t.Fatalf("a chunk's work was measured as %v: the reader's %v stall was counted as work", maxWork, stall)
	}
}
