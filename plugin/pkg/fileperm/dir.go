package fileperm

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxLinks bounds the symbolic links OpenDir follows, as the kernel's
// ELOOP limit does.
const maxLinks = 40

// OpenDir opens the directory at path, where a service keeps state it
// writes (a ledger), and returns it held open: every later file operation
// goes through the returned *os.Root, relative to that descriptor, never
// by name again, so a path that changes after the check cannot redirect
// them.
//
// The path is walked one component at a time from the root directory,
// each opened and checked before the next is looked up in it:
//
//   - every directory above is owned by root or the running user and is
//     not writable by group or others without the sticky bit;
//   - a symbolic link on the way is followed only when root or the
//     running user owns it (whoever owns a link decides where it points
//     and can flip it at any time);
//   - the directory itself is owned by the running user and is not
//     writable by group or others.
//
// The directories above need only search permission (mode 0711, as home
// directories and systemd's /var/lib/private): on Linux they are held as
// O_PATH descriptors, and only the directory itself is opened for reading.
//
// Missing components are created with mode perm inside their checked
// parent. what names the directory in errors ("data directory").
func OpenDir(what, path string, perm fs.FileMode) (*os.Root, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return openDir(what, path, abs, perm, true)
}

// OpenExistingDir is OpenDir for a directory that must exist already: it
// creates nothing (for commands that only read or repair what is there).
func OpenExistingDir(what, path string) (*os.Root, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return openDir(what, path, abs, 0, false)
}

// openFile opens the regular file at path for reading under OpenDir's
// rules for the way there: every directory above it is owned by root or
// the running user and not writable by group or others without the
// sticky bit, and a symbolic link on the way, the file's own name
// included, is followed only when root or the running user owns it. The
// file is opened without blocking (a FIFO would wait for a writer) and
// must be the regular file found (fstat of what was opened). It returns
// the open file and its fstat. what names the file in errors.
func openFile(what, path string) (*os.File, fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", named(what, path), err)
	}
	if what == "" {
		what = "file"
	}
	return openFileWalk(what, path, abs)
}

// checkOwnDir checks the directory OpenDir returns, owned by uid (ok is
// false where the platform has no owners) with mode: it must be owned by
// me, the running user, and not writable by group or others.
func checkOwnDir(what, display string, me, uid uint32, ok bool, mode fs.FileMode) error {
	if !ok {
		return nil
	}
	if uid != me {
		return fmt.Errorf("%s %s is owned by %s, not by %s that this runs as: another user could plant files there that are written through; run `chown -R %s %s` (or run as %s)",
			what, display, UserName(uid), UserName(me), userOnly(me), display, UserName(uid))
	}
	if mode.Perm()&0o022 != 0 {
		return fmt.Errorf("%s %s is writable by group or others (mode %04o): another user could plant a symlink there that is written through; run `chmod go-w %s`",
			what, display, mode.Perm(), display)
	}
	return nil
}

// Messages shared by both platforms' walks, for the file openFile finds.
const (
	notRegularDir = "%s %s is not a regular file (a directory)"
	notRegular    = "%s %s is not a regular file (%s)"
	replaced      = "it was replaced while being opened"
)

// splitPath splits a path into its components, without empty ones.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(filepath.ToSlash(p), "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
