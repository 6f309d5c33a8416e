package serve

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// benchServer runs serve's request path in process (RPC server, handler,
// host policy, metrics, and the durable ledger when withLedger) on a
// loopback listener and returns its address.
func benchServer(b *testing.B, withLedger bool) (string, *ledger.Ledger) {
	b.Helper()
	cat := catalog.Default()
	var store *ledger.Ledger
	if withLedger {
		var err error
		if store, err = ledger.Open(b.TempDir(), ledger.Options{}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
	}
	log := slog.New(slog.DiscardHandler)
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, store, log)
	if err != nil {
		b.Fatal(err)
	}
	metrics := newResponderMetrics()
	srv := dcerpc.NewServer(&kmsHandler{host: h, log: log, metrics: metrics}, dcerpc.ServerConfig{
		Limits: dcerpc.Limits{MaxConns: 1024}, Logger: log, Observe: metrics.observeConn,
	})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	b.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		<-done
	})
	return ln.Addr().String(), store
}

// BenchmarkActivateV6 measures V6 activations of new clients through real
// loopback TCP, client verification included, on 1 and 64 persistent
// connections, with the durable ledger and without it (the fixed-decision
// baseline). The ledger-to-baseline ratio at 64 connections is the group
// commit's figure of merit.
func BenchmarkActivateV6(b *testing.B) {
	p := benchProduct(b, "Windows 10/11 Enterprise", 0)
	for _, conns := range []int{1, 64} {
		for _, withLedger := range []bool{false, true} {
			name := fmt.Sprintf("conns=%d/ledger=%t", conns, withLedger)
			b.Run(name, func(b *testing.B) {
				addr, store := benchServer(b, withLedger)
				if store != nil {
					// Group commit: activations per log write and sync.
					defer func() {
						if s := store.Stats(); s.Batches > 0 {
							b.ReportMetric(float64(s.Records)/float64(s.Batches), "acts/commit")
						}
					}()
				}
				ctx := context.Background()
				b.SetParallelism(max(1, conns/max(1, testingGOMAXPROCS())))
				if conns == 1 {
					benchSerial(b, ctx, addr, p)
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{})
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					for pb.Next() {
						activateBench(b, ctx, c, p)
					}
				})
			})
		}
	}
}

func benchSerial(b *testing.B, ctx context.Context, addr string, p kmsclient.Product) {
	c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		activateBench(b, ctx, c, p)
	}
}

func activateBench(b *testing.B, ctx context.Context, c *dcerpc.Client, p kmsclient.Product) {
	req := kmsclient.NewRequest(p, p.Protocol, kmsclient.RandomCMID(), "bench", time.Now())
	out, err := kmsclient.Activate(ctx, c, req, nil)
	if err != nil || out.Status != kms.OK {
		b.Errorf("activation: %v %+v", err, out)
	}
}

func testingGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }

// BenchmarkServeKMS measures the handler alone (decode, host policy without
// a ledger, metrics, encrypt the response) on a fixed V6 request, to show
// what one request allocates.
func BenchmarkServeKMS(b *testing.B) {
	cat := catalog.Default()
	log := slog.New(slog.DiscardHandler)
	h, err := host.New(host.Config{Groups: []string{"windows-server-2025"}}, cat, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	k := &kmsHandler{host: h, log: log, metrics: newResponderMetrics()}
	for _, proto := range []int{4, 5, 6} {
		b.Run(fmt.Sprintf("V%d", proto), func(b *testing.B) {
			p := benchProduct(b, "Windows 10/11 Enterprise", proto)
			wire, _, err := kms.BuildRequest(kmsclient.NewRequest(p, proto, kmsclient.RandomCMID(), "bench", time.Now()), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			peer := netip.MustParseAddrPort("127.0.0.1:50000")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if out, status := k.ServeKMS(ctx, peer, wire); status != 0 || len(out) == 0 {
					b.Fatalf("status %#x", status)
				}
			}
		})
	}
}

// benchProduct is the catalog's edition name as a client product sending
// protocol (0: the edition's, else 6) and N_Policy 25.
func benchProduct(b *testing.B, name string, protocol int) kmsclient.Product {
	b.Helper()
	e, ok := catalog.Default().Edition(name)
	if !ok {
		b.Fatalf("no edition %q in the catalog", name)
	}
	if protocol == 0 {
		protocol = cmp.Or(e.Protocol, 6)
	}
	return kmsclient.Product{Name: e.Name, AppID: e.AppID, KMSID: e.CountedID, SKUID: e.SKUID, Protocol: protocol, Threshold: 25}
}
