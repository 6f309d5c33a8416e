package main

// Helpers for the process-level tests: they run the real kms-responder
// binary on loopback, with ports chosen at run time, and stop every process
// they start.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

func TestMain(m *testing.M) { harness.Main(m) }

// responderProc is one running `kms-responder serve`.
type responderProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string // KMS address for clients, 127.0.0.1:PORT
	port   int
	admin  string // admin HTTP address
	data   string
	stderr *harness.SyncBuffer
	done   chan struct{} // closed when the process has exited
	state  *os.ProcessState
}

// noListenFlag, among startResponder's arguments, runs serve without any
// --listen (its default addresses).
const noListenFlag = "(no --listen)"

// startResponder runs serve with the data directory data and the extra
// arguments. "{port}" in an argument is replaced by the KMS port chosen at
// run time; without a --listen argument it listens on 127.0.0.1:{port}
// (unless noListenFlag is given).
// The admin listener is always on loopback. A port collision is retried.
func startResponder(t testing.TB, data string, extra ...string) *responderProc {
	t.Helper()
	bin := harness.ProcessBinary(t, "kms-responder")
	var lastErr string
	for range 5 {
		port, admin := harness.FreePort(t), harness.FreePort(t)
		args := []string{"serve", "--data", data, "--metrics", "127.0.0.1:" + strconv.Itoa(admin), "--log-format", "json"}
		hasListen, defaultListen := false, false
		for _, a := range extra {
			if a == noListenFlag {
				hasListen, defaultListen = true, true
				continue
			}
			if a == "--listen" {
				hasListen = true
			}
			args = append(args, strings.ReplaceAll(a, "{port}", strconv.Itoa(port)))
		}
		if !hasListen {
			args = append(args, "--listen", "127.0.0.1:"+strconv.Itoa(port))
		}
		p := &responderProc{
			t: t, cmd: exec.Command(bin, args...), port: port,
			addr: "127.0.0.1:" + strconv.Itoa(port), admin: "127.0.0.1:" + strconv.Itoa(admin),
			data: data, stderr: &harness.SyncBuffer{}, done: make(chan struct{}),
		}
		p.cmd.Stderr = p.stderr
		p.cmd.Stdout = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start serve: %v", err)
		}
		go func() {
			_ = p.cmd.Wait()
			p.state = p.cmd.ProcessState
			close(p.done)
		}()
		t.Cleanup(p.kill)
		if p.waitReady() {
			return p
		}
		lastErr = p.stderr.String()
		if defaultListen && strings.Contains(lastErr, "address already in use") {
			t.Skipf("the default listen port is taken by another process:\n%s", lastErr)
		}
		if !strings.Contains(lastErr, "address already in use") {
			t.Fatalf("serve %s did not start:\n%s", strings.Join(args, " "), lastErr)
		}
	}
	t.Fatalf("serve did not start after 5 port choices:\n%s", lastErr)
	return nil
}

// waitReady waits for the admin endpoint's /healthz (it starts after the
// KMS listeners are open); false if the process exited first.
func (p *responderProc) waitReady() bool {
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
		resp, err := client.Get("http://" + p.admin + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true
		}
	}
	p.t.Fatalf("serve not ready after 15s:\n%s", p.stderr.String())
	return false
}

// kill stops the process with SIGKILL if it still runs.
func (p *responderProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends sig and waits for the process to exit; it returns the exit
// code (-1 when killed by a signal).
func (p *responderProc) stop(sig syscall.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Fatalf("serve did not exit within 30s of %v:\n%s", sig, p.stderr.String())
	}
	return p.state.ExitCode()
}

// runCLI runs the binary with args and returns stdout, stderr and the exit code.
func runCLI(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.ProcessBinary(t, "kms-responder"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// testProduct resolves a catalog edition (or app/counted ID pair) the way
// the client commands do, with an optional protocol override.
func testProduct(t testing.TB, f clientFlags) kmsclient.Product {
	t.Helper()
	p, err := f.resolveProduct(catalog.Default())
	if err != nil {
		t.Fatalf("product %+v: %v", f, err)
	}
	return p
}

// goActivation is what one in-process client activation saw.
type goActivation struct {
	out    *kmsclient.Outcome
	syntax dcerpc.Syntax
}

// activateGo sends calls activations of p with cmid on one new connection
// (the first call goes over NDR32, later ones over NDR64 when offered and
// accepted) and returns the last one.
func activateGo(ctx context.Context, addr string, p kmsclient.Product, cmid guid.GUID, ndr64 bool, calls int) (goActivation, error) {
	c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{DisableNDR64: !ndr64, Timeout: 10 * time.Second})
	if err != nil {
		return goActivation{}, err
	}
	defer c.Close()
	var last goActivation
	for range calls {
		req := kmsclient.NewRequest(p, p.Protocol, cmid, "process-test", time.Now())
		out, err := kmsclient.Activate(ctx, c, req, nil)
		if err != nil && out == nil {
			return goActivation{}, err
		}
		last = goActivation{out: out, syntax: c.LastSyntax()}
	}
	return last, nil
}

// wantAnswer checks that a is a verified S_OK answer with count want.
func wantAnswer(t testing.TB, what string, a goActivation, want uint32) {
	t.Helper()
	if a.out == nil || a.out.Status != kms.OK || a.out.Response == nil {
		t.Fatalf("%s: no S_OK answer: %+v", what, a.out)
	}
	if got := a.out.Response.CurrentCount; got != want {
		t.Fatalf("%s: current count %d, want %d", what, got, want)
	}
}
