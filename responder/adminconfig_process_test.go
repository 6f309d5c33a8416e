package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/statusapi"
	"github.com/kmsdns/kmsdns/test/harness"
)

// TestProcessStatusFindsConfig: serve runs as its unit runs it (config
// naming the admin token as ${CREDENTIALS_DIRECTORY:-DIR}/admin.token, the
// token a credential); `status` and `clients` with --config alone find the
// admin address and the token (the source file in DIR) and answer; with
// nothing to go on, the error names --admin and --config.
func TestProcessStatusFindsConfig(t *testing.T) {
	bin := harness.ProcessBinary(t, "kms-responder")
	root := t.TempDir()
	etc, creds := filepath.Join(root, "etc"), filepath.Join(root, "credentials")
	for _, d := range []string{etc, creds} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	token := "0123456789abcdef0123456789abcdef0123456789abcdef"
	harness.WriteFile(t, etc, "admin.token", token+"\n")
	harness.WriteFile(t, creds, "admin.token", token+"\n")
	port, admin := harness.FreePort(t), harness.FreePort(t)
	cfg := harness.WriteFile(t, etc, "config.yaml", "groups: [windows-server-2025]\n"+
		"listen: [\"127.0.0.1:"+strconv.Itoa(port)+"\"]\n"+
		"data: "+filepath.Join(root, "data")+"\n"+
		"metrics: 127.0.0.1:"+strconv.Itoa(admin)+"\n"+
		"admin_token_file: ${CREDENTIALS_DIRECTORY:-"+etc+"}/admin.token\n")
	// serve as its unit runs it: everything from the config, so no harness
	// flags (--data, --metrics, --listen) override what status reads.
	adminAddr := "127.0.0.1:" + strconv.Itoa(admin)
	out := &harness.SyncBuffer{}
	cmd := exec.Command(bin, "serve", "--config", cfg, "--log-format", "json")
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+creds, statusapi.TokenEnv+"=")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	harness.Eventually(t, 15*time.Second, "serve ready", func() bool {
		select {
		case <-done:
			t.Fatalf("serve exited:\n%s", out.String())
		default:
		}
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, _ := adminGet(t, adminAddr, adminAddr, "/status"); code != 401 {
		t.Fatalf("/status without the token: %d, want 401 (the token is not in force)", code)
	}

	t.Setenv("CREDENTIALS_DIRECTORY", "")
	t.Setenv(statusapi.TokenEnv, "")
	if stdout, stderr, code := runCLI(t, "status", "--config", cfg); code != exitOK || !strings.Contains(stdout, "KMS host HwId") {
		t.Errorf("status --config: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code := runCLI(t, "clients", "--config", cfg); code != exitOK {
		t.Errorf("clients --config: exit %d\n%s%s", code, stdout, stderr)
	}
	// --admin names another serve: the config's token is not sent there.
	if _, stderr, code := runCLI(t, "status", "--admin", adminAddr); code == exitOK || !strings.Contains(stderr, "bearer token") {
		t.Errorf("status --admin without a token: exit %d\n%s", code, stderr)
	}
	free := harness.FreePort(t)
	_, stderr, code := runCLI(t, "status", "--admin", "127.0.0.1:"+strconv.Itoa(free))
	if code == exitOK || !strings.Contains(stderr, "no responder answering") || !strings.Contains(stderr, "--admin ADDR") || !strings.Contains(stderr, "--config FILE") {
		t.Errorf("status at a closed port: exit %d, want an error naming --admin and --config:\n%s", code, stderr)
	}
}
