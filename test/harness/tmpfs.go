package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// TmpfsPrefix returns a command prefix that runs a command in a private mount namespace with
// a tmpfs of the given size (e.g. "16m") mounted on dir, mode 0700 (a data directory others
// cannot write, as kms-responder serve requires). It returns an error, to skip or fall back
// on, when this machine cannot mount one (needs root or CAP_SYS_ADMIN, and unshare).
func TmpfsPrefix(dir, size string) ([]string, error) {
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, errors.New("unshare not found")
	}
	probe, err := os.MkdirTemp("", "kmsdns-tmpfs-probe-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(probe)
	out, err := exec.Command("unshare", "-m", "--propagation", "private",
		"mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", probe).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cannot mount a tmpfs in a private mount namespace (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
	return []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o mode=0700,size=` + size + ` tmpfs "$0" && exec "$@"`, dir}, nil
}

// Fill appends to path until its file system is full and returns the bytes written; called
// again, it takes whatever space was freed since.
func Fill(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for size := len(buf); ; {
		k, err := f.Write(buf[:size])
		n += int64(k)
		switch {
		case errors.Is(err, syscall.ENOSPC) && size > 512:
			size /= 2 // take the last free pages too
		case errors.Is(err, syscall.ENOSPC):
			return n, nil
		case err != nil:
			return n, fmt.Errorf("filling %s: %w", path, err)
		}
	}
}
