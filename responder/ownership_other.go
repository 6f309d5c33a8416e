//go:build !unix

package main

import "io/fs"

// fileOwner reports no owner: this platform has no Unix file ownership,
// and the ownership checks are skipped.
func fileOwner(fs.FileInfo) (uint32, bool) { return 0, false }
