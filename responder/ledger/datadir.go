package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// dataDir is the data directory held open: every file the ledger opens,
// renames or removes is reached relative to that descriptor (openat,
// renameat, unlinkat through os.Root), never by walking the directory's
// name again, so a path that changes after Open cannot redirect or mix
// them. Paths handed to its methods are the ones messages show,
// filepath.Join(path, name); only their base name is used.
type dataDir struct {
	root *os.Root
	path string // as the caller gave it, cleaned; for messages
	own  bool   // close root on close
}

// openDataDir holds root when the caller gives one (Options.Root), else
// creates dir if needed and opens it.
func openDataDir(dir string, root *os.Root) (*dataDir, error) {
	if root != nil {
		return &dataDir{root: root, path: filepath.Clean(dir)}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: create data directory: %w", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: open data directory: %w", err)
	}
	return &dataDir{root: r, path: filepath.Clean(dir), own: true}, nil
}

// openExistingDataDir holds root when the caller gives one, else opens
// dir, which must exist, for the read-mostly commands (Check,
// Acknowledge).
func openExistingDataDir(dir string, root *os.Root) (*dataDir, error) {
	if root != nil {
		return &dataDir{root: root, path: filepath.Clean(dir)}, nil
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &dataDir{root: r, path: filepath.Clean(dir), own: true}, nil
}

func (d *dataDir) close() {
	if d.own {
		d.root.Close()
	}
}

// join names a file in the directory, for messages and the methods below.
func (d *dataDir) join(name string) string { return filepath.Join(d.path, name) }

// name returns the base name of p, which must name a file directly in d.
func (d *dataDir) name(p string) (string, error) {
	if filepath.Dir(filepath.Clean(p)) != d.path {
		return "", fmt.Errorf("ledger: %s is not in the data directory %s", p, d.path)
	}
	return filepath.Base(p), nil
}

// openFile opens p relative to the directory and never through a
// symbolic link: an existing entry must be a regular file, and the
// descriptor opened must be that same file.
func (d *dataDir) openFile(p string, flag int, perm os.FileMode) (*os.File, error) {
	name, err := d.name(p)
	if err != nil {
		return nil, err
	}
	before, err := d.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0:
		before = nil
	case err != nil:
		return nil, err
	case !before.Mode().IsRegular():
		return nil, &fs.PathError{Op: "open", Path: p, Err: fmt.Errorf("not a regular file (%s)", before.Mode().Type())}
	}
	if before == nil {
		flag |= os.O_EXCL // created now: whatever appears meanwhile is not ours
	}
	f, err := d.root.OpenFile(name, flag|openNoFollow, perm)
	if err != nil {
		return nil, err
	}
	got, err := f.Stat()
	switch {
	case err != nil:
	case !got.Mode().IsRegular():
		err = fmt.Errorf("not a regular file (%s)", got.Mode().Type())
	case before != nil && !os.SameFile(before, got):
		err = errors.New("replaced while being opened")
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return f, nil
}

func (d *dataDir) remove(p string) error {
	name, err := d.name(p)
	if err != nil {
		return err
	}
	return d.root.Remove(name)
}

func (d *dataDir) rename(from, to string) error {
	a, err := d.name(from)
	if err != nil {
		return err
	}
	b, err := d.name(to)
	if err != nil {
		return err
	}
	return d.root.Rename(a, b)
}

func (d *dataDir) lstat(p string) (fs.FileInfo, error) {
	name, err := d.name(p)
	if err != nil {
		return nil, err
	}
	return d.root.Lstat(name)
}

// readDir lists the directory.
func (d *dataDir) readDir() ([]fs.DirEntry, error) {
	f, err := d.root.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// sync makes file creations, renames and removals in the directory
// durable.
func (d *dataDir) sync() error {
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
