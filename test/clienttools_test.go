package test

import (
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestClientToolsCountThisMachineOnce: activate and discover send
// this machine's stable client ID by default, so running them again and
// again from one machine counts it once, as a Windows client is; --cmid
// random adds a client; discover --lookup-only adds none; bench refuses a
// target off loopback unless told.
func TestClientToolsCountThisMachineOnce(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 1m", 1))
	kms1 := startKMSResponder(t, c, "kms1", "1m", "windows-server-2019")
	waitMembers(t, c, 10*time.Second, kms1)

	lookup := runClient(t, "discover", "--dns", c.Addr(), "--domain", "example.test", "--lookup-only")
	if lookup.code != 0 || !strings.Contains(lookup.Server, "kms1.example.test") {
		t.Fatalf("discover --lookup-only: exit %d, server %q:\n%s", lookup.code, lookup.Server, lookup.raw)
	}
	if got := windowsCount(t, kms1); got != 0 {
		t.Fatalf("after discover --lookup-only: count %d, want 0 (no request sent)", got)
	}

	var cmid string
	for i, args := range [][]string{
		{"activate", "--server", kms1.Addr(), "--product", windowsServer},
		{"activate", "--server", kms1.Addr(), "--product", windowsServer},
		{"discover", "--dns", c.Addr(), "--domain", "example.test", "--product", windowsServer},
		{"discover", "--dns", c.Addr(), "--domain", "example.test", "--product", windowsServer},
	} {
		rep := runClient(t, args...)
		if !rep.answered() || rep.CurrentCount != 1 {
			t.Fatalf("run %d (%s): exit %d, count %d, want the host to answer with count 1:\n%s", i+1, args[0], rep.code, rep.CurrentCount, rep.raw)
		}
		if cmid == "" {
			cmid = rep.CMID
		} else if rep.CMID != cmid {
			t.Errorf("run %d: client machine ID %s, want the machine's stable %s", i+1, rep.CMID, cmid)
		}
		if !strings.Contains(rep.CMIDSource, "this machine's") {
			t.Errorf("run %d: cmid_source %q does not say the ID is this machine's", i+1, rep.CMIDSource)
		}
	}
	if got := windowsCount(t, kms1); got != 1 {
		t.Fatalf("after 4 runs from one machine: count %d, want 1", got)
	}

	if rep := runClient(t, "activate", "--server", kms1.Addr(), "--product", windowsServer, "--cmid", "random"); rep.CurrentCount != 2 || rep.CMID == cmid {
		t.Errorf("--cmid random: count %d with ID %s, want a new client (count 2):\n%s", rep.CurrentCount, rep.CMID, rep.raw)
	}

	// A target off loopback: refused before anything is sent (192.0.2.1 is
	// TEST-NET-1, never contacted: the check runs before any dial).
	out, code := runCLIText(t, "bench", "--server", "192.0.2.1:1688", "--requests", "5")
	if code != 64 || !strings.Contains(out, "--allow-remote") {
		t.Errorf("bench against a non-loopback target: exit %d, want 64 naming --allow-remote:\n%s", code, out)
	}
	out, code = runCLIText(t, "bench", "--server", kms1.Addr(), "--requests", "3", "--clients", "2", "--product", windowsServer)
	if code != 0 || !strings.Contains(out, "adds up to 2 distinct clients") {
		t.Errorf("bench --clients 2: exit %d, want 0 announcing 2 clients added:\n%s", code, out)
	}
	if got := windowsCount(t, kms1); got != 4 {
		t.Errorf("after bench --clients 2: count %d, want 4", got)
	}
}
