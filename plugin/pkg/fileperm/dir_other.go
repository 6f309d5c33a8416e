//go:build !linux

package fileperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// openDir is OpenDir where descriptors that only search a directory
// (O_PATH) are not available: each directory on the way is held as an
// *os.Root, which needs read permission on it.
func openDir(what, display, abs string, perm fs.FileMode, create bool) (*os.Root, error) {
	w := &walker{what: what, display: display, me: uint32(os.Geteuid()), perm: perm, noCreate: !create}
	defer w.closeAll()
	return w.walk(abs)
}

// openFileWalk is openFile's walk to the file at abs, each directory on
// the way held as an *os.Root.
func openFileWalk(what, display, abs string) (*os.File, fs.FileInfo, error) {
	w := &walker{what: what, display: display, me: uint32(os.Geteuid()), file: true}
	defer w.closeAll()
	if _, err := w.walk(abs); err != nil {
		return nil, nil, err
	}
	return w.opened, w.fi, nil
}

// walker is OpenDir's state: the directories opened so far, outermost
// first, each with the path it was reached by.
type walker struct {
	what, display string
	me            uint32
	perm          fs.FileMode
	stack         []held
	links         int
	// noCreate is set when missing components are an error.
	noCreate bool
	// file is set when the walk ends in a file to read (see openFile):
	// nothing is created, and the last component is opened into opened.
	file   bool
	opened *os.File
	fi     fs.FileInfo
}

type held struct {
	root *os.Root
	path string
}

func (w *walker) closeAll() {
	for _, h := range w.stack {
		h.root.Close()
	}
	w.stack = nil
}

func (w *walker) top() held { return w.stack[len(w.stack)-1] }

// reset makes the root directory the only one held.
func (w *walker) reset() error {
	w.closeAll()
	r, err := os.OpenRoot("/")
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.what, w.display, err)
	}
	w.stack = []held{{r, "/"}}
	return nil
}

// walk resolves abs and returns the final directory, taken off the stack.
func (w *walker) walk(abs string) (*os.Root, error) {
	if err := w.reset(); err != nil {
		return nil, err
	}
	todo := splitPath(abs)
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case ".":
			continue
		case "..":
			if len(w.stack) > 1 {
				w.stack[len(w.stack)-1].root.Close()
				w.stack = w.stack[:len(w.stack)-1]
			}
			continue
		}
		cur := w.top()
		// Whatever cur holds is trusted only if cur is safe as a parent.
		if err := w.checkHeld(cur, true); err != nil {
			return nil, err
		}
		next := filepath.Join(cur.path, name)
		fi, err := cur.root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) && !w.file && !w.noCreate {
			if err = cur.root.Mkdir(name, w.perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("%s %s: create %s: %w", w.what, w.display, next, err)
			}
			fi, err = cur.root.Lstat(name)
		}
		if err != nil {
			if pe := (*fs.PathError)(nil); (w.file || w.noCreate) && errors.As(err, &pe) {
				err = fmt.Errorf("%s: %w", next, pe.Err) // the path as walked, not the name inside cur
			}
			return nil, fmt.Errorf("%s %s: %w", w.what, w.display, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if err := w.follow(cur, name, next, fi, &todo); err != nil {
				return nil, err
			}
		case fi.IsDir():
			sub, err := cur.root.OpenRoot(name)
			if err != nil {
				return nil, fmt.Errorf("%s %s: open %s: %w", w.what, w.display, next, err)
			}
			got, err := sub.Stat(".")
			if err == nil && !os.SameFile(fi, got) {
				err = errors.New(replaced)
			}
			if err != nil {
				sub.Close()
				return nil, fmt.Errorf("%s %s: %s: %w", w.what, w.display, next, err)
			}
			w.stack = append(w.stack, held{sub, next})
		case w.file && len(todo) == 0:
			return nil, w.openLast(cur, name, fi)
		default:
			if len(todo) == 0 {
				return nil, fmt.Errorf("%s %s is not a directory", w.what, w.display)
			}
			return nil, fmt.Errorf("%s %s: %s is not a directory", w.what, w.display, next)
		}
	}
	last := w.top()
	if w.file {
		return nil, fmt.Errorf(notRegularDir, w.what, w.display)
	}
	if err := w.checkHeld(last, false); err != nil {
		return nil, err
	}
	w.stack = w.stack[:len(w.stack)-1]
	return last.root, nil
}

// openLast opens the file name in cur, found by Lstat as fi: only a
// regular file, opened without blocking (a FIFO would wait for a writer)
// and checked to be the file found (fstat of what was opened).
func (w *walker) openLast(cur held, name string, fi fs.FileInfo) error {
	at := filepath.Join(cur.path, name)
	if !fi.Mode().IsRegular() {
		return fmt.Errorf(notRegular, w.what, w.display, fi.Mode().Type())
	}
	f, err := cur.root.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return fmt.Errorf("%s %s: open %s: %w", w.what, w.display, at, err)
	}
	got, err := f.Stat()
	if err == nil && (!got.Mode().IsRegular() || !os.SameFile(fi, got)) {
		err = errors.New(replaced)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s %s: %s: %w", w.what, w.display, at, err)
	}
	w.opened, w.fi = f, got
	return nil
}

// follow queues the target of the symbolic link name in cur, which
// must be owned by root or the running user.
func (w *walker) follow(cur held, name, at string, fi fs.FileInfo, todo *[]string) error {
	if uid, ok := Owner(fi); ok && uid != 0 && uid != w.me {
		return fmt.Errorf("%s %s: the symbolic link %s is owned by %s, not by %s: its owner can point it elsewhere at any time; give the real directory (or a link root owns)",
			w.what, w.display, at, UserName(uid), trusted(w.me))
	}
	if w.links++; w.links > maxLinks {
		return fmt.Errorf("%s %s: more than %d symbolic links", w.what, w.display, maxLinks)
	}
	target, err := cur.root.Readlink(name)
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.what, w.display, err)
	}
	if filepath.IsAbs(target) {
		if err := w.reset(); err != nil {
			return err
		}
	}
	*todo = append(splitPath(target), *todo...)
	return nil
}

// checkHeld checks the directory h holds: as a parent (owned by root or
// the running user, writable by others only when sticky) or as the
// directory itself (owned by the running user, not writable by others).
func (w *walker) checkHeld(h held, parent bool) error {
	fi, err := h.root.Stat(".")
	if err != nil {
		return fmt.Errorf("%s %s: %s: %w", w.what, w.display, h.path, err)
	}
	if parent {
		return checkParent(w.what+" "+w.display, h.path, fi)
	}
	uid, ok := Owner(fi)
	return checkOwnDir(w.what, w.display, w.me, uid, ok, fi.Mode())
}
