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
