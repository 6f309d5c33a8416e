package fileperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// openDir walks abs holding each directory on the way as an O_PATH
// descriptor, which needs only search permission on its parent (opening
// a directory for reading, as *os.Root does, needs read permission on
// it too, which a 0711 parent denies its other users). Only the final
// directory, which the running user owns, is opened for reading.
func openDir(what, display, abs string, perm fs.FileMode, create bool) (*os.Root, error) {
	w := &pathWalker{what: what, display: display, me: uint32(os.Geteuid()), perm: perm, noCreate: !create}
	defer w.closeAll()
	return w.walk(abs)
}

// openFileWalk is openFile's walk to the file at abs: the directories on
// the way are held as O_PATH descriptors, so they too need only search
// permission, and the file is opened for reading relative to its parent.
func openFileWalk(what, display, abs string) (*os.File, fs.FileInfo, error) {
	w := &pathWalker{what: what, display: display, me: uint32(os.Geteuid()), file: true}
	defer w.closeAll()
	if _, err := w.walk(abs); err != nil {
		return nil, nil, err
	}
	return w.opened, w.fi, nil
}

// pathWalker is openDir's state: the directories opened so far (O_PATH
// descriptors), outermost first, each with the path it was reached by.
type pathWalker struct {
	what, display string
	me            uint32
	perm          fs.FileMode
	stack         []pathHeld
	links         int
	// noCreate is set when missing components are an error.
	noCreate bool
	// file is set when the walk ends in a file to read (see openFile):
	// nothing is created, and the last component is opened into opened.
	file   bool
	opened *os.File
	fi     fs.FileInfo
}

type pathHeld struct {
	fd   int
	path string
}

// pathFlags open a directory for lookups and fstat only, never through a
// symbolic link.
const pathFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

func (w *pathWalker) closeAll() {
	for _, h := range w.stack {
		unix.Close(h.fd)
	}
	w.stack = nil
}

func (w *pathWalker) top() pathHeld { return w.stack[len(w.stack)-1] }

func (w *pathWalker) pop() {
	unix.Close(w.top().fd)
	w.stack = w.stack[:len(w.stack)-1]
}

// errorf prefixes an error with what and the path as given.
func (w *pathWalker) errorf(format string, args ...any) error {
	return fmt.Errorf("%s %s: "+format, append([]any{w.what, w.display}, args...)...)
}

// reset makes the root directory the only one held.
func (w *pathWalker) reset() error {
	w.closeAll()
	fd, err := unix.Open("/", pathFlags, 0)
	if err != nil {
		return w.errorf("%w", &fs.PathError{Op: "open", Path: "/", Err: err})
	}
	w.stack = []pathHeld{{fd, "/"}}
	return nil
}

// walk resolves abs and returns the final directory opened as an
// *os.Root, or in file mode opens the final file into w.opened.
func (w *pathWalker) walk(abs string) (*os.Root, error) {
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
				w.pop()
			}
			continue
		}
		cur := w.top()
		// Whatever cur holds is trusted only if cur is safe as a parent.
		if err := w.checkParent(cur); err != nil {
			return nil, err
		}
		next := filepath.Join(cur.path, name)
		var st unix.Stat_t
		err := lstatAt(cur.fd, name, &st)
		if errors.Is(err, fs.ErrNotExist) && !w.file && !w.noCreate {
			if err = w.mkdir(cur.fd, name); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, w.errorf("create %s: %w", next, err)
			}
			err = lstatAt(cur.fd, name, &st)
		}
		if err != nil {
			if pe := (*fs.PathError)(nil); (w.file || w.noCreate) && errors.As(err, &pe) {
				err = fmt.Errorf("%s: %w", next, pe.Err) // the path as walked, not the name inside cur
			}
			return nil, w.errorf("%w", err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if err := w.follow(cur, name, next, st.Uid, &todo); err != nil {
				return nil, err
			}
		case unix.S_IFDIR:
			fd, err := unix.Openat(cur.fd, name, pathFlags, 0)
			if err != nil {
				return nil, w.errorf("open %s: %w", next, &fs.PathError{Op: "openat", Path: name, Err: err})
			}
			var got unix.Stat_t
			err = unix.Fstat(fd, &got)
			if err == nil && !sameInode(&st, &got) {
				err = errors.New(replaced)
			}
			if err != nil {
				unix.Close(fd)
				return nil, w.errorf("%s: %w", next, err)
			}
			w.stack = append(w.stack, pathHeld{fd, next})
		default:
			if w.file && len(todo) == 0 {
				return nil, w.openFileLast(cur, name, &st)
			}
			if len(todo) == 0 {
				return nil, fmt.Errorf("%s %s is not a directory", w.what, w.display)
			}
			return nil, w.errorf("%s is not a directory", next)
		}
	}
	if w.file {
		return nil, fmt.Errorf(notRegularDir, w.what, w.display)
	}
	return w.openLast()
}

