package ledger

import (
	"os"
	"syscall"
)

// datasync flushes f's data (not its timestamps) to disk. The log writes
// into preallocated segments, so the file size never changes and no
// metadata needs flushing with the data.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
