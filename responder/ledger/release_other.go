//go:build !linux

package ledger

import bolt "go.etcd.io/bbolt"

// releaseMapped is a no-op where the ledger does not advise the kernel
// about its map (see release_linux.go).
func releaseMapped(*bolt.DB, int64) error { return nil }
