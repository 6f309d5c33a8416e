package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProcessHelpAndCompletion: every subcommand's -h has a usage line and examples
// and exits 0; `completion bash` is valid bash that completes subcommands and their flags.
func TestProcessHelpAndCompletion(t *testing.T) {
	for _, c := range commands() {
		args := []string{c.name, "-h"}
		if c.name == "ledger" {
			args = []string{"ledger", "check", "-h"}
		}
		_, stderr, code := runCLI(t, args...)
		if code != exitOK || !strings.Contains(stderr, "usage: kms-responder "+c.name) || !strings.Contains(stderr, "Examples:") {
			t.Errorf("%s -h: exit %d, want 0 with a usage line and examples:\n%s", c.name, code, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "activate", "--no-such-flag"); code != exitUsage || !strings.Contains(stderr, "usage: kms-responder activate") {
		t.Errorf("unknown flag: exit %d, want 64 with the usage:\n%s", code, stderr)
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, _, code := runCLI(t, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d", code)
	}
	file := filepath.Join(t.TempDir(), "completion.bash")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) string {
		t.Helper()
		cmd := exec.Command(bash, "-c", `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _kms_responder; echo "${COMPREPLY[*]}"`, file)
		cmd.Args = append(cmd.Args, words...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("completing %v: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("kms-responder", "ser"); got != "serve" {
		t.Errorf("completing ser: %q, want serve", got)
	}
	if got := complete("kms-responder", "discover", "--look"); got != "--lookup-only" {
		t.Errorf("completing discover --look: %q, want --lookup-only", got)
	}
	if got := complete("kms-responder", "serve", "--max-conn"); got != "--max-connections --max-connections-per-address" {
		t.Errorf("completing serve --max-conn: %q", got)
	}
}
