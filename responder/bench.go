package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
)

// benchResult is what one bench run measured.
type benchResult struct {
	Requests   int64
	Failures   int64
	Refusals   map[kms.HRESULT]int64
	Elapsed    time.Duration
	Latencies  []time.Duration // sorted
	FirstError error
}

func (r *benchResult) percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("bench", stderr)
	var f clientFlags
	server := fs.String("server", "", "KMS host `HOST:PORT`")
	conns := fs.Int("connections", 1, "concurrent client connections")
	requests := fs.Int("requests", 10000, "total requests to send")
	perRequest := fs.Bool("new-connection-per-request", false, "open a new TCP connection (and bind) for every request, as Windows clients do")
	distinct := fs.Int("clients", 0, "cycle through this many distinct client machine IDs (0: a new one per request); each one adds to the host's count")
	allowRemote := fs.Bool("allow-remote", false, "allow a target that is not on loopback (every distinct client of the run adds to that host's count for 30 days)")
	f.bind(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	if *server == "" || *conns < 1 || *requests < 1 {
		return exitUsage, usagef("need --server, --connections >= 1 and --requests >= 1")
	}
	if f.product == "" && f.app == "" {
		f.product = "Windows 10/11 Enterprise"
	}
	cat, err := loadCatalog(f.catalogFile)
	if err != nil {
		return exitUsage, usageError{err}
	}
	p, err := f.resolveProduct(cat)
	if err != nil {
		return exitUsage, err
	}
	var cmids []guid.GUID
	for range *distinct {
		cmids = append(cmids, kmsclient.RandomCMID())
	}
	addr := withDefaultPort(*server, strconv.Itoa(dcerpc.DefaultPort))
	if err := benchTargetAllowed(ctx, addr, *allowRemote); err != nil {
		return exitUsage, err
	}
	added := *requests
	if *distinct > 0 && *distinct < added {
		added = *distinct
	}
	fmt.Fprintf(stderr, "bench: this run adds up to %d distinct clients to %s's count (they stay counted for 30 days)\n", added, addr)
	fmt.Fprintf(stderr, "bench: %d requests, %d connections, V%d, %s, %s connections\n", *requests, *conns, p.Protocol, p.Name,
		map[bool]string{true: "per-request", false: "persistent"}[*perRequest])
	res := benchmark(ctx, benchPlan{addr: addr, product: p, conns: *conns, requests: *requests, perRequest: *perRequest,
		cmids: cmids, flags: f, progress: stderr})
	fmt.Fprintf(stdout, "requests:     %d answered and verified, %d failed, in %.2fs\n", res.Requests, res.Failures, res.Elapsed.Seconds())
	fmt.Fprintf(stdout, "throughput:   %.0f activations/s\n", float64(res.Requests)/res.Elapsed.Seconds())
	fmt.Fprintf(stdout, "latency:      p50 %s  p99 %s  p99.9 %s\n", res.percentile(0.50), res.percentile(0.99), res.percentile(0.999))
	for h, n := range res.Refusals {
		fmt.Fprintf(stdout, "host refused: %d × %s\n", n, h)
	}
	if res.FirstError != nil {
		fmt.Fprintf(stdout, "first error:  %v\n", res.FirstError)
	}
	if res.Failures > 0 {
		return exitError, nil
	}
	return exitOK, nil
}

type benchPlan struct {
	addr       string
	product    kmsclient.Product
	conns      int
	requests   int
	perRequest bool
	cmids      []guid.GUID
	flags      clientFlags
	progress   io.Writer
}

func benchmark(ctx context.Context, plan benchPlan) *benchResult {
	var (
		next      atomic.Int64
		done      atomic.Int64
		failed    atomic.Int64
		mu        sync.Mutex
		res       = &benchResult{Refusals: map[kms.HRESULT]int64{}}
		latencies = make([][]time.Duration, plan.conns)
	)
	start := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				fmt.Fprintf(plan.progress, "bench: %d/%d answered, %d failed, %.0f/s\n", done.Load(), plan.requests, failed.Load(),
					float64(done.Load())/time.Since(start).Seconds())
			}
		}
	}()
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if res.FirstError == nil {
			res.FirstError = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range plan.conns {
		wg.Go(func() {
			var c *dcerpc.Client
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(plan.requests) {
					return
				}
				if c == nil {
					var err error
					c, err = dcerpc.Dial(ctx, "tcp", plan.addr, dcerpc.ClientConfig{DisableNDR64: !plan.flags.ndr64, Timeout: plan.flags.timeout})
					if err != nil {
						fail(err)
						continue
					}
				}
				cmid := kmsclient.RandomCMID()
				if len(plan.cmids) > 0 {
					cmid = plan.cmids[int(n)%len(plan.cmids)]
				}
				req := kmsclient.NewRequest(plan.product, plan.product.Protocol, cmid, "bench", time.Now())
				t0 := time.Now()
				out, err := kmsclient.Activate(ctx, c, req, nil)
				switch {
				case out != nil && out.Status != kms.OK:
					mu.Lock()
					res.Refusals[out.Status]++
					mu.Unlock()
					fail(out.Status)
				case err != nil:
					fail(err)
					c.Close()
					c = nil
					continue
				default:
					latencies[w] = append(latencies[w], time.Since(t0))
					done.Add(1)
				}
				if plan.perRequest {
					c.Close()
					c = nil
				}
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	res.Elapsed = time.Since(start)
	res.Requests = done.Load()
	res.Failures = failed.Load()
	for _, l := range latencies {
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies)
	return res
}

// benchTargetAllowed refuses a target outside loopback unless allowRemote:
// a bench run's clients are real to the host, which counts them (and so
// activates every client behind it) as if they were machines.
func benchTargetAllowed(ctx context.Context, addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--server %q: %v", addr, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("--server %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return usagef("--server %s is not on loopback (%s): bench sends real activations that add clients to its count; "+
				"run it against a test host, or add --allow-remote if that is what you want", host, ip)
		}
	}
	return nil
}
