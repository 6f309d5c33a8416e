package resilience

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// TestDiskFullCountNeverAheadOfLedger runs the responder with its ledger
// on a full 8 MiB tmpfs: renewals of a few clients bring the log to the
// end of its preallocated space, then a wave of new clients arrives from
// many connections, so that multi-frame batches fail while smaller ones
// still fit. The responder is then frozen, its files copied (what kill -9
// leaves: nothing written is lost by it), killed, and started again on the
// copy: every count a client was told must be at most the count the
// restarted ledger holds.
func TestDiskFullCountNeverAheadOfLedger(t *testing.T) {
	data := t.TempDir()
	prefix := tmpfsPrefix(t, data, "8m")
	r := harness.StartResponderWith(t, harness.ResponderOptions{Prefix: prefix}, data, "--group", testGroup, "--group", "office-ltsc-2024")
	edition := func(name string, threshold uint32) kmsclient.Product {
		e, ok := catalog.Default().Edition(name)
		if !ok {
			t.Fatalf("edition %s not in the catalog", name)
		}
		return kmsclient.Product{Name: e.Name, AppID: e.AppID, KMSID: e.CountedID, SKUID: e.SKUID, Protocol: e.Protocol, Threshold: threshold}
	}
	// Office clients renew (their count is another application's); the
	// wave is of Windows clients, whose cap (50) leaves room for the
	// count to grow.
	office := edition("Office LTSC Professional Plus 2024", 5)
	win := edition("Windows 10/11 Enterprise", 25)
	root := fmt.Sprintf("/proc/%d/root", r.Cmd.Process.Pid)
	fill(t, filepath.Join(root, data, "filler"))

	// Many renewers at once make batches of many frames, so the first
	// one that does not fit leaves room for smaller ones.
	renewers := make([]guid.GUID, 32)
	for i := range renewers {
		renewers[i] = kmsclient.RandomCMID()
	}
	var mu sync.Mutex
	told := 0    // the highest count any answer carried
	answers := 0 // answered activations in the wave
	// run activates from workers persistent connections (a new one after
	// each unanswered request) until d has passed, or until the first
	// unanswered request when stopOnRefusal is set.
	run := func(d time.Duration, workers int, p kmsclient.Product, cmid func(int) guid.GUID, stopOnRefusal bool) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					c, err := dcerpc.Dial(ctx, "tcp", r.Addr, dcerpc.ClientConfig{Timeout: 5 * time.Second})
					if err != nil {
						continue
					}
					for ctx.Err() == nil {
						out, err := kmsclient.Activate(ctx, c, kmsclient.NewRequest(p, p.Protocol, cmid(w), "wave", time.Now()), rand.Reader)
						if err != nil || out.Status != kms.OK || out.Response == nil {
							if stopOnRefusal {
								cancel()
							}
							break
						}
						if !stopOnRefusal {
							mu.Lock()
							told = max(told, int(out.Response.CurrentCount))
							answers++
							mu.Unlock()
						}
					}
					c.Close()
				}
			}()
		}
		wg.Wait()
	}
	// Renewals until the log cannot grow.
	run(30*time.Second, len(renewers), office, func(w int) guid.GUID { return renewers[w] }, true)
	// The wave of new clients.
	run(3*time.Second, 16, win, func(int) guid.GUID { return kmsclient.RandomCMID() }, false)
	t.Logf("%d new clients answered on the full disk; highest count told %d", answers, told)

	// Freeze, copy what is on disk, kill -9.
	if err := r.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	saved := t.TempDir()
	entries, err := os.ReadDir(filepath.Join(root, data))
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if !ent.Type().IsRegular() || ent.Name() == "filler" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, data, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(saved, ent.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.Cmd.Process.Kill()
	<-r.Done

	r2 := harness.StartResponder(t, saved, "--group", testGroup)
	code, body := httpGet(r2.Admin, "/status")
	if code != http.StatusOK {
		t.Fatalf("/status after restart: %d %s", code, body)
	}
	var st struct {
		Counts []struct {
			Application string `json:"application"`
			Count       int    `json:"current_count"`
		} `json:"counts"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	held := -1
	for _, c := range st.Counts {
		if strings.Contains(c.Application, "Windows") {
			held = c.Count
		}
	}
	if held < 0 && told > 0 {
		t.Fatalf("/status has no Windows count after restart:\n%s", body)
	}
	t.Logf("ledger holds count %d after kill -9 and restart", held)
	if told > held {
		t.Fatalf("a client was told count %d, but the ledger holds %d after kill -9 and restart", told, held)
	}
}
