package fileperm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mkdirMode makes dir with exactly mode (no umask).
func mkdirMode(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func TestOpenDir(t *testing.T) {
	base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string
		want  string // "" for accepted
	}{
		{"private", func(t *testing.T) string { return mkdirMode(t, filepath.Join(base, "a"), 0o700) }, ""},
		{"group readable", func(t *testing.T) string { return mkdirMode(t, filepath.Join(base, "b"), 0o750) }, ""},
		{"missing, created", func(t *testing.T) string { return filepath.Join(base, "new", "data") }, ""},
		{"relative path with ..", func(t *testing.T) string {
			mkdirMode(t, filepath.Join(base, "rel", "x"), 0o700)
			return filepath.Join(base, "rel", "x", "..", "x")
		}, ""},
		{"group writable", func(t *testing.T) string { return mkdirMode(t, filepath.Join(base, "c"), 0o770) },
			"is writable by group or others (mode 0770)"},
		{"world writable", func(t *testing.T) string { return mkdirMode(t, filepath.Join(base, "d"), 0o777) },
			"run `chmod go-w "},
		{"world writable parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(base, "e"), 0o777)
			return mkdirMode(t, filepath.Join(p, "data"), 0o700)
		}, "the directory above it, " + filepath.Join(base, "e") + ", is writable by group or others (mode 0777) without the sticky bit"},
		{"sticky parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(base, "f"), 0o777|os.ModeSticky)
			return mkdirMode(t, filepath.Join(p, "data"), 0o700)
		}, ""},
		{"symlink to a private directory", func(t *testing.T) string {
			real := mkdirMode(t, filepath.Join(base, "g"), 0o700)
			return symlink(t, real, filepath.Join(base, "g-link"))
		}, ""},
		{"relative symlink", func(t *testing.T) string {
			mkdirMode(t, filepath.Join(base, "r", "real"), 0o700)
			return symlink(t, "r/real", filepath.Join(base, "r-link"))
		}, ""},
		{"symlink into a world-writable directory", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(base, "h"), 0o777)
			real := mkdirMode(t, filepath.Join(p, "data"), 0o700)
			return symlink(t, real, filepath.Join(base, "h-link"))
		}, "is writable by group or others (mode 0777) without the sticky bit"},
		{"symlink loop", func(t *testing.T) string {
			symlink(t, "loop-b", filepath.Join(base, "loop-a"))
			symlink(t, "loop-a", filepath.Join(base, "loop-b"))
			return filepath.Join(base, "loop-a")
		}, "more than 40 symbolic links"},
		{"not a directory", func(t *testing.T) string {
			p := filepath.Join(base, "file")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t)
			root, err := OpenDir("data directory", path, 0o700)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if err != nil {
				return
			}
			defer root.Close()
			// The root held is the directory the path names now.
			want, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := root.Stat(".")
			if err != nil || !os.SameFile(want, got) {
				t.Errorf("held %v, want the directory %s names (%v)", got, path, err)
			}
		})
	}
}

// TestOpenDirOwners needs root: directories and links owned by another
// user.
func TestOpenDirOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
	other := mkdirMode(t, filepath.Join(base, "other"), 0o700)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir("data directory", other, 0o700); err == nil || !strings.Contains(err.Error(), "run `chown -R root ") {
		t.Errorf("a data directory owned by uid 65534: %v", err)
	}
	// A link another user owns in a sticky world-writable directory (as
	// /tmp) is refused whatever it points at: its owner can flip it.
	sticky := mkdirMode(t, filepath.Join(base, "sticky"), 0o777|os.ModeSticky)
	mine := mkdirMode(t, filepath.Join(base, "mine"), 0o700)
	link := symlink(t, mine, filepath.Join(sticky, "data"))
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir("data directory", link, 0o700); err == nil || !strings.Contains(err.Error(), "the symbolic link "+link+" is owned by ") {
		t.Errorf("a link owned by uid 65534: %v", err)
	}
	// A parent owned by another user is refused.
	parent := mkdirMode(t, filepath.Join(base, "theirs"), 0o755)
	inner := mkdirMode(t, filepath.Join(parent, "data"), 0o700)
	if err := os.Chown(parent, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir("data directory", inner, 0o700); err == nil || !strings.Contains(err.Error(), "the directory above it, "+parent+", is owned by ") {
		t.Errorf("a parent owned by uid 65534: %v", err)
	}
}

// helperEnv names the directory TestOpenDirHelperProcess opens, when the
// test binary is re-executed as another user: "existing:" before the path
// opens it with OpenExistingDir, "file:" reads it as a file with ReadFile.
const helperEnv = "FILEPERM_OPENDIR_HELPER"

