package admin

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAdminHostFilter(t *testing.T) {
	f := newHostFilter("127.0.0.1:9688", []string{"KMS1.corp.example."}, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {})
	named := newHostFilter("admin.corp.example:9688", nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {})
	for _, tc := range []struct {
		f    *hostFilter
		host string
		want bool
	}{
		{f, "127.0.0.1:9688", true},
		{f, "127.0.0.1", true},
		{f, "10.1.2.3:80", true}, // any IP literal: rebinding needs a name
		{f, "[::1]:9688", true},
		{f, "[::1]", true},
		{f, "localhost:9688", true},
		{f, "LOCALHOST.", true},
		{f, "kms1.corp.example:9688", true}, // --admin-host, case and dot ignored
		{f, "", true},                       // HTTP/1.0 without Host
		{f, "evil.example:9688", false},
		{f, "evil.example", false},
		{f, "localhost.evil.example", false},
		{f, "127.0.0.1.evil.example", false},
		{f, "sub.localhost", false},
		{f, "[evil.example]:9688", false},
		{f, "[fe80::1%eth0]:9688", false}, // a zone is free text; no client sends one
		{f, "0::%]", false},
		{f, "::1%evil.example", false},
		{named, "admin.corp.example:9688", true}, // the name in --metrics
		{named, "Admin.Corp.Example", true},
		{named, "corp.example", false},
	} {
		if got := tc.f.allowed(tc.host); got != tc.want {
			t.Errorf("%s: allowed(%q) = %t, want %t", tc.f.listen, tc.host, got, tc.want)
		}
	}
}

func TestAdminHostFilterResponds421(t *testing.T) {
	refused := 0
	f := newHostFilter("127.0.0.1:9688", nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { refused++ })
	h := f.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("secret ePID")) }))
	for _, tc := range []struct {
		host string
		code int
	}{{"rebind.evil.example:9688", http.StatusMisdirectedRequest}, {"127.0.0.1:9688", http.StatusOK}} {
		r := httptest.NewRequest("GET", "/status", nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("Host %q: status %d, want %d", tc.host, w.Code, tc.code)
		}
		if tc.code != http.StatusOK && (w.Body.String() == "secret ePID" || w.Header().Get("Connection") != "close") {
			t.Errorf("Host %q: body %q, headers %v", tc.host, w.Body.String(), w.Header())
		}
	}
	if refused != 1 {
		t.Errorf("counted %d refusals, want 1", refused)
	}
}

