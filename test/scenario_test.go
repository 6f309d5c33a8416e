package test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestScenarioGroupsDiscovery: three responders with different host key groups
// register with one CoreDNS; discovery of a Windows client and of Office LTSC 2024 always lands
// on a responder whose group covers the product, skipping hosts that refuse with 0xC004F042.
func TestScenarioGroupsDiscovery(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 1h 2s 1h", 1))
	kms1 := startKMSResponder(t, c, "kms1", "1m", "windows-server-2019")
	kms2 := startKMSResponder(t, c, "kms2", "1m", "windows-server-2025", "office-ltsc-2024")
	kms3 := startKMSResponder(t, c, "kms3", "1m", "office-2016")
	waitMembers(t, c, 10*time.Second, kms1, kms2, kms3)

	for _, tc := range []struct {
		product string
		covers  map[string]bool // responders whose group activates the product
	}{
		{windowsClient, map[string]bool{"kms1": true, "kms2": true}},
		{officeLTSC2024, map[string]bool{"kms2": true}},
	} {
		t.Run(tc.product, func(t *testing.T) {
			served := map[string]int{}
			skipped, direct := 0, 0 // refusals skipped; discoveries whose first try served
			// Random orders: go on until both orders occurred (at most 30 rounds).
			for i := 0; i < 30 && (i < 6 || skipped == 0 || direct == 0); i++ {
				rep := discoverOnce(t, c, tc.product)
				if !rep.answered() || !tc.covers[rep.ServedBy()] {
					t.Fatalf("discovery %d: exit %d, served by %q; want a host of %v:\n%s", i, rep.code, rep.ServedBy(), tc.covers, rep.raw)
				}
				if len(rep.Targets) != 3 {
					t.Errorf("discovery %d: %d targets, want all 3: %v", i, len(rep.Targets), rep.Targets)
				}
				served[rep.ServedBy()]++
				if len(rep.Attempts) == 1 {
					direct++
				}
				// Every attempt before the last is a host that cannot serve the product,
				// skipped for 0xC004F042; the last is the one that served.
				last := rep.Attempts[len(rep.Attempts)-1]
				if !last.Served || !strings.HasPrefix(last.Target, rep.ServedBy()+".example.test") {
					t.Errorf("discovery %d: last attempt %q is not the serving host %s", i, last, rep.Server)
				}
				for _, a := range rep.Attempts[:len(rep.Attempts)-1] {
					host, _, _ := strings.Cut(a.Target, ".")
					if tc.covers[host] || a.HRESULT != "0xC004F042" {
						t.Errorf("discovery %d: skipped %q; want only non-covering hosts skipped for 0xC004F042", i, a)
					}
					skipped++
				}
			}
			t.Logf("%s: served %v; %d refusals skipped; %d served at the first try", tc.product, served, skipped, direct)
			if skipped == 0 || direct == 0 {
				t.Errorf("30 random orders did not produce both orders (refusal first and served first)")
			}
		})
	}
}

// TestScenarioFailover: kill -9 the responder that serves during repeated
// discoveries. Every later discovery is answered by a covering host; only those that began
// while DNS still listed the dead host try it (and fail over); the time until DNS drops it
// is logged and bounded by the probe settings (2 × 200 ms + 300 ms).
func TestScenarioFailover(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 1h 2s 1h", 1))
	rs := map[string]*kmsResponder{
		"kms1": startKMSResponder(t, c, "kms1", "1m", "windows-server-2019"),
		"kms2": startKMSResponder(t, c, "kms2", "1m", "windows-server-2025", "office-ltsc-2024"),
		"kms3": startKMSResponder(t, c, "kms3", "1m", "office-2016"),
	}
	waitMembers(t, c, 10*time.Second, rs["kms1"], rs["kms2"], rs["kms3"])
	covers := map[string]bool{"kms1": true, "kms2": true}

	var (
		killed     *kmsResponder
		killedAt   time.Time
		removed    = make(chan time.Time, 1)
		afterGone  int // discoveries that began after DNS dropped the killed host
		failedOver int // discoveries that tried the killed host and moved on
	)
	for i := 0; i < 200 && (i < 30 || afterGone < 5); i++ {
		var gone time.Time
		select {
		case gone = <-removed:
			removed <- gone
		default:
		}
		began := time.Now()
		rep := discoverOnce(t, c, windowsClient)
		if !rep.answered() || !covers[rep.ServedBy()] {
			t.Fatalf("discovery %d: exit %d, served by %q; want kms1 or kms2:\n%s", i, rep.code, rep.ServedBy(), rep.raw)
		}
		if killed == nil {
			if i == 5 { // kill the host that just served
				killed = rs[rep.ServedBy()]
				killed.Kill()
				killedAt = time.Now()
				go watchRemoval(t.Context(), c.Addr(), killed.Member(), removed)
			}
			continue
		}
		if rep.ServedBy() == killed.Name {
			t.Fatalf("discovery %d: served by %s, killed %s before:\n%s", i, killed.Name, time.Since(killedAt), rep.raw)
		}
		tried := false
		for _, a := range rep.Attempts {
			tried = tried || strings.HasPrefix(a.Target, killed.Name+".")
		}
		if tried {
			failedOver++
			if !gone.IsZero() {
				t.Errorf("discovery %d began %s after DNS dropped %s and still tried it: %v", i, began.Sub(gone), killed.Name, rep.Attempts)
			}
		}
		if !gone.IsZero() {
			afterGone++
		}
	}
	if killed == nil {
		t.Fatal("no host was killed")
	}
	var gone time.Time
	select {
	case gone = <-removed:
	case <-time.After(3 * time.Second):
		t.Fatalf("DNS still lists %s 3 s after kill -9", killed.Name)
	}
	took := gone.Sub(killedAt)
	t.Logf("kill -9 %s: DNS dropped it after %s; %d discoveries failed over from it, %d ran after removal",
		killed.Name, took.Round(time.Millisecond), failedOver, afterGone)
	if took > 1500*time.Millisecond {
		t.Errorf("removal took %s; want ≤ 2 × 200 ms + 300 ms plus slack (1.5 s)", took)
	}
}

