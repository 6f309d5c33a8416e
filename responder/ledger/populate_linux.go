package ledger

import "golang.org/x/sys/unix"

// mapPopulate asks mmap to map the file's pages at once (from the page
// cache, reading what is not there) rather than one page fault at a time:
// Open reads every page of the store, twice (walkStore's map, then
// bbolt's), and page faults are dear on virtual machines. bbolt maps with
// it again only when the file outgrows its map (storeMmapSize); the part
// of the map past the file's end is left unmapped, as without it.
const mapPopulate = unix.MAP_POPULATE
