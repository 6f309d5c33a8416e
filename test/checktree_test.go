package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestCheckTreeRefusesBuiltFiles runs build/check-tree.sh (part of `make
// test`) on a scratch repository: a tracked ELF binary and a tracked 2 MiB
// file each fail it, naming the file; scripts and small sources pass.
func TestCheckTreeRefusesBuiltFiles(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed: ", err)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "build", "check-tree.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		file    string
		content []byte
		wantErr string
	}{
		{"script", "tool.sh", []byte("#!/bin/sh\necho hi\n"), ""},
		{"elf", "cmd/app", append([]byte{0x7f, 'E', 'L', 'F'}, make([]byte, 64)...), "cmd/app is a built executable"},
		{"large", "data/blob.bin", make([]byte, 2<<20), "data/blob.bin is 2048 KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			git := func(args ...string) {
				t.Helper()
				cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.email=t@example.test", "-c", "user.name=t"}, args...)...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			git("init", "-q")
			write := func(rel string, data []byte, mode os.FileMode) {
				t.Helper()
				p := filepath.Join(repo, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, mode); err != nil {
					t.Fatal(err)
				}
			}
			write("build/check-tree.sh", script, 0o755)
			write(tc.file, tc.content, 0o755)
			git("add", "-A")
			out, err := exec.Command("bash", filepath.Join(repo, "build", "check-tree.sh")).CombinedOutput()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("check-tree refused a clean tree: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("check-tree passed a tree with %s:\n%s", tc.file, out)
			}
			if !strings.Contains(string(out), tc.wantErr) {
				t.Fatalf("check-tree output does not say %q:\n%s", tc.wantErr, out)
			}
		})
	}
}
