// Package fileperm holds the rules both binaries apply to the files they
// trust: secrets (TSIG keys, admin tokens), policy (configs, catalog
// overlays) and the responder's data directory.
//
// A file decides what a server does, so whoever can change it controls the
// server. The rules:
//
//   - a policy file is owned by root or the running user and is writable by
//     neither group nor others;
//   - a secret file is owned by root or the running user and is not
//     accessible by group or others at all (as ssh requires of private keys);
//   - every directory above either is owned by root or the running user and
//     is writable by group or others only with the sticky bit (as /tmp),
//     where others cannot rename or delete entries they do not own;
//   - a symbolic link on the way to either, the file's own name included,
//     is followed only when root or the running user owns it (its owner
//     can point it elsewhere at any time), as for the data directory;
//   - either is a regular file, opened without blocking (a FIFO is refused,
//     never waited on) and checked on the descriptor opened;
//   - a file systemd hands the service as a credential (LoadCredential=,
//     inside $CREDENTIALS_DIRECTORY) is exempt from the owner and mode rules:
//     systemd writes it 0400 on a private file system, owned by root and
//     readable by the service's user through an ACL whose mask shows as the
//     group's read bit. The directory itself must be as systemd makes it
//     (owned by root or the running user, writable by no one else). Its
//     source file is checked by CheckSources.
//
// Errors name the file and say what to run (chmod, chown).
package fileperm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Kind says which rules a file must meet.
type Kind int

const (
	// Policy files must not be writable by group or others.
	Policy Kind = iota
	// Secret files must not be accessible by group or others.
	Secret
)

// CredentialsEnv is the environment variable systemd sets to the
// directory holding a service's credentials.
const CredentialsEnv = "CREDENTIALS_DIRECTORY"

// ReadFile reads the regular file path, of at most max bytes, after
// checking it (on the opened descriptor), the directories above it and
// the symbolic links on the way against kind's rules (see openFile: a
// link is followed only when root or the running user owns it; a FIFO or
// device is refused without waiting on it). what names the file in errors
// ("config file"; empty for the path alone).
func ReadFile(what, path string, kind Kind, max int64) ([]byte, error) {
	f, fi, err := openFile(what, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := Check(what, path, fi, kind); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", named(what, path), err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", named(what, path), max)
	}
	return data, nil
}

// CheckPath opens path as ReadFile does and applies kind's rules to it,
// without reading it.
func CheckPath(what, path string, kind Kind) error {
	f, fi, err := openFile(what, path)
	if err != nil {
		return err
	}
	f.Close()
	return Check(what, path, fi, kind)
}

// Check applies kind's rules to path, whose FileInfo fi the caller took
// from the descriptor it reads: a regular file, its owner and mode, and
// the directories above it. Files in $CREDENTIALS_DIRECTORY are exempt
// from the owner, mode and parent rules.
func Check(what, path string, fi fs.FileInfo, kind Kind) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", named(what, path), fi.Mode().Type())
	}
	if InCredentialsDir(path) && credentialsDirSafe() {
		return nil
	}
	if err := CheckFile(what, path, fi, kind); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %w", named(what, path), err)
	}
	return CheckParents(named(what, path), abs)
}

// CheckFile applies kind's owner and mode rules to fi alone.
func CheckFile(what, path string, fi fs.FileInfo, kind Kind) error {
	uid, ok := Owner(fi)
	if !ok {
		return nil // no ownership on this platform
	}
	me := uint32(os.Geteuid())
	if uid != 0 && uid != me {
		return fmt.Errorf("%s is owned by %s, not by %s: that user decides what it says; run `chown %s %s`",
			named(what, path), UserName(uid), trusted(me), userOnly(me), path)
	}
	perm := fi.Mode().Perm()
	switch kind {
	case Secret:
		if perm&0o077 != 0 {
			return fmt.Errorf("%s: permissions %04o are too open: it holds a secret, which group and others must not access; run `chmod 600 %s`",
				named(what, path), perm, path)
		}
	default:
		if perm&0o022 != 0 {
			return fmt.Errorf("%s is writable by group or others (mode %04o); run `chmod go-w %s`",
				named(what, path), perm, path)
		}
	}
	return nil
}

// CheckParents checks every directory above path, both as written and
// with symbolic links resolved: each must be owned by root or the running
// user and not writable by group or others without the sticky bit.
func CheckParents(what, path string) error {
	chains := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		chains = append(chains, real)
	}
	for _, p := range chains {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := checkParent(what, d, fi); err != nil {
				return err
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return nil
}

// checkParent applies the rule for a directory above a trusted file to d.
func checkParent(what, d string, fi fs.FileInfo) error {
	uid, ok := Owner(fi)
	return checkParentOwner(what, d, uid, ok, fi.Mode())
}

// checkParentOwner is checkParent for a directory owned by uid (ok is
// false where the platform has no owners) with mode.
func checkParentOwner(what, d string, uid uint32, ok bool, mode fs.FileMode) error {
	if !ok {
		return nil
	}
	me := uint32(os.Geteuid())
	if uid != 0 && uid != me {
		return fmt.Errorf("%s: the directory above it, %s, is owned by %s: that user can replace what is inside; move it under a directory owned by %s, or run `chown root %s`",
			what, d, UserName(uid), trusted(me), d)
	}
	if mode.Perm()&0o022 != 0 && mode&fs.ModeSticky == 0 {
		return fmt.Errorf("%s: the directory above it, %s, is writable by group or others (mode %04o) without the sticky bit: anyone there can replace what is inside; run `chmod go-w %s`",
			what, d, mode.Perm(), d)
	}
	return nil
}

// InCredentialsDir reports whether path names a file inside
// $CREDENTIALS_DIRECTORY (which only the service manager sets).
func InCredentialsDir(path string) bool {
	dir := os.Getenv(CredentialsEnv)
	if dir == "" || !filepath.IsAbs(dir) {
		return false
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), abs)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// credentialsDirSafe reports whether $CREDENTIALS_DIRECTORY is as systemd
// makes it: owned by root or the running user, writable by neither group
// nor others, in directories only they can change. A directory anyone
// else could fill earns its files no exemption.
func credentialsDirSafe() bool {
	dir := filepath.Clean(os.Getenv(CredentialsEnv))
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	if uid, ok := Owner(fi); ok && uid != 0 && uid != uint32(os.Geteuid()) {
		return false
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	return CheckParents("credentials directory", dir) == nil
}

// CheckSources checks the files a systemd unit hands over as credentials
// (LoadCredential=ID:PATH) against kind's rules, as root sees them before
// the start (ExecStartPre=+). A source that is missing is reported too:
// systemd would refuse to start.
func CheckSources(kind Kind, paths ...string) error {
	var errs []error
	for _, p := range paths {
		f, fi, err := openFile("credential source", p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Close()
		if err := CheckFile("credential source", p, fi, kind); err != nil {
			errs = append(errs, err)
			continue
		}
		abs, err := filepath.Abs(p)
		if err == nil {
			err = CheckParents("credential source "+p, abs)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// named is "what path" for messages, or path alone when what is empty.
func named(what, path string) string {
	if what == "" {
		return path
	}
	return what + " " + path
}

// trusted names the owners the rules accept: "root (uid 0)", or "root or
// alice (uid 1000) that this runs as".
func trusted(me uint32) string {
	if me == 0 {
		return UserName(0)
	}
	return "root or " + UserName(me) + " that this runs as"
}

// UserName names a uid for messages: "alice (uid 1000)".
func UserName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

// userOnly names a uid as chown takes it: the user name, else the number.
func userOnly(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}
