//go:build unix

package fileperm

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileLinksAndSpecialFiles: links on the way to a trusted file
// are followed when the running user (or root) owns them, as for the data
// directory; a FIFO or a device is refused without being waited on.
func TestReadFileLinksAndSpecialFiles(t *testing.T) {
	base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
	etc := mkdirMode(t, filepath.Join(base, "etc"), 0o755)
	cfg := writeMode(t, filepath.Join(etc, "config"), 0o600)
	fifo := filepath.Join(etc, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string // want "" for accepted
	}{
		{"own link to the file", symlink(t, cfg, filepath.Join(base, "cfg-link")), ""},
		{"own relative link to a directory on the way", filepath.Join(symlink(t, "etc", filepath.Join(base, "etc-link")), "config"), ""},
		{"link chain", symlink(t, filepath.Join(base, "cfg-link"), filepath.Join(base, "chain")), ""},
		{"a FIFO", fifo, "is not a regular file (p"},
		{"a link to a FIFO", symlink(t, fifo, filepath.Join(base, "fifo-link")), "is not a regular file (p"},
		{"a device", "/dev/null", "is not a regular file (D"},
		{"a link loop", symlink(t, filepath.Join(base, "loop"), filepath.Join(base, "loop")), "more than 40 symbolic links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, fn := range []func() error{
				func() error { _, err := ReadFile("test file", tc.path, Secret, 100); return err },
				func() error { return CheckPath("test file", tc.path, Secret) },
				func() error { return CheckSources(Secret, tc.path) },
			} {
				err := fn()
				switch {
				case tc.want == "" && err != nil:
					t.Errorf("refused: %v", err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Errorf("error %v, want %q", err, tc.want)
				}
			}
		})
	}
}

// TestReadFileOthersLink needs root: a link another user owns, in a
// sticky world-writable directory (as /tmp), to root's own secret is
// refused, as the final name and on the way: its owner chooses, at every
// read, which file it is.
func TestReadFileOthersLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a link to another user")
	}
	base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
	etc := mkdirMode(t, filepath.Join(base, "etc"), 0o700)
	cfg := writeMode(t, filepath.Join(etc, "config"), 0o600)
	sticky := mkdirMode(t, filepath.Join(base, "shared"), 0o777|os.ModeSticky)
	for _, l := range []struct{ link, path string }{
		{filepath.Join(sticky, "config"), filepath.Join(sticky, "config")},
		{filepath.Join(sticky, "etc"), filepath.Join(sticky, "etc", "config")},
	} {
		target := cfg
		if filepath.Base(l.link) == "etc" {
			target = etc
		}
		symlink(t, target, l.link)
		if err := os.Lchown(l.link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		for i, fn := range []func() error{
			func() error { _, err := ReadFile("test file", l.path, Policy, 100); return err },
			func() error { return CheckPath("test file", l.path, Secret) },
			func() error { return CheckSources(Policy, l.path) },
		} {
			if err := fn(); err == nil || !strings.Contains(err.Error(), "the symbolic link "+l.link+" is owned by ") {
				t.Errorf("%s (check %d): %v", l.path, i, err)
			}
		}
	}
}
