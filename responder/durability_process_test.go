package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
	"github.com/kmsdns/kmsdns/test/harness"
)

// statusOf fetches `status --json` from a running serve.
func statusOf(t testing.TB, p *harness.Responder) statusapi.Report {
	t.Helper()
	stdout, stderr, code := runCLI(t, "status", "--admin", p.Admin, "--json")
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	var r statusapi.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	return r
}

func countOf(r statusapi.Report, app string) int {
	for _, c := range r.Counts {
		if c.Application == app {
			return c.Count
		}
	}
	return -1
}

// TestProcessRestartKeepsState stops serve with SIGTERM and starts it again
// on the same data directory: counts, ePIDs and HwId survive.
func TestProcessRestartKeepsState(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	office := testProduct(t, clientFlags{product: "Office LTSC Professional Plus 2024"})
	args := []string{"--group", "windows-server-2025", "--group", "office-ltsc-2024"}

	p := harness.StartResponder(t, data, args...)
	known := kmsclient.RandomCMID()
	var before goActivation
	for i, cmid := range []guid.GUID{known, kmsclient.RandomCMID(), kmsclient.RandomCMID()} {
		a, err := activateGo(ctx, p.Addr, win, cmid, true, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, "before restart", a, uint32(i+1))
		before = a
	}
	if _, err := activateGo(ctx, p.Addr, office, kmsclient.RandomCMID(), true, 1); err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, p)
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.Stderr.String())
	}

	p = harness.StartResponder(t, data, args...)
	after := statusOf(t, p)
	if countOf(after, "Windows") != 3 || countOf(after, "Office 2013 and later") != 1 {
		t.Errorf("after restart counts %+v, want Windows 3 and Office 1", after.Counts)
	}
	if after.HwID != st.HwID || len(after.Groups) != 2 || after.Groups[0].EPID != st.Groups[0].EPID || after.Groups[1].EPID != st.Groups[1].EPID {
		t.Errorf("identity changed across restart: HwId %s→%s, groups %+v→%+v", st.HwID, after.HwID, st.Groups, after.Groups)
	}
	a, err := activateGo(ctx, p.Addr, win, known, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, "known CMID after restart", a, 3)
	if a.out.Response.EPID != before.out.Response.EPID || a.out.Response.HwID != before.out.Response.HwID {
		t.Errorf("answer after restart: ePID %s HwId %x, before %s %x", a.out.Response.EPID, a.out.Response.HwID,
			before.out.Response.EPID, before.out.Response.HwID)
	}
	a, err = activateGo(ctx, p.Addr, win, kmsclient.RandomCMID(), true, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, "new CMID after restart", a, 4)
}

// answeredSet collects the CMIDs whose activation a client saw answered.
type answeredSet struct {
	mu   sync.Mutex
	ids  []guid.GUID
	errs []error
}

func (s *answeredSet) add(id guid.GUID) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *answeredSet) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *answeredSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// stream runs workers that activate new CMIDs over persistent connections
// until the server goes away. Each worker records the CMIDs answered and the
// error that ended it.
func stream(ctx context.Context, addr string, p kmsclient.Product, workers int, got *answeredSet) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{Timeout: 10 * time.Second})
			if err != nil {
				got.fail(err)
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				cmid := kmsclient.RandomCMID()
				out, err := kmsclient.Activate(ctx, c, kmsclient.NewRequest(p, p.Protocol, cmid, "stream", time.Now()), nil)
				if err != nil || out == nil || out.Status != kms.OK {
					if err == nil && out != nil {
						err = out.Status
					}
					got.fail(err)
					return
				}
				got.add(cmid)
			}
		})
	}
	return &wg
}

// waitAnswered waits until n activations were answered.
func waitAnswered(t testing.TB, got *answeredSet, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got.len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d activations answered in 30s (errors: %v)", got.len(), n, got.errs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkLedger opens the ledger of a stopped responder and checks that every
// answered activation has its audit record.
func checkLedger(t testing.TB, data string, app guid.GUID, answered []guid.GUID) {
	t.Helper()
	l, err := ledger.Open(data, ledger.Options{})
	if err != nil {
		t.Fatalf("ledger does not open after the process ended: %v", err)
	}
	defer l.Close()
	missing := 0
	for _, id := range answered {
		c, ok, err := l.Client(id, app)
		if err != nil {
			t.Fatalf("ledger client %s: %v", id, err)
		}
		if !ok || c.LastResult != 0 || c.Requests < 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered activations are missing from the ledger", missing, len(answered))
	}
	if s := l.Stats(); s.Clients < uint64(len(answered)) {
		t.Errorf("ledger holds %d clients, fewer than the %d answered", s.Clients, len(answered))
	}
}

// TestProcessKill9 kills serve with SIGKILL while 8 connections activate
// new clients, three times at different points: every activation a client
// saw answered is in the ledger, the store opens cleanly and the restarted
// host has the same ePID and a full (capped) count.
func TestProcessKill9(t *testing.T) {
	data := t.TempDir()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	var all []guid.GUID
	var epid string
	for round, after := range []int{50, 400, 1500} {
		p := harness.StartResponder(t, data, "--group", "windows-server-2025", "--log-level", "warn")
		if round > 0 {
			st := statusOf(t, p)
			if !st.Ledger.Healthy || st.Groups[0].EPID != epid {
				t.Fatalf("round %d: restarted host: ledger healthy %t, ePID %s (was %s)", round, st.Ledger.Healthy, st.Groups[0].EPID, epid)
			}
			if got, want := countOf(st, "Windows"), min(len(all), 50); got != want {
				t.Errorf("round %d: count after kill -9 is %d, want %d", round, got, want)
			}
		} else {
			epid = statusOf(t, p).Groups[0].EPID
		}
		ctx, cancel := context.WithCancel(context.Background())
		var got answeredSet
		wg := stream(ctx, p.Addr, win, 8, &got)
		waitAnswered(t, &got, after)
		if code := p.Stop(syscall.SIGKILL); code != -1 {
			t.Errorf("round %d: SIGKILL: exit code %d", round, code)
		}
		wg.Wait()
		cancel()
		t.Logf("round %d: %d activations answered before kill -9", round, len(got.ids))
		all = append(all, got.ids...)
		checkLedger(t, data, win.AppID, all)
	}
}

// isConnectionEnd reports whether err is the server closing or refusing
// the connection, as opposed to a wrong or unverifiable answer.
func isConnectionEnd(err error) bool {
	var ne *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// TestProcessSIGTERMDuringActivity stops serve with SIGTERM while 8
// connections activate: it exits 0, clients see only answers or a closed
// connection, never a broken answer, and every answer is in the ledger.
func TestProcessSIGTERMDuringActivity(t *testing.T) {
	data := t.TempDir()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	p := harness.StartResponder(t, data, "--group", "windows-server-2025", "--log-level", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got answeredSet
	wg := stream(ctx, p.Addr, win, 8, &got)
	waitAnswered(t, &got, 300)
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM during activity: exit code %d, want 0\n%s", code, p.Stderr.String())
	}
	wg.Wait()
	for _, err := range got.errs {
		if !isConnectionEnd(err) {
			t.Errorf("a client saw %v, not an answer or a closed connection", err)
		}
	}
	checkLedger(t, data, win.AppID, got.ids)
}
