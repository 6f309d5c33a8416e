package resilience

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// tmpfsPrefix is harness.TmpfsPrefix, skipping the test when no tmpfs can be mounted.
func tmpfsPrefix(t *testing.T, dir, size string) []string {
	t.Helper()
	p, err := harness.TmpfsPrefix(dir, size)
	if err != nil {
		t.Skipf("the disk-full test needs a private mount namespace: %v", err)
	}
	return p
}

// fill is harness.Fill, failing the test on errors other than a full disk.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	n, err := harness.Fill(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// unanswered reports whether an activation attempt ended without any
// answer: no response and no host HRESULT (the connection was closed).
func unanswered(t *testing.T, addr string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := activate(ctx, t, addr)
	if err == nil {
		return false, fmt.Errorf("answered with status %v", out.Status)
	}
	if hr, ok := kmsclient.IsHostRefusal(err); ok {
		return false, fmt.Errorf("answered with HRESULT %v", hr)
	}
	return true, err
}

// TestDiskFull runs the responder with its ledger on a small tmpfs in a
// private mount namespace and registered at a DNS stub. Once the disk is
// full, activations are not answered at all (no response, no HRESULT),
// /healthz is 503, kms_responder_ledger_healthy is 0 and the SRV record is
// withdrawn; when space returns it answers again, reports healthy and
// registers again.
func TestDiskFull(t *testing.T) {
	data := t.TempDir()
	prefix := tmpfsPrefix(t, data, "16m")
	var filler string
	ledgerFault(t, prefix, data, storageFault{
		name: "disk full",
		induce: func(r *harness.Responder) string {
			// The test sees the namespace's tmpfs through the responder's root.
			filler = filepath.Join(fmt.Sprintf("/proc/%d/root", r.Cmd.Process.Pid), data, "filler")
			return fmt.Sprintf("filled %d bytes", fill(t, filler))
		},
		// A failed store commit can give back some of the space it took.
		keep: func(*harness.Responder) { fill(t, filler) },
		clear: func(*harness.Responder) {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// storageFault makes the responder's ledger writes fail and then succeed
// again.
type storageFault struct {
	name   string
	induce func(*harness.Responder) string // starts the fault; returns a note for the log
	keep   func(*harness.Responder)        // keeps it in force (may be nil)
	clear  func(*harness.Responder)        // ends it
}

// ledgerFault runs the responder (under prefix, if any) registered at a DNS
// stub and checks how it meets the fault f: activations unanswered (no
// response, no HRESULT) once the log cannot grow, /healthz 503,
// kms_responder_ledger_healthy 0, the SRV record withdrawn; after the fault
// clears it answers, reports healthy and registers again.
func ledgerFault(t *testing.T, prefix []string, data string, f storageFault) {
	dnsSrv := startDNSStub(t)
	r := harness.StartResponderWith(t, harness.ResponderOptions{Prefix: prefix, Env: []string{tsigEnv()}}, data, append([]string{"--group", testGroup}, dnsSrv.registrationFlags("60s")...)...)
	if _, ok := dnsSrv.waitFor(time.Time{}, 10*time.Second, func(u update) bool { return u.register && u.tsigOK }); !ok {
		t.Fatalf("no signed registration received: %+v", dnsSrv.received())
	}
	mustActivate(t, r.Addr, 5*time.Second)
	keep := func() {
		if f.keep != nil {
			f.keep(r)
		}
	}

	note := f.induce(r)
	full := time.Now()
	// Activations that fit the log's preallocated space are still
	// recorded and answered; the first that needs space is not, and from
	// then on nothing is answered.
	answered, err := pumpUntilRefused(t, r.Addr, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s; %d activations answered from preallocated space, then refused", f.name, note, answered)
	// A refused batch of several frames can leave room in the
	// preallocated log for a smaller one: a lone request may still be
	// recorded and answered. That tail is a few frames; after it, nothing.
	tail, refusedInARow := 0, 0
	for attempt := 0; refusedInARow < 3; attempt++ {
		if attempt == 100 {
			t.Fatalf("after 100 attempts under the fault, %d answered and never 3 refusals in a row", tail)
		}
		keep()
		if ok, _ := unanswered(t, r.Addr); ok {
			refusedInARow++
		} else {
			tail++
			refusedInARow = 0
		}
	}
	t.Logf("%d lone requests fitted the rest of the preallocated log after the first refusal", tail)
	if tail > 10 {
		t.Errorf("%d activations answered after the log could not grow: more than preallocated space holds", tail)
	}
	keep()
	if code, body := httpGet(r.Admin, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz under the fault: %d %q, want 503", code, body)
	}
	if v := r.Metric(t, "kms_responder_ledger_healthy"); v != 0 {
		t.Errorf("kms_responder_ledger_healthy under the fault = %v, want 0", v)
	}
	if _, ok := dnsSrv.waitFor(full, 5*time.Second, func(u update) bool { return u.withdraw && u.tsigOK }); !ok {
		t.Errorf("registration not withdrawn while the ledger is unhealthy: %+v", dnsSrv.received())
	}
	if v := r.Metric(t, "kms_responder_dns_registered"); v != 0 {
		t.Errorf("kms_responder_dns_registered while withdrawn = %v, want 0", v)
	}

	f.clear(r)
	freed := time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		var out *kmsclient.Outcome
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err = activate(ctx, t, r.Addr)
		cancel()
		if err == nil && out.Status == kms.OK {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no activation answered within 10s of the fault clearing: %v", err)
	}
	answering := time.Since(freed)
	// The store catches up with the log on its next background apply.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := httpGet(r.Admin, "/healthz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz 10s after recovery: %d %q", code, body)
		}
	}
	t.Logf("answering again %v after the fault cleared, healthy after %v",
		answering.Round(time.Millisecond), time.Since(freed).Round(time.Millisecond))
	if v := r.Metric(t, "kms_responder_ledger_healthy"); v != 1 {
		t.Errorf("kms_responder_ledger_healthy after recovery = %v, want 1", v)
	}
	if _, ok := dnsSrv.waitFor(freed, 5*time.Second, func(u update) bool { return u.register && u.tsigOK }); !ok {
		t.Errorf("registration not sent again after recovery: %+v", dnsSrv.received())
	}
	for deadline := time.Now().Add(5 * time.Second); r.Metric(t, "kms_responder_dns_registered") != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("kms_responder_dns_registered after recovery = %v, want 1", r.Metric(t, "kms_responder_dns_registered"))
			break
		}
	}
}

// pumpUntilRefused activates over persistent connections from four clients
// until one request gets no answer at all; it returns how many were
// answered before. A host HRESULT is an error: a full disk must not be
// answered with one.
func pumpUntilRefused(t *testing.T, addr string, limit time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	p := product(t)
	var answered atomic.Int64
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			for ctx.Err() == nil {
				c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{Timeout: 5 * time.Second})
				if err != nil {
					errc <- fmt.Errorf("dial: %w", err)
					return
				}
				for ctx.Err() == nil {
					req := kmsclient.NewRequest(p, p.Protocol, kmsclient.RandomCMID(), "diskfull", time.Now())
					out, err := kmsclient.Activate(ctx, c, req, rand.Reader)
					if err == nil && out.Status == kms.OK {
						answered.Add(1)
						continue
					}
					c.Close()
					if hr, ok := kmsclient.IsHostRefusal(err); ok {
						errc <- fmt.Errorf("full disk answered with HRESULT %v", hr)
					} else if err == nil {
						errc <- fmt.Errorf("full disk answered with status %v", out.Status)
					} else {
						errc <- nil
					}
					return
				}
				c.Close()
			}
			errc <- ctx.Err()
		}()
	}
	err := <-errc
	cancel()
	for range 3 {
		// The others stop on the cancel (or on a refusal of their own);
		// a HRESULT seen by any of them still counts.
		if e := <-errc; e != nil && err == nil && !errors.Is(e, context.Canceled) && !errors.Is(e, context.DeadlineExceeded) {
			err = e
		}
	}
	if err != nil {
		return int(answered.Load()), fmt.Errorf("after %d answered: %w", answered.Load(), err)
	}
	return int(answered.Load()), nil
}