// TestCappedListener: at the cap a new connection closes the connection
// silent longest (nothing sent since it opened or went idle; bytes waiting
// unread count as sent), of any address, or is closed itself when none is
// silent; an address may have at most maxPerAddr connections sending a
// request or being answered, a further one is closed when it starts to.
func TestCappedListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	ln := newCappedListener(inner, 3, 2, func(r string) { mu.Lock(); counts[r]++; mu.Unlock() })
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	type pair struct{ client, server net.Conn }
	// connect dials from 127.0.0.<from> and, when admitted, returns the
	// server's side too.
	connect := func(from int, admitted bool) pair {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(from))}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if !admitted {
			return pair{client: c}
		}
		select {
		case sc := <-accepted:
			return pair{c, sc}
		case <-time.After(10 * time.Second):
			t.Fatal("no connection accepted")
			return pair{}
		}
	}
	// send writes a request line the server reads when read is set.
	send := func(p pair, read bool) error {
		t.Helper()
		if _, err := p.client.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
			t.Fatal(err)
		}
		if !read {
			return nil
		}
		_, err := p.server.Read(make([]byte, 64))
		return err
	}
	// closedByServer waits for the server to close the client's connection.
	closedByServer := func(p pair) bool {
		_ = p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := p.client.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	tracked := func(p pair) bool {
		ln.mu.Lock()
		defer ln.mu.Unlock()
		_, ok := ln.conns[p.server]
		return ok
	}
	want := func(step string, reasons map[string]int, open int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, r := range []string{reasonConnCap, reasonEvicted, reasonSlowHdr, reasonAddrCap} {
			if counts[r] != reasons[r] {
				t.Fatalf("%s: %s counted %d, want %d (all: %v)", step, r, counts[r], reasons[r], counts)
			}
		}
		if got := ln.open(); got != open {
			t.Fatalf("%s: %d open, want %d", step, got, open)
		}
	}

	// Silent connections fill the cap, from one address or several; the
	// next closes the oldest.
	a1, a2, a3 := connect(2, true), connect(2, true), connect(2, true)
	b1 := connect(3, true)
	if !closedByServer(a1) || tracked(a1) || !tracked(a2) {
		t.Fatal("the connection silent longest was not the one closed")
	}
	want("silent eviction", map[string]int{reasonEvicted: 1}, 3)

	// Two busy connections from .2 reach its cap: a third is closed when
	// it starts its request (after taking the place of b1, the only one
	// waiting: a2 and a3 are being answered).
	if send(a2, true) != nil || send(a3, true) != nil {
		t.Fatal("a request under the per-address cap was refused")
	}
	ln.track(a2.server, http.StateActive)
	ln.track(a3.server, http.StateActive)
	c := connect(2, true)
	if !closedByServer(b1) {
		t.Fatal("silent b1 was not closed to make room")
	}
	if err := send(c, true); err == nil || !closedByServer(c) {
		t.Fatalf("a third busy connection from one address was served (read err %v)", err)
	}
	want("address cap", map[string]int{reasonEvicted: 2, reasonAddrCap: 1}, 2)

	// Waiting connections are silent or sending headers; the oldest of
	// the larger group goes, silent on a tie: a3, idle, before d.
	d := connect(4, true)
	if send(d, true) != nil {
		t.Fatal("a request from another address was refused")
	}
	ln.track(a3.server, http.StateIdle)
	e := connect(5, true)
	if !closedByServer(a3) || !tracked(d) || !tracked(e) {
		t.Fatal("on a tie, the silent connection was not the one closed")
	}
	want("tie", map[string]int{reasonEvicted: 3, reasonAddrCap: 1}, 3)
	// Two sending headers (d, e) and one silent (the next): d, the oldest
	// of the larger group, goes.
	if send(e, true) != nil {
		t.Fatal("a request from another address was refused")
	}
	f := connect(6, true)
	if !closedByServer(d) || !tracked(e) || !tracked(f) {
		t.Fatal("the connection sending its header longest was not the one closed")
	}
	want("slow header", map[string]int{reasonEvicted: 3, reasonAddrCap: 1, reasonSlowHdr: 1}, 3)

	// With every connection being answered the new one is closed.
	if send(f, true) != nil {
		t.Fatal("a request from another address was refused")
	}
	ln.track(e.server, http.StateActive)
	ln.track(f.server, http.StateActive)
	if g := connect(7, false); !closedByServer(g) {
		t.Fatal("a connection above the cap was kept while every one was being answered")
	}
	want("cap, all active", map[string]int{reasonEvicted: 3, reasonAddrCap: 1, reasonSlowHdr: 1, reasonConnCap: 1}, 3)

	// Going idle after a response makes a connection silent again, and
	// frees its address's busy slot; bytes that arrived unread are not
	// silence: a2 went idle first but speaks, so e is closed.
	ln.track(a2.server, http.StateIdle)
	ln.track(e.server, http.StateIdle)
	_ = send(a2, false)
	connect(8, true)
	if !closedByServer(e) || !tracked(a2) {
		t.Fatal("a connection with unread request bytes was taken for silent")
	}
	want("idle and unread", map[string]int{reasonEvicted: 4, reasonAddrCap: 1, reasonSlowHdr: 1, reasonConnCap: 1}, 3)
	if _, err := a2.server.Read(make([]byte, 64)); err != nil {
		t.Fatalf("an idle connection's next request was refused: %v", err)
	}

	ln.track(a2.server, http.StateClosed)
	if ln.open() != 2 {
		t.Fatalf("open %d after a close, want 2", ln.open())
	}
}

// FuzzAdminHost: the Host header is attacker input. allowed never panics,
// and accepts a value only when it is empty, an IP literal without a zone
// or one of the configured names (with any port).
func FuzzAdminHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9688", "[::1]:80", "[::1]", "localhost", "LOCALHOST.:1", "evil.example",
		"[evil]:1", "a:b:c", "[fe80::1%eth0]:9", "::1", "", ":", "[]", "localhost:", "kms1.corp.example:443"} {
		f.Add(s)
	}
	hf := newHostFilter("127.0.0.1:9688", []string{"kms1.corp.example"}, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {})
	f.Fuzz(func(t *testing.T, host string) {
		if !hf.allowed(host) || host == "" {
			return
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" {
				t.Fatalf("allowed(%q): an IP address with a zone", host)
			}
			return
		}
		// The configured names: localhost, --admin-host and the host of
		// --metrics, which is an IP here, so that "127.0.0.1." passes as
		// that name with its trailing dot.
		if n := canonicalHost(h); n != "localhost" && n != "kms1.corp.example" && n != "127.0.0.1" {
			t.Fatalf("allowed(%q): %q is neither an IP address nor a configured name", host, n)
		}
	})
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	if ok, held := l.allow(t0); !ok || held != 0 {
		t.Fatalf("first line: %v %d", ok, held)
	}
	for i := range 5 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("line %d within the second let through", i)
		}
	}
	if ok, held := l.allow(t0.Add(time.Second)); !ok || held != 5 {
		t.Errorf("after a second: %v, held back %d, want true and 5", ok, held)
	}
}
