package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/admin"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// TestClientsOutlastsAdminTimeouts: a listing that takes longer than the
// admin server's read and write timeouts (shrunk to 30 ms here, 10 s in
// serve) still streams every row: each chunk renews the write deadline.
func TestClientsOutlastsAdminTimeouts(t *testing.T) {
	store, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	app := guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f")
	const n = 3000
	now := time.Now()
	for i := range n {
		cm := guid.MustParse(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		if _, err := store.Enqueue(ctx, ledger.Activation{Time: now.Add(time.Duration(i) * time.Millisecond), CMID: cm, App: app,
			Workstation: fmt.Sprintf("pc-%d", i), Source: "192.0.2.1:5000", Counted: true, Cap: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cat := catalog.Default()
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(store, cat, h, 7*24*time.Hour, 2*time.Hour)
	svc.pageSize = 10
	const timeout = 30 * time.Millisecond
	a, err := admin.Start(admin.Options{Addr: "127.0.0.1:0", MaxConns: 4, ReadTimeout: timeout, WriteTimeout: timeout,
		Registry: prometheus.NewRegistry(), Healthy: func() error { return nil }, Logger: slog.New(slog.DiscardHandler),
		Routes: []admin.Route{{Pattern: "GET /clients", Handler: svc.List}, {Pattern: "GET /clients/summary", Handler: svc.Summary}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	for _, path := range []string{"/clients", "/clients?format=csv", "/clients/summary"} {
		start := time.Now()
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v after %v", path, resp.StatusCode, err, took)
		}
		if took < 3*timeout {
			t.Fatalf("%s took %v: too fast to outlast the %v timeouts", path, took, timeout)
		}
		switch path {
		case "/clients":
			var d statusapi.ClientList
			if err := json.Unmarshal(body, &d); err != nil || len(d.Clients) != n || d.Error != "" {
				t.Fatalf("%s: %d rows, err %v %q after %v", path, len(d.Clients), err, d.Error, took)
			}
		case "/clients/summary":
			var s statusapi.ClientSummary
			if err := json.Unmarshal(body, &s); err != nil || s.Clients != n {
				t.Fatalf("%s: %+v %v", path, s, err)
			}
		default:
			if lines := len(splitLines(body)); lines != n+1 {
				t.Fatalf("%s: %d lines", path, lines)
			}
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// TestScanPaceFollowsActivations: a listing or summary rests busyPace
// after a chunk during which the ledger acknowledged an activation, and
// idlePace otherwise, so that an export takes a smaller share of a core
// from a host that is answering clients.
func TestScanPaceFollowsActivations(t *testing.T) {
	store, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	app := guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f")
	now := time.Now()
	activate := func(i int) {
		t.Helper()
		cm := guid.MustParse(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		if err := store.Record(ctx, ledger.Activation{Time: now.Add(time.Duration(i) * time.Millisecond), CMID: cm, App: app,
			Workstation: fmt.Sprintf("pc-%d", i), Source: "192.0.2.1:5000", Counted: true, Cap: 10}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 50
	for i := range n {
		activate(i)
	}
	cat := catalog.Default()
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(store, cat, h, 7*24*time.Hour, 2*time.Hour)
	svc.pageSize = 10
	var paces []int
	next := n
	svc.rested = func(pace int) {
		paces = append(paces, pace)
		// An activation answered between the first chunk and the second.
		if len(paces) == 1 {
			activate(next)
			next++
		}
	}
	a, err := admin.Start(admin.Options{Addr: "127.0.0.1:0", MaxConns: 4,
		Registry: prometheus.NewRegistry(), Healthy: func() error { return nil }, Logger: slog.New(slog.DiscardHandler),
		Routes: []admin.Route{{Pattern: "GET /clients", Handler: svc.List}, {Pattern: "GET /clients/summary", Handler: svc.Summary}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	for _, path := range []string{"/clients", "/clients?format=csv", "/clients/summary"} {
		paces = nil
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		// Five or more chunks of 10: a rest after each but the last.
		if len(paces) < 4 {
			t.Fatalf("%s: %d rests %v, want at least 4", path, len(paces), paces)
		}
		want := []int{idlePace, busyPace, idlePace, idlePace}
		for i, w := range want {
			if paces[i] != w {
				t.Fatalf("%s: paces %v, want %v first (an activation was answered after the first chunk only)", path, paces, want)
			}
		}
	}
}
