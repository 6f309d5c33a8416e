package ledger

import "golang.org/x/sys/unix"

// mapPopulate asks mmap to map the file's pages at once (from the page
// cache, reading what is not there) rather than one page fault at a time:
// Open reads every page of the store, twice (walkStore's map, then
// bbolt's), and page faults are dear on virtual machines.
const mapPopulate = unix.MAP_POPULATE
