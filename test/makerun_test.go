package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kmsdns/kmsdns/test/harness"
)

// openPTY returns a new pseudo-terminal's controller and its terminal.
func openPTY() (controller, terminal *os.File, err error) {
	controller, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, controller.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		controller.Close()
		return nil, nil, e
	}
	n, err := unix.IoctlGetInt(int(controller.Fd()), unix.TIOCGPTN)
	if err != nil {
		controller.Close()
		return nil, nil, err
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		controller.Close()
		return nil, nil, err
	}
	return controller, terminal, nil
}

// TestMakeRunCtrlC: `make run` in a terminal, stopped with Ctrl-C,
// stops every process it started, removes its state directory and exits 0
// (no make "Error 130"); stopped by timeout(1)'s signal to its process
// group, it cleans up the same way. The demo binds fixed loopback ports
// (1053, 1054, 127.0.0.2-3:1688 ...): the test is skipped when they are taken.
func TestMakeRunCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo; skipped with -short")
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	check := exec.Command("go", "run", "./build/freeport", "-check", "127.0.0.1:1053", "-check", "127.0.0.1:1054",
		"-check", "127.0.0.1:19153", "-check", "127.0.0.2:1688", "-check", "127.0.0.3:1688")
	check.Dir = root
	if out, err := check.CombinedOutput(); err != nil {
		t.Skipf("the demo's fixed ports are taken: %s", out)
	}

	controller, terminal, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer controller.Close()
	cmd := exec.Command("make", "run")
	cmd.Dir = root
	cmd.Stdin, cmd.Stdout, cmd.Stderr = terminal, terminal, terminal
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	terminal.Close()
	var out harness.SyncBuffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, controller); close(copied) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	harness.Eventually(t, 3*time.Minute, "make run to say it is running", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("make run exited early (%v):\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "running until Ctrl-C")
	})
	if _, err := controller.Write([]byte{0x03}); err != nil { // Ctrl-C, as typed
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make run still running 30 s after Ctrl-C:\n%s", out.String())
	}
	<-copied
	text := out.String()
	if err != nil {
		t.Errorf("make run after Ctrl-C: %v, want exit 0:\n%s", err, text)
	}
	if strings.Contains(text, "Error 130") || strings.Contains(text, "Interrupt") {
		t.Errorf("make reported the interrupt as a failure:\n%s", text)
	}
	assertRunCleanedUp(t, text)

	// timeout(1) signals its own process group, not the terminal's.
	var buf bytes.Buffer
	to := exec.Command("timeout", "-s", "INT", "60", "make", "run")
	to.Dir = root
	to.Stdout, to.Stderr = &buf, &buf
	if err := to.Start(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 3*time.Minute, "make run under timeout to say it is running", func() bool {
		return strings.Contains(buf.String(), "running until Ctrl-C") || to.ProcessState != nil
	})
	_ = to.Process.Signal(syscall.SIGINT) // what timeout does when it expires, to its group
	_ = syscall.Kill(-to.Process.Pid, syscall.SIGINT)
	err = to.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	assertRunCleanedUp(t, buf.String())
}

// assertRunCleanedUp checks that the run whose output is text removed its
// state directory and left no process behind.
func assertRunCleanedUp(t *testing.T, text string) {
	t.Helper()
	m := regexp.MustCompile(`state directory: (/\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("make run did not print its state directory:\n%s", text)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("state directory %s still exists (%v):\n%s", m[1], err, text)
	}
	harness.Eventually(t, 10*time.Second, "the demo's processes to be gone", func() bool {
		ps, _ := exec.Command("pgrep", "-f", regexp.QuoteMeta(filepath.Base(m[1]))).Output()
		return len(bytes.TrimSpace(ps)) == 0
	})
}
