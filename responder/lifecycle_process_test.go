package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// TestProcessClosedStderr: when whatever reads serve's log goes away (a
// log collector restarting, `serve | head`), writing the next log line
// raises SIGPIPE, which killed serve without a withdraw or a ledger close.
// It must keep answering, and stop cleanly on SIGTERM.
func TestProcessClosedStderr(t *testing.T) {
	bin := harness.ProcessBinary(t, "kms-responder")
	port, admin := harness.FreePort(t), harness.FreePort(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--group", "windows-server-2025", "--data", t.TempDir(),
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--metrics", "127.0.0.1:"+strconv.Itoa(admin))
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	client := &http.Client{Timeout: time.Second}
	harnessReady := func() bool {
		resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(admin) + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(15 * time.Second)
	for !harnessReady() {
		if time.Now().After(deadline) {
			t.Fatal("serve not ready after 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Close() // the log reader goes away
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 { // each answer writes a log line into the closed pipe
		a, err := activateGo(ctx, "127.0.0.1:"+strconv.Itoa(port), win, kmsclient.RandomCMID(), true, 1)
		if err != nil || a.out.Status != kms.OK {
			t.Fatalf("activation %d after the log reader closed: %v %+v (exit: %v)", i, err, a.out, cmd.ProcessState)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %v after SIGTERM with a closed log, want 0", cmd.ProcessState)
	}
}
