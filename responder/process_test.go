package main

// Helpers for the process-level tests, which run the real kms-responder
// binary (serve through harness.StartResponder) on loopback with ports
// chosen at run time: the CLI, in-process client activations.

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
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
