package test

import (
	"strings"
	"testing"
	"time"
)

// TestScenarioGroupsDiscovery (issue 5, e2e 1): three responders with different host key groups
// register with one CoreDNS; discovery of a Windows client and of Office LTSC 2024 always lands
// on a responder whose group covers the product, skipping hosts that refuse with 0xC004F042.
func TestScenarioGroupsDiscovery(t *testing.T) {
	c := StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 1h 2s 1h", 1))
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
				if !strings.HasPrefix(last, rep.ServedBy()+".example.test:") {
					t.Errorf("discovery %d: last attempt %q is not the serving host %s", i, last, rep.Server)
				}
				for _, a := range rep.Attempts[:len(rep.Attempts)-1] {
					host, _, _ := strings.Cut(a, ".")
					if tc.covers[host] || !strings.Contains(strings.ToUpper(a), "C004F042") {
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
