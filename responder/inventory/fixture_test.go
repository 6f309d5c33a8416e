package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/admin"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// testLedger is a real ledger in a test's temporary directory, closed when
// the test ends, that activates new clients on request.
type testLedger struct {
	*ledger.Ledger
	// workstation is the name prefix of the clients activate adds.
	workstation string
	now         time.Time
	next        int // the next client's number
}

func newTestLedger(t *testing.T) *testLedger {
	t.Helper()
	store, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &testLedger{Ledger: store, workstation: "pc-", now: time.Now()}
}

// activate has the ledger acknowledge n new clients' activations, one
// millisecond apart, and waits until the last is durable.
func (l *testLedger) activate(n int) error {
	ctx := context.Background()
	app := guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f")
	var last ledger.Pending
	for range n {
		i := l.next
		cm := guid.MustParse(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		p, err := l.Enqueue(ctx, ledger.Activation{Time: l.now.Add(time.Duration(i) * time.Millisecond), CMID: cm, App: app,
			Workstation: fmt.Sprintf("%s%d", l.workstation, i), Source: "192.0.2.1:5000", Counted: true, Cap: 10})
		if err != nil {
			return err
		}
		last, l.next = p, i+1
	}
	return last.Wait(ctx)
}

// newTestService is the inventory of store with the default catalog.
func newTestService(t *testing.T, store *testLedger) *Service {
	t.Helper()
	cat := catalog.Default()
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(store.Ledger, cat, h, 7*24*time.Hour, 2*time.Hour)
}

// startAdmin serves svc's listing and summary on a loopback admin server
// with opts (address, limits and the rest filled in), shut down when the
// test ends.
func startAdmin(t *testing.T, svc *Service, opts admin.Options) *admin.Server {
	t.Helper()
	opts.Addr, opts.MaxConns = "127.0.0.1:0", 4
	opts.Registry, opts.Logger = prometheus.NewRegistry(), slog.New(slog.DiscardHandler)
	opts.Healthy = func() error { return nil }
	opts.Routes = []admin.Route{{Pattern: "GET /clients", Handler: svc.List}, {Pattern: "GET /clients/summary", Handler: svc.Summary}}
	a, err := admin.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a
}
