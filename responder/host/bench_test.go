package host

import (
	"context"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// benchHost returns a Windows Server 2025 host, with a ledger in a
// temporary directory when durable is set.
func benchHost(b *testing.B, durable bool) *Host {
	var store *ledger.Ledger
	if durable {
		l, err := ledger.Open(b.TempDir(), ledger.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		store = l
	}
	h, err := New(Config{Groups: []string{"windows-server-2025"}}, catalog.Default(), store, nil)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func benchInput(i int) Input {
	return Input{App: testkit.AppWindows, CountedID: testkit.KMSWin10, SKU: skuWS2025DC, CMID: testkit.CMID(i), NPolicy: 25,
		ClientTime: time.Now(), Workstation: "DESKTOP-0123456.corp.example.com", LicenseStatus: 1,
		ProtocolMajor: 6, Peer: netip.MustParseAddrPort("10.1.2.3:49152")}
}

// BenchmarkActivate measures decisions per second at 64 concurrent callers
// (as 64 client connections) with the durable ledger and without it, and
// the latency of one serial caller (bounded by the ledger's commit).
func BenchmarkActivate(b *testing.B) {
	for _, bc := range []struct {
		name     string
		durable  bool
		parallel bool
	}{
		{"ledger/serial", true, false},
		{"ledger/64conns", true, true},
		{"noledger/serial", false, false},
		{"noledger/64conns", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := benchHost(b, bc.durable)
			ctx := context.Background()
			var next atomic.Int64
			run := func() error {
				res, err := h.Activate(ctx, benchInput(int(next.Add(1))))
				if err == nil && res.HRESULT != kms.OK {
					b.Fatalf("refused: %s", res.Reason)
				}
				return err
			}
			b.ResetTimer()
			if !bc.parallel {
				for i := 0; i < b.N; i++ {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((64 + procs - 1) / procs)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := run(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "activations/s")
		})
	}
}
