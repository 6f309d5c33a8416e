package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// The data directory and the config file must be the running user's own:
// whoever else can write in the data directory can plant a symlink named
// like a ledger file and make serve (often root) write through it, and
// whoever can write the config file decides where serve writes and whom it
// registers. Every directory above them must be as safe: owned by root or
// the running user and not writable by group or others, unless it has the
// sticky bit (like /tmp), where others cannot rename or delete our entries.

// maxConfigSize bounds the config file read.
const maxConfigSize = 1 << 20

// checkDataDir refuses a data directory (and any directory above it) that
// someone other than root or the running user could write in.
func checkDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	uid, ok := fileOwner(fi)
	if !ok {
		return nil // no ownership on this platform
	}
	me := uint32(os.Geteuid())
	if uid != me {
		return fmt.Errorf("data directory %s is owned by %s, not by %s that serve runs as: another user could plant files there that serve writes through; run `chown -R %s %s` (or run serve as %s)",
			dir, userName(uid), userName(me), userName(me), dir, userName(uid))
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("data directory %s is writable by group or others (mode %04o): another user could plant a symlink there that serve writes through; run `chmod go-w %s`",
			dir, fi.Mode().Perm(), dir)
	}
	return checkParents("data directory "+dir, abs)
}

// checkParents checks every directory above path, both as written and
// with symlinks resolved.
func checkParents(what, path string) error {
	chains := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		chains = append(chains, real)
	}
	me := uint32(os.Geteuid())
	for _, p := range chains {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			uid, ok := fileOwner(fi)
			if !ok {
				return nil
			}
			if uid != 0 && uid != me {
				return fmt.Errorf("%s: the directory above it, %s, is owned by %s: that user can replace what is inside; move it under a directory owned by root or %s, or run `chown root %s`",
					what, d, userName(uid), userName(me), d)
			}
			if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
				return fmt.Errorf("%s: the directory above it, %s, is writable by group or others (mode %04o) without the sticky bit: anyone there can replace what is inside; run `chmod go-w %s`",
					what, d, fi.Mode().Perm(), d)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return nil
}

// readConfigFile reads serve's config file after checking that it, and
// every directory above it, can be written by no one but root and the
// running user.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := checkOwnedFile("config file", path, fi); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := checkParents("config file "+path, abs); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxConfigSize)
	}
	return data, nil
}

// checkOwnedFile refuses a file owned by someone other than root or the
// running user, or writable by group or others.
func checkOwnedFile(what, path string, fi fs.FileInfo) error {
	uid, ok := fileOwner(fi)
	if !ok {
		return nil
	}
	me := uint32(os.Geteuid())
	if uid != 0 && uid != me {
		return fmt.Errorf("%s %s is owned by %s, not by root or %s that serve runs as; run `chown %s %s`",
			what, path, userName(uid), userName(me), userName(me), path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s %s is writable by group or others (mode %04o); run `chmod go-w %s`",
			what, path, fi.Mode().Perm(), path)
	}
	return nil
}

// checkSecretFile refuses a file holding a secret that group or others
// can read, as ssh does for private keys. Files systemd hands the service
// (LoadCredential=, in $CREDENTIALS_DIRECTORY) are exempt: systemd makes
// them readable by the service's user alone, for a dynamic user through an
// ACL, whose mask shows in the group bits.
func checkSecretFile(what, path string) error {
	if inCredentialsDir(path) {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if _, ok := fileOwner(fi); !ok {
		return nil
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s %s holds a TSIG secret and is readable by group or others (mode %04o); run `chmod 600 %s` (or move the secret to a key file, tsig_key_file)",
			what, path, fi.Mode().Perm(), path)
	}
	return nil
}

// userName names a uid for messages: "alice (uid 1000)".
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

// inCredentialsDir reports whether path is inside $CREDENTIALS_DIRECTORY.
func inCredentialsDir(path string) bool {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return false
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(dir, abs)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}
