//go:build unix

package fileperm

import (
	"io/fs"
	"syscall"
)

// Owner returns the uid that owns fi; ok is false where the platform has
// no Unix ownership, and the owner and mode rules are then skipped.
func Owner(fi fs.FileInfo) (uid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// openFlags are added to O_RDONLY when a trusted file is opened: a FIFO
// opens at once instead of waiting for a writer, and is then refused.
const openFlags = syscall.O_NONBLOCK
