package ledger

import (
	"runtime"
	"strconv"
)

// storeMmapSize is the address space the store is mapped with from the
// start. bbolt maps the file and, each time the file outgrows the map,
// remaps it inside the writing transaction, first copying every node the
// transaction changed out of the old map: with a growing store that copy
// took a tenth of the ledger's CPU per activation. Reserving 1 GiB of
// address space up front (the file grows as before; untouched pages cost no
// memory) removes those remaps until the store passes 1 GiB. Not on 32-bit
// platforms, whose address space is too small to reserve, nor on Windows,
// where bbolt grows the file itself to the mapped size.
func storeMmapSize(readOnly bool) int {
	if readOnly || strconv.IntSize < 64 || runtime.GOOS == "windows" {
		return 0
	}
	return 1 << 30
}

// storeAllocSize is how much the store file grows beyond what it needs
// once it is mapped with storeMmapSize (bbolt then grows it by its
// AllocSize, 16 MiB by default, rather than to the next power of two). One
// page: the file ends where its data ends, so a truncated file is found
// damaged however little was cut (checkStoreFile compares the file with the
// page count its meta page records), and Options.MaxSize stays exact. It
// costs an ftruncate and an fsync in each commit that grows the file, one
// every two seconds at most, beside the commit's own syncs.
const storeAllocSize = 4096
