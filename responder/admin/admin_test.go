package admin

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
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

func TestCappedListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused, evicted atomic.Int32
	ln := newCappedListener(inner, 2, func() { refused.Add(1) }, func() { evicted.Add(1) })
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
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	wantAccept := func() net.Conn {
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	dial()
	a := wantAccept()
	dial()
	b := wantAccept()
	ln.track(a, http.StateActive)
	ln.track(b, http.StateActive)
	// At the cap with no idle connection: the third is closed by the server.
	c3 := dial()
	_ = c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection was served above the cap")
	}
	if refused.Load() != 1 || ln.open() != 2 {
		t.Fatalf("refused %d, open %d; want 1 and 2", refused.Load(), ln.open())
	}
	// An idle one makes room: it is closed, the new one accepted.
	ln.track(b, http.StateIdle)
	dial()
	wantAccept()
	if evicted.Load() != 1 || ln.open() != 2 {
		t.Fatalf("evicted %d, open %d; want 1 and 2", evicted.Load(), ln.open())
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("the evicted idle connection is still open")
	}
	ln.track(a, http.StateClosed)
	if ln.open() != 1 {
		t.Fatalf("open %d after a close, want 1", ln.open())
	}
}

// FuzzAdminHost: the Host header is attacker input. allowed never panics,
// and accepts a value only when it is empty, an IP literal or one of the
// configured names (with any port).
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
		if _, err := netip.ParseAddr(h); err == nil {
			return
		}
		if n := canonicalHost(h); n != "localhost" && n != "kms1.corp.example" {
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
