package test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/audit"
	"github.com/kmsdns/kmsdns/test/harness"
)

// benchRecords is the size of the benchmark's SRV set.
const benchRecords = 1000

// startBenchLab serves _vlmcs._tcp.big.test with benchRecords SRV records,
// each naming its own loopback address: half answered by four real
// kms-responders (125 listen addresses each; a quarter of all records
// approved, a quarter rogue and identified), half with nothing listening.
func startBenchLab(b *testing.B) (*harness.CoreDNS, []netip.AddrPort) {
	b.Helper()
	port := harness.FreePort(b)
	var zone strings.Builder
	zone.WriteString("$ORIGIN big.test.\n@ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 30\n@ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\n")
	var addrs []netip.AddrPort
	listen := make([][]string, 4)
	for i := range benchRecords {
		a := netip.AddrFrom4([4]byte{127, 0, byte(10 + i/250), byte(1 + i%250)})
		ap := netip.AddrPortFrom(a, uint16(port))
		addrs = append(addrs, ap)
		name := fmt.Sprintf("h%04d", i)
		if i%4 == 0 {
			name = fmt.Sprintf("h%04d.ok", i) // approved
		}
		fmt.Fprintf(&zone, "_vlmcs._tcp 600 IN SRV 0 0 %d %s\n%s 600 IN A %s\n", port, name, name, a)
		if i%2 == 0 {
			listen[i/2%4] = append(listen[i/2%4], ap.String())
		}
	}
	dir := b.TempDir()
	for k := range listen {
		args := []string{"serve", "--group", "windows-server-2025", "--group", "office-2010", "--group", "office-ltsc-2024",
			"--data", filepath.Join(dir, strconv.Itoa(k)), "--metrics", "", "--max-connections", "1024", "--log-level", "warn"}
		for _, l := range listen[k] {
			args = append(args, "--listen", l)
		}
		harness.Start(b, dir, harness.ProcessBinary(b, "kms-responder"), args...)
	}
	for _, ap := range []netip.AddrPort{addrs[0], addrs[2], addrs[4], addrs[6]} { // one per responder
		harness.Eventually(b, 30*time.Second, "responders listening", func() bool {
			return dcerpc.Probe(context.Background(), ap.String(), time.Second) == nil
		})
	}
	c := harness.StartCoreDNS(b, "big.test:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.big.test big.test\n}\n", harness.File{Name: "db.big.test", Content: zone.String()})
	return c, addrs
}

// BenchmarkAudit1000Records audits 1000 records (SRV lookup, 1000 address
// lookups, 1000 probes, 250 identified rogue hosts) against real harness.CoreDNS
// and kms-responders, and reports it as a ratio of the same run's baseline:
// bare RPC binds to the same 1000 addresses at the same parallelism (the
// least any audit must do).
//
//	KMSDNS_BIN=$PWD/bin go test -run '^$' -bench Audit1000 -benchtime 3x ./test/
func BenchmarkAudit1000Records(b *testing.B) {
	c, addrs := startBenchLab(b)
	rules, err := audit.ParseRules([]string{"*.ok.big.test"})
	if err != nil {
		b.Fatal(err)
	}
	// The lab is on loopback at a run-time port: both must be allowed.
	ports, err := audit.ParsePorts([]string{"1024-65535"})
	if err != nil {
		b.Fatal(err)
	}
	cfg := audit.Config{Server: c.Addr(), Domains: []string{"big.test"}, Approver: rules, Timeout: 5 * time.Second,
		Ports: ports, ProbeLocal: true}
	var auditTime, baseTime time.Duration
	for b.Loop() {
		start := time.Now()
		sem := make(chan struct{}, audit.DefaultParallel)
		var wg sync.WaitGroup
		for _, ap := range addrs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				_ = dcerpc.Probe(context.Background(), ap.String(), 5*time.Second)
			})
		}
		wg.Wait()
		baseTime += time.Since(start)

		start = time.Now()
		rep, err := audit.Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		auditTime += time.Since(start)
		if n := len(rep.Findings); n != benchRecords || rep.Summary[audit.ClassHealthy] != 250 || rep.Summary[audit.ClassRogue] != 250 || rep.Summary[audit.ClassRogueDead]+rep.Summary[audit.ClassStale] != 500 {
			b.Fatalf("findings %d, summary %v", n, rep.Summary)
		}
	}
	b.ReportMetric(auditTime.Seconds()/float64(b.N), "audit-s/op")
	b.ReportMetric(baseTime.Seconds()/float64(b.N), "bind-only-s/op")
	b.ReportMetric(float64(auditTime)/float64(baseTime), "audit/bind-only")
}
