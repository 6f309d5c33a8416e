package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestCorefileExampleUnsetVariables: corefile.example started
// without its environment fails at once, naming the file, the line and each
// {$VAR} to set, instead of "expecting data after last colon".
func TestCorefileExampleUnsetVariables(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := harness.ProcessBinary(t, "coredns")
	cmd := exec.Command(bin, "-conf", filepath.Join(root, "corefile.example"))
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMSDNS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("coredns with corefile.example and no environment did not exit within 20 s")
	}
	if err == nil {
		t.Fatalf("coredns started with unset variables:\n%s", out)
	}
	text := string(out)
	for _, v := range []string{"KMSDNS_DNS_PORT", "KMSDNS_DNS_ADDR", "KMSDNS_TSIG_SECRET", "KMSDNS_AD_DNS", "KMSDNS_METRICS_ADDR"} {
		if !strings.Contains(text, "{$"+v+"} is not set") {
			t.Errorf("the error does not name {$%s}:\n%s", v, text)
		}
	}
	if !strings.Contains(text, "corefile.example:") || strings.Contains(text, "expecting data after last colon") {
		t.Errorf("want file:line errors, not caddy's symptom:\n%s", text)
	}
}