// TestOpenDirHelperProcess is not a test: TestOpenDirUnprivileged runs the
// test binary as an unprivileged user to call OpenDir there, and this
// prints "ok" or the error.
func TestOpenDirHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("runs only as TestOpenDirUnprivileged's helper")
	}
	if p, ok := strings.CutPrefix(path, "file:"); ok {
		if _, err := ReadFile("test file", p, Policy, 100); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("ok")
		return
	}
	open := func(p string) (*os.Root, error) { return OpenDir("data directory", p, 0o700) }
	if p, ok := strings.CutPrefix(path, "existing:"); ok {
		path, open = p, func(p string) (*os.Root, error) { return OpenExistingDir("data directory", p) }
	}
	root, err := open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer root.Close()
	want, err := os.Stat(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	if got, err := root.Stat("."); err != nil || !os.SameFile(want, got) {
		fmt.Printf("held %v, not the directory %s names (%v)\n", got, path, err)
		return
	}
	fmt.Println("ok")
}

// TestOpenDirUnprivileged runs OpenDir as an unprivileged user (uid and
// gid 65534) through directories root owns, as a service user reaches its
// data directory: a parent it may search but not read (0711, as home
// directories and systemd's /var/lib/private) passes; one it may not
// search fails with the kernel's refusal. OpenExistingDir and ReadFile
// (a policy file root owns) walk the same way.
func TestOpenDirUnprivileged(t *testing.T) {
	const uid = 65534
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	// The test's temporary directories are private to root: open them to
	// search (not read) by others, as the cases' parents are.
	top := t.TempDir()
	mkdirMode(t, filepath.Dir(top), 0o711)
	mkdirMode(t, top, 0o711)
	bin := filepath.Join(mkdirMode(t, filepath.Join(top, "bin"), 0o755), "fileperm.test")
	copyExecutable(t, bin)
	owned := func(t *testing.T, dir string) string {
		t.Helper()
		mkdirMode(t, dir, 0o700)
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string
		want  string // "ok" for accepted
	}{
		{"search-only parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(top, "search"), 0o711)
			return owned(t, filepath.Join(p, "data"))
		}, "ok"},
		{"root's link in a search-only parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(top, "search-link"), 0o711)
			owned(t, filepath.Join(p, "real"))
			return symlink(t, "real", filepath.Join(p, "data"))
		}, "ok"},
		{"search-only home directory of the user", func(t *testing.T) string {
			home := owned(t, filepath.Join(top, "home"))
			if err := os.Chmod(home, 0o711); err != nil {
				t.Fatal(err)
			}
			return owned(t, filepath.Join(home, "data"))
		}, "ok"},
		{"unsearchable parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(top, "closed"), 0o700)
			return owned(t, filepath.Join(p, "data"))
		}, "data directory " + filepath.Join(top, "closed", "data") + ": fstatat data: permission denied"},
		{"existing directory under a search-only parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(top, "search-existing"), 0o711)
			return "existing:" + owned(t, filepath.Join(p, "data"))
		}, "ok"},
		{"file under a search-only parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(top, "search-file"), 0o711)
			return "file:" + writeMode(t, filepath.Join(p, "policy"), 0o644)
		}, "ok"},
		{"file under an unsearchable parent", func(t *testing.T) string {
			p := mkdirMode(t, filepath.Join(top, "closed-file"), 0o700)
			return "file:" + writeMode(t, filepath.Join(p, "policy"), 0o644)
		}, "test file " + filepath.Join(top, "closed-file", "policy") + ": " + filepath.Join(top, "closed-file", "policy") + ": permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t)
			cmd := exec.Command(setpriv, fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
				bin, "-test.run=^TestOpenDirHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+path)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper as uid %d: %v: %s", uid, err, out)
			}
			// The helper prints its line before the test runner's PASS.
			got, _, _ := strings.Cut(string(out), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("OpenDir as uid %d: %q, want %q", uid, got, tc.want)
			}
		})
	}
}

// copyExecutable copies the running test binary to dst, mode 0755, where
// another user may run it.
func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenExistingDir: the same rules as OpenDir, but nothing is created.
func TestOpenExistingDir(t *testing.T) {
	base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
	missing := filepath.Join(base, "a", "b")
	if _, err := OpenExistingDir("data directory", missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenExistingDir created %s", filepath.Join(base, "a"))
	}
	data := mkdirMode(t, filepath.Join(base, "data"), 0o700)
	r, err := OpenExistingDir("data directory", data)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	loose := mkdirMode(t, filepath.Join(base, "loose"), 0o777)
	if _, err := OpenExistingDir("data directory", loose); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("a directory others can write: %v", err)
	}
}
