//go:build unix

package ledger

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapStoreFile maps the first size bytes of the store file read-only for
// walkStore, which then reads each page in place instead of copying it
// with a pread (a million-client store has some 50,000 pages). unmap
// releases the map; nil, nil when it cannot be mapped (walkStore reads
// instead).
func mapStoreFile(f *os.File, size int64) (data []byte, unmap func()) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED|mapPopulate)
	if err != nil {
		return nil, nil
	}
	return data, func() { _ = unix.Munmap(data) }
}
