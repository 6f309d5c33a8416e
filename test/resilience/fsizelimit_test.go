package resilience

import (
	"fmt"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
	"golang.org/x/sys/unix"
)

// TestFileSizeLimitFault is the disk-full test for machines without mount
// namespaces: the responder's soft RLIMIT_FSIZE is lowered (with prlimit,
// from outside) to the size of its preallocated log, so growing the log or
// the store fails with EFBIG as on a full disk, and raised again to clear
// the fault. Same uid, soft limit only: no privilege needed.
func TestFileSizeLimitFault(t *testing.T) {
	const limit = 1 << 20 // the first log segment's preallocation
	var old unix.Rlimit
	ledgerFault(t, nil, t.TempDir(), storageFault{
		name: "file size limit",
		induce: func(r *harness.Responder) string {
			pid := r.Cmd.Process.Pid
			if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
				t.Skipf("prlimit: %v", err)
			}
			lim := unix.Rlimit{Cur: limit, Max: old.Max}
			if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
				t.Skipf("lowering RLIMIT_FSIZE of pid %d: %v", pid, err)
			}
			return fmt.Sprintf("RLIMIT_FSIZE %d bytes", limit)
		},
		clear: func(r *harness.Responder) {
			if err := unix.Prlimit(r.Cmd.Process.Pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
				t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
			}
		},
	})
}
