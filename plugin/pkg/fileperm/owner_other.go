//go:build !unix

package fileperm

import "io/fs"

// Owner reports no owner: this platform has no Unix file ownership, and
// the owner and mode rules are skipped.
func Owner(fs.FileInfo) (uid uint32, ok bool) { return 0, false }

// openFlags are added to O_RDONLY when a trusted file is opened.
const openFlags = 0
