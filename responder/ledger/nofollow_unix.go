//go:build unix

package ledger

import "syscall"

// openNoFollow makes opening a symbolic link fail instead of following it.
const openNoFollow = syscall.O_NOFOLLOW
