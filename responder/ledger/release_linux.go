package ledger

import (
	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped drops the pages of the store's map from the process's
// resident set: Open's walk over every record (verifyStore) and a full
// listing fault the whole file in through bbolt's read-only shared map,
// and without this they would count in serve's RSS until the kernel needs
// the memory. The file's pages stay in the page cache, and a later read
// faults a page back in from there (bbolt never writes through the map).
// size is the file's size. The map must not move meanwhile: the caller
// holds a transaction open (bbolt remaps only when no transaction is
// open) or is Open before the ledger's goroutines start.
func releaseMapped(db *bolt.DB, size int64) error {
	data := db.Info().Data
	if data == 0 || size <= 0 {
		return nil
	}
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, data, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
