//go:build !unix

package ledger

import "os"

// mapStoreFile is not available here: walkStore reads each page.
func mapStoreFile(*os.File, int64) ([]byte, func()) { return nil, nil }
