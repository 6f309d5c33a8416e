//go:build unix

package inventory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/admin"
)

// TestListLeavesOutSlowReaderWaits: the work a listing's rest is measured
// from leaves out the time its writes waited for a slow reader, so that a
// reader that stalls does not lengthen the rests (and hold the export slot
// longer than it takes to read).
func TestListLeavesOutSlowReaderWaits(t *testing.T) {
	store := newTestLedger(t)
	store.workstation = "workstation-with-a-long-name-"
	const n = 40000 // about 8 MB of CSV: more than the sockets hold (tcp_wmem allows 4 MB)
	if err := store.activate(n); err != nil {
		t.Fatal(err)
	}
	// In the store now, so that no chunk's work includes applying them.
	ctx := context.Background()
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, store)
	var maxWork time.Duration
	svc.sleep = func(r *http.Request, work, d time.Duration) bool {
		maxWork = max(maxWork, work)
		return rest(r, d)
	}
	a := startAdmin(t, svc, admin.Options{})
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