// openFileLast opens the file name in cur, found by lstat as st: only a
// regular file, opened without blocking (a FIFO would wait for a writer)
// and without following a link put there since, and checked to be the
// file found (fstat of what was opened).
func (w *pathWalker) openFileLast(cur pathHeld, name string, st *unix.Stat_t) error {
	at := filepath.Join(cur.path, name)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf(notRegular, w.what, w.display, modeOf(st).Type())
	}
	fd, err := unix.Openat(cur.fd, name, unix.O_RDONLY|openFlags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return w.errorf("open %s: %w", at, &fs.PathError{Op: "openat", Path: name, Err: err})
	}
	var got unix.Stat_t
	err = unix.Fstat(fd, &got)
	if err == nil && (got.Mode&unix.S_IFMT != unix.S_IFREG || !sameInode(st, &got)) {
		err = errors.New(replaced)
	}
	if err != nil {
		unix.Close(fd)
		return w.errorf("%s: %w", at, err)
	}
	f := os.NewFile(uintptr(fd), at)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return w.errorf("%s: %w", at, err)
	}
	w.opened, w.fi = f, fi
	return nil
}

// openLast checks the directory on top of the stack as the one OpenDir
// returns and opens it for reading as an *os.Root, refusing unless the
// opened directory is the one checked (same device and inode).
func (w *pathWalker) openLast() (*os.Root, error) {
	last := w.top()
	var st unix.Stat_t
	if err := unix.Fstat(last.fd, &st); err != nil {
		return nil, w.errorf("%s: %w", last.path, err)
	}
	if err := checkOwnDir(w.what, w.display, w.me, st.Uid, true, modeOf(&st)); err != nil {
		return nil, err
	}
	// The path walked (through directories and links only root or this
	// user can change) is opened and held to the inode just checked, so
	// the root's Name, which the ledger's messages and metrics use, is
	// the real path. Opening it needs only search permission on the
	// parents and read permission on the directory itself, this user's.
	root, err := os.OpenRoot(last.path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, w.errorf("open %s: %w", last.path, err)
	}
	fi, err := root.Stat(".")
	if err == nil {
		if got, ok := fi.Sys().(*syscall.Stat_t); !ok || uint64(got.Dev) != uint64(st.Dev) || uint64(got.Ino) != uint64(st.Ino) {
			err = errors.New(replaced)
		}
	}
	if err != nil {
		root.Close()
		return nil, w.errorf("%s: %w", last.path, err)
	}
	return root, nil
}

// mkdir creates the directory name in dir with mode w.perm.
func (w *pathWalker) mkdir(dir int, name string) error {
	if w.perm&0o777 != w.perm {
		return &fs.PathError{Op: "mkdirat", Path: name, Err: errors.New("unsupported file mode")}
	}
	if err := unix.Mkdirat(dir, name, uint32(w.perm)); err != nil {
		return &fs.PathError{Op: "mkdirat", Path: name, Err: err}
	}
	return nil
}

// follow queues the target of the symbolic link name in cur, owned by
// uid, which must be root or the running user.
func (w *pathWalker) follow(cur pathHeld, name, at string, uid uint32, todo *[]string) error {
	if uid != 0 && uid != w.me {
		return w.errorf("the symbolic link %s is owned by %s, not by %s: its owner can point it elsewhere at any time; give the real directory (or a link root owns)",
			at, UserName(uid), trusted(w.me))
	}
	if w.links++; w.links > maxLinks {
		return w.errorf("more than %d symbolic links", maxLinks)
	}
	target, err := readlinkAt(cur.fd, name)
	if err != nil {
		return w.errorf("%w", err)
	}
	if filepath.IsAbs(target) {
		if err := w.reset(); err != nil {
			return err
		}
	}
	*todo = append(splitPath(target), *todo...)
	return nil
}

// checkParent checks the directory h holds as a parent: owned by root or
// the running user, writable by others only when sticky.
func (w *pathWalker) checkParent(h pathHeld) error {
	var st unix.Stat_t
	if err := unix.Fstat(h.fd, &st); err != nil {
		return w.errorf("%s: %w", h.path, err)
	}
	return checkParentOwner(w.what+" "+w.display, h.path, st.Uid, true, modeOf(&st))
}

// lstatAt stats name in dir without following a symbolic link.
func lstatAt(dir int, name string, st *unix.Stat_t) error {
	if err := unix.Fstatat(dir, name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "fstatat", Path: name, Err: err}
	}
	return nil
}

// readlinkAt returns the target of the symbolic link name in dir.
func readlinkAt(dir int, name string) (string, error) {
	// Link targets are at most a page; the bound stops a runaway loop.
	for n := 256; n <= 1<<16; n *= 2 {
		buf := make([]byte, n)
		k, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlinkat", Path: name, Err: err}
		}
		if k < n {
			return string(buf[:k]), nil
		}
	}
	return "", &fs.PathError{Op: "readlinkat", Path: name, Err: errors.New("target too long")}
}

// sameInode reports whether a and b describe the same file.
func sameInode(a, b *unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// modeOf returns the permission, sticky, setuid, setgid and type bits of
// st as an fs.FileMode, as os.Stat reports them.
func modeOf(st *unix.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	return m
}
