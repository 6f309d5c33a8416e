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

// TestScanPaceFollowsActivations: a listing or summary rests busyPace times
// its chunk's work after a chunk during which the host was busy (here: a
// thousand activations acknowledged between the first rest and the
// second), and idlePace times otherwise, so that an export takes a smaller
// share of a core from a host that is answering clients.
func TestScanPaceFollowsActivations(t *testing.T) {
	if busyPace <= idlePace {
		t.Fatalf("busyPace %d must rest longer than idlePace %d", busyPace, idlePace)
	}
	store, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	app := guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f")
	now := time.Now()
	next := 0
	// activate has the ledger acknowledge n new clients' activations.
	activate := func(n int) error {
		var last ledger.Pending
		for range n {
			cm := guid.MustParse(fmt.Sprintf("%08x-0000-4000-8000-%012x", next, next))
			p, err := store.Enqueue(ctx, ledger.Activation{Time: now.Add(time.Duration(next) * time.Millisecond), CMID: cm, App: app,
				Workstation: fmt.Sprintf("pc-%d", next), Source: "192.0.2.1:5000", Counted: true, Cap: 10})
			if err != nil {
				return err
			}
			last, next = p, next+1
		}
		return last.Wait(ctx)
	}
	if err := activate(50); err != nil {
		t.Fatal(err)
	}
	cat := catalog.Default()
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(store, cat, h, 7*24*time.Hour, 2*time.Hour)
	svc.pageSize = 10
	type restTaken struct{ work, d time.Duration }
	var rests []restTaken
	var activateErr error
	svc.sleep = func(r *http.Request, work, d time.Duration) bool {
		rests = append(rests, restTaken{work, d})
		// The host turns busy between the first chunk and the second.
		if len(rests) == 1 {
			activateErr = activate(1000)
		}
		return rest(r, d)
	}
	a, err := admin.Start(admin.Options{Addr: "127.0.0.1:0", MaxConns: 4,
		Registry: prometheus.NewRegistry(), Healthy: func() error { return nil }, Logger: slog.New(slog.DiscardHandler),
		Routes: []admin.Route{{Pattern: "GET /clients", Handler: svc.List}, {Pattern: "GET /clients/summary", Handler: svc.Summary}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	// limit=50 keeps each scan to the first 50 clients (newest first),
	// whatever the earlier scans added.
	for _, path := range []string{"/clients?limit=50", "/clients?format=csv&limit=50", "/clients/summary"} {
		rests = nil
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		if activateErr != nil {
			t.Fatal(activateErr)
		}
		want := []int{idlePace, busyPace, idlePace, idlePace}
		if len(rests) < len(want) {
			t.Fatalf("%s: %d rests %v, want at least %d", path, len(rests), rests, len(want))
		}
		for i, pace := range want {
			if r := rests[i]; r.d != max(r.work, 0)*time.Duration(pace) {
				t.Fatalf("%s: rest %d was %v after %v of work, want %d times the work (rests %v)", path, i+1, r.d, r.work, pace, rests)
			}
		}
	}
}

// TestBusy: what counts as a host busy answering clients.
func TestBusy(t *testing.T) {
	for _, c := range []struct {
		n       uint64
		elapsed time.Duration
		pending int
		want    bool
	}{
		{0, 30 * time.Millisecond, 0, false},
		{1, 30 * time.Millisecond, 0, false},  // a trickle: 33 a second
		{29, 30 * time.Millisecond, 0, false}, // 967 a second
		{30, 30 * time.Millisecond, 0, true},  // 1000 a second
		{1000, time.Second, 0, true},
		{999, time.Second, 0, false},
		{1, 0, 0, true}, // acknowledged in no measurable time
		{0, 0, 0, false},
		{0, time.Second, busyPending, true}, // the writer waits for the applier
		{0, time.Second, busyPending - 1, false},
		{^uint64(0), time.Millisecond, 0, true},
	} {
		if got := busy(c.n, c.elapsed, c.pending); got != c.want {
			t.Errorf("busy(%d, %v, %d) = %v, want %v", c.n, c.elapsed, c.pending, got, c.want)
		}
	}
}
