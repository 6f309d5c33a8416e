package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

const (
	windowsApp    = "55c92734-d682-4d71-983e-d6ec3f16059f"
	win10RetailID = "e1c51358-fe3e-4203-a4a2-3b6b20c9734e" // Windows 10/11 (Retail): lab host keys only
)

// TestProcessActivateMatrix activates V4, V5 and V6 over NDR32 and NDR64
// against the real serve process: every new CMID raises the shared Windows
// count by one, a repeated CMID leaves it unchanged, and Office counts on
// its own.
func TestProcessActivateMatrix(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--group", "office-ltsc-2024")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	var count uint32
	var epid string
	for _, proto := range []int{4, 5, 6} {
		for _, syn := range []dcerpc.Syntax{dcerpc.NDR32, dcerpc.NDR64} {
			name := fmt.Sprintf("V%d/%s", proto, syn)
			pp := win
			pp.Protocol = proto
			// NDR64 is used from the second call on a connection that offered it.
			ndr64, calls := syn == dcerpc.NDR64, 1
			if ndr64 {
				calls = 2
			}
			a, err := activateGo(ctx, p.Addr, pp, kmsclient.RandomCMID(), ndr64, calls)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			count++
			wantAnswer(t, name, a, count)
			if a.syntax != syn {
				t.Errorf("%s: answered over %s", name, a.syntax)
			}
			if a.out.Verdict == 0 {
				t.Errorf("%s: count %d activated a product needing 25", name, count)
			}
			if epid == "" {
				epid = a.out.Response.EPID
			} else if a.out.Response.EPID != epid {
				t.Errorf("%s: ePID %s, earlier %s", name, a.out.Response.EPID, epid)
			}
		}
	}

	// A repeated CMID (a renewal) is not a new client.
	cmid := kmsclient.RandomCMID()
	first, err := activateGo(ctx, p.Addr, win, cmid, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	count++
	wantAnswer(t, "new CMID", first, count)
	again, err := activateGo(ctx, p.Addr, win, cmid, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, "repeated CMID", again, count)

	// Office is counted separately: 1, 2 while Windows stays.
	office := testProduct(t, clientFlags{product: "Office LTSC Professional Plus 2024"})
	for i := uint32(1); i <= 2; i++ {
		a, err := activateGo(ctx, p.Addr, office, kmsclient.RandomCMID(), true, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, "Office", a, i)
		if a.out.Response.EPID == epid {
			t.Errorf("Office answered with the Windows group's ePID %s", epid)
		}
	}
	again, err = activateGo(ctx, p.Addr, win, cmid, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, "Windows after Office", again, count)
}

// TestProcessActivateCLI runs `activate` against serve: exit 2 below the
// threshold, 0 at it, 1 with 0xC004F042 for products the group does not
// cover and for retail counted IDs.
func TestProcessActivateCLI(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")

	// Server products need 5: clients 1-4 are told the count, the 5th activates.
	for i := 1; i <= 5; i++ {
		args := []string{"activate", "--server", p.Addr, "--product", "Windows Server 2025 Standard", "--json", "--cmid", "random"}
		if i%2 == 0 {
			args = append(args, "--ndr64=false")
		}
		stdout, stderr, code := runCLI(t, args...)
		var r activationReport
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("client %d: %v\nstdout: %s\nstderr: %s", i, err, stdout, stderr)
		}
		want := exitLowCount
		if i == 5 {
			want = exitOK
		}
		if code != want || r.CurrentCount != uint32(i) || r.RequiredCount != 5 || r.Activated != (i == 5) {
			t.Errorf("client %d: exit %d, count %d of %d, activated %t; want exit %d, count %d of 5", i, code, r.CurrentCount, r.RequiredCount, r.Activated, want, i)
		}
		if r.Protocol != 6 || r.EPID == "" || len(r.HwID) != 16 {
			t.Errorf("client %d: protocol %d, ePID %q, HwId %q", i, r.Protocol, r.EPID, r.HwID)
		}
	}

	// A client product shares the count but needs 25 (the text output, V4).
	stdout, _, code := runCLI(t, "activate", "--server", p.Addr, "--product", "Windows 10/11 Enterprise", "--protocol", "4", "--cmid", "random")
	if code != exitLowCount || !strings.Contains(stdout, "Current count:        6 (this client needs 25)") || !strings.Contains(stdout, "0xC004F038") {
		t.Errorf("Windows 11 client: exit %d, want 2 with count 6 of 25:\n%s", code, stdout)
	}

	refusals := []struct {
		name string
		args []string
		why  string // how the report explains the refusal
	}{
		{"Office not covered", []string{"--product", "Office LTSC Professional Plus 2024"}, "Activated by hosts of: office-ltsc-2024"},
		{"retail counted ID", []string{"--app", windowsApp, "--kms-id", win10RetailID}, "no host key group in the catalog activates it"},
		{"unknown counted ID", []string{"--app", windowsApp, "--kms-id", "01234567-89ab-cdef-0123-456789abcdef"}, "no host key group in the catalog activates it"},
	}
	for _, r := range refusals {
		stdout, stderr, code := runCLI(t, append([]string{"activate", "--server", p.Addr, "--cmid", "random"}, r.args...)...)
		if code != exitError || !strings.Contains(stdout, "0xC004F042") || !strings.Contains(stdout, r.why) {
			t.Errorf("%s: exit %d, want 1 with 0xC004F042 and %q:\n%s%s", r.name, code, r.why, stdout, stderr)
		}
	}

	// Refusals are not counted.
	stdout, _, code = runCLI(t, "activate", "--server", p.Addr, "--product", "Windows Server 2025 Datacenter", "--json", "--cmid", "random")
	var r activationReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != exitOK || r.CurrentCount != 7 {
		t.Errorf("after refusals: exit %d, count %d (%v), want exit 0 and count 7", code, r.CurrentCount, err)
	}
}

// TestProcessBenchCLI runs `bench` against serve: it verifies every
// answer, --clients cycles that many CMIDs, and refusals fail the run.
func TestProcessBenchCLI(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--log-level", "warn")
	stdout, stderr, code := runCLI(t, "bench", "--server", p.Addr, "--connections", "4", "--requests", "300", "--clients", "7")
	if code != exitOK || !strings.Contains(stdout, "300 answered and verified, 0 failed") || !strings.Contains(stdout, "activations/s") {
		t.Fatalf("bench: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := countOf(statusOf(t, p), "Windows"); n != 7 {
		t.Errorf("after bench --clients 7 the count is %d", n)
	}
	stdout, stderr, code = runCLI(t, "bench", "--server", p.Addr, "--requests", "50", "--new-connection-per-request", "--protocol", "4")
	if code != exitOK || !strings.Contains(stdout, "50 answered and verified, 0 failed") {
		t.Fatalf("bench per request: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, code = runCLI(t, "bench", "--server", p.Addr, "--requests", "20", "--product", "Office LTSC Professional Plus 2024")
	if code != exitError || !strings.Contains(stdout, "host refused: 20 × 0xC004F042") {
		t.Errorf("bench of a product the host refuses: exit %d\n%s", code, stdout)
	}
}
