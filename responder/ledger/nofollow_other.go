//go:build !unix

package ledger

// openNoFollow is not available here; listSegments and checkStoreFile still
// refuse entries that are not regular files.
const openNoFollow = 0