// watchRemoval polls addr every 10 ms until member leaves the SRV answer and sends the time;
// it gives up after 5 s or when ctx ends.
func watchRemoval(ctx context.Context, addr, member string, removed chan<- time.Time) {
	end := time.Now().Add(5 * time.Second)
	for ctx.Err() == nil && time.Now().Before(end) {
		if set, err := srvTargets(addr); err == nil && !set[member] {
			removed <- time.Now()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestScenarioResponderRestartKeepsCounts: N distinct servers activate, the
// responder restarts (SIGTERM), its status still counts N and the next client gets N+1.
func TestScenarioResponderRestartKeepsCounts(t *testing.T) {
	const n = 3
	r := startKMSResponder(t, nil, "kms1", "", "windows-server-2019")
	activate := func() clientReport {
		t.Helper()
		rep := runClient(t, "activate", "--server", r.Addr(), "--product", windowsServer, "--cmid", "random")
		if !rep.answered() {
			t.Fatalf("activate: exit %d:\n%s", rep.code, rep.raw)
		}
		return rep
	}
	for i := 1; i <= n; i++ {
		if rep := activate(); rep.CurrentCount != uint32(i) {
			t.Fatalf("activation %d (a new client ID each): count %d, want %d:\n%s", i, rep.CurrentCount, i, rep.raw)
		}
	}
	if got := windowsCount(t, r); got != n {
		t.Fatalf("status before restart: count %d, want %d", got, n)
	}
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, r.Output())
	}
	r.start(t)
	if got := windowsCount(t, r); got != n {
		t.Errorf("status after restart: count %d, want %d (the ledger keeps them)", got, n)
	}
	if rep := activate(); rep.CurrentCount != n+1 {
		t.Errorf("first activation after restart: count %d, want %d:\n%s", rep.CurrentCount, n+1, rep.raw)
	}
}

// windowsCount is the responder's current count for the Windows application from `status --json`.
func windowsCount(t *testing.T, r *kmsResponder) int {
	t.Helper()
	s, err := statusJSON(t, r.Admin)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, c := range s.Counts {
		if strings.HasPrefix(c.Application, "Windows") {
			return c.Count
		}
	}
	t.Fatalf("status lists no Windows count: %+v", s)
	return 0
}

// TestScenarioCoreDNSRestartRelearns: harness.CoreDNS keeps no pool on disk; restarted
// on the same port it learns the responders again from their refreshes (lease 4 s: refreshed
// every 1.6–2 s) within one refresh interval plus a probe round.
func TestScenarioCoreDNSRestartRelearns(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 4s 2s 1m", 1))
	kms1 := startKMSResponder(t, c, "kms1", "4s", "windows-server-2019")
	kms2 := startKMSResponder(t, c, "kms2", "4s", "windows-server-2025", "office-ltsc-2024")
	waitMembers(t, c, 10*time.Second, kms1, kms2)

	c.Stop()
	c.Process = harness.Start(t, c.Dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	c.WaitServing(t, 10*time.Second)
	back := time.Now()
	first, err := srvTargets(c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	waitMembers(t, c, 6*time.Second, kms1, kms2)
	took := time.Since(back)
	t.Logf("restarted CoreDNS: first answer listed %d of 2, both again after %s", len(first), took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("pool re-learned after %s; want ≤ one refresh interval (2 s) + probe + slack (3 s)", took)
	}
	if rep := discoverOnce(t, c, officeLTSC2024); !rep.answered() || rep.ServedBy() != "kms2" {
		t.Errorf("discovery after the restart: exit %d, served by %q:\n%s", rep.code, rep.ServedBy(), rep.raw)
	}
}
