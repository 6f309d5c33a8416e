package ledger

import (
	"errors"
	"syscall"
)

var errNoFileSizeLimit = errors.New("file size limits are not supported here")

// setFileSizeLimit limits the size of files this process writes; 0 only
// checks that limits are supported.
func setFileSizeLimit(n uint64) error {
	if n == 0 {
		return nil
	}
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n})
}
