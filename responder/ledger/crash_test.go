package ledger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// Environment of the helper process started by TestKill9LosesNothing and
// TestLogWriteFailure.
const (
	envHelperDir   = "KMSDNS_LEDGER_HELPER_DIR"
	envHelperRun   = "KMSDNS_LEDGER_HELPER_RUN"
	envHelperFSize = "KMSDNS_LEDGER_HELPER_FSIZE"
	// envHelperMigrate: open a schema-2 store, copying one record per
	// upgrade transaction, and stop (print "copied N", then wait to be
	// killed) once that many are copied.
	envHelperMigrate = "KMSDNS_LEDGER_HELPER_MIGRATE"
)

// TestHelperProcess is not a test: TestKill9LosesNothing runs the test binary
// again with only this function selected and the environment above set. It
// records activations from several goroutines forever and prints "ack CMID"
// after each Record returned nil, until it is killed. Another goroutine keeps
// applying the log to the store.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(envHelperDir)
	if dir == "" {
		t.Skip("helper process for TestKill9LosesNothing")
	}
	run, _ := strconv.Atoi(os.Getenv(envHelperRun))
	if limit := os.Getenv(envHelperFSize); limit != "" {
		n, _ := strconv.ParseUint(limit, 10, 64)
		recordUntilFull(dir, n)
		return
	}
	if stop := os.Getenv(envHelperMigrate); stop != "" {
		migrateUntil(dir, stop)
		return
	}
	l, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	// Apply the log to the store continuously, so that kills also land in
	// the middle of store transactions, not only between log appends.
	go func() {
		for {
			if err := l.Flush(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "helper: flush:", err)
				os.Exit(5)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var out sync.Mutex
	stdout := bufio.NewWriterSize(os.Stdout, 64)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				id := testkit.CMID(run<<24 | w<<20 | i)
				a := Activation{Time: time.Now(), CMID: id, App: testkit.AppWindows, CountedID: testkit.KMSWin10,
					Workstation: "crash-" + strconv.Itoa(i), Source: "127.0.0.1:1", Counted: true, Cap: 50}
				if err := l.Record(context.Background(), a); err != nil {
					fmt.Fprintln(os.Stderr, "helper: record:", err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Fprintf(stdout, "ack %s\n", id)
				stdout.Flush()
				out.Unlock()
			}
		}()
	}
	// A parent that died must not leave us running for long.
	time.Sleep(2 * time.Minute)
	os.Exit(4)
}

// TestKill9LosesNothing runs a real writer process, kills it with SIGKILL
// while it is recording, and checks that the store opens cleanly, passes
// bbolt's consistency check and holds every activation the child
// acknowledged. It repeats on the same store.
func TestKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	total := 0
	for run := 1; run <= 4; run++ {
		acked := runAndKill(t, dir, run, 100+run*90)
		total += len(acked)
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("run %d: reopen after kill -9: %v", run, err)
		}
		err = l.db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		if err != nil {
			l.Close()
			t.Fatalf("run %d: consistency check: %v", run, err)
		}
		for _, id := range acked {
			if _, ok, err := l.Client(id, testkit.AppWindows); !ok || err != nil {
				l.Close()
				t.Fatalf("run %d: acknowledged CMID %s missing after kill -9 (err %v)", run, id, err)
			}
		}
		stored := l.Stats().Clients
		if stored < uint64(total) {
			l.Close()
			t.Fatalf("run %d: %d records stored, %d acknowledged so far", run, stored, total)
		}
		t.Logf("run %d: killed after %d acks; %d acknowledged in total, %d stored", run, len(acked), total, stored)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the helper on dir, SIGKILLs it once it has acknowledged
// at least n records, and returns every CMID it acknowledged on a complete
// output line.
func runAndKill(t *testing.T, dir string, run, n int) []guid.GUID {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelperDir+"="+dir, envHelperRun+"="+strconv.Itoa(run))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var acked []guid.GUID
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// EOF after the kill; a line cut by the kill has no
			// newline and was never acknowledged in full.
			if !errors.Is(err, io.EOF) {
				t.Fatalf("run %d: read helper output: %v", run, err)
			}
			break
		}
		id, perr := guid.Parse(strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "ack "))
		if perr != nil {
			t.Fatalf("run %d: helper printed %q: %v", run, line, perr)
		}
		acked = append(acked, id)
		if len(acked) == n && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("run %d: helper exited before it was killed (%v): %s", run, werr, stderr.String())
	}
	if werr == nil || !strings.Contains(werr.Error(), "killed") {
		t.Fatalf("run %d: helper did not die by SIGKILL: %v", run, werr)
	}
	return acked
}

// recordUntilFull runs in the helper process under a file size limit: it
// records serially until Record fails, printing "ack CMID" for each success,
// then "fail <error>" and "healthy <bool>".
func recordUntilFull(dir string, limit uint64) {
	if err := setFileSizeLimit(limit); err != nil {
		fmt.Fprintln(os.Stderr, "helper: setrlimit:", err)
		os.Exit(2)
	}
	l, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		a := Activation{Time: time.Now(), CMID: testkit.CMID(i), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
			Workstation: strings.Repeat("w", 200), Source: "127.0.0.1:1", Counted: true, Cap: 50}
		if err := l.Record(context.Background(), a); err != nil {
			fmt.Printf("fail %v\nhealthy %v\n", err, l.Healthy())
			os.Exit(0)
		}
		fmt.Printf("ack %s\n", a.CMID)
	}
}

// TestLogWriteFailure runs a writer whose file size is limited (RLIMIT_FSIZE,
// so writes past it fail like on a full disk): Record must fail with an
// error naming the log, the ledger must report itself unhealthy, and every
// activation acknowledged before must be in the store when it is reopened
// without the limit.
func TestLogWriteFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	if err := setFileSizeLimit(0); errors.Is(err, errNoFileSizeLimit) {
		t.Skip(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelperDir+"="+dir, envHelperFSize+"="+strconv.Itoa(3<<19))
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("helper: %v: %s%s", err, out, stderr)
	}
	var acked []guid.GUID
	var failure, healthy string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(line, "ack "):
			id, err := guid.Parse(line[4:])
			if err != nil {
				t.Fatalf("helper printed %q", line)
			}
			acked = append(acked, id)
		case strings.HasPrefix(line, "fail "):
			failure = line[5:]
		case strings.HasPrefix(line, "healthy "):
			healthy = line[8:]
		}
	}
	if len(acked) == 0 || failure == "" {
		t.Fatalf("helper acknowledged %d and failed with %q", len(acked), failure)
	}
	if !strings.Contains(failure, "log") || healthy != "false" {
		t.Fatalf("failure %q, healthy %s; want a log error and an unhealthy ledger", failure, healthy)
	}
	l := openTest(t, dir, nil, Options{})
	for _, id := range acked {
		if _, ok, err := l.Client(id, testkit.AppWindows); !ok || err != nil {
			t.Fatalf("acknowledged %s missing after the write failure (err %v)", id, err)
		}
	}
	t.Logf("%d acknowledged before %s", len(acked), failure)
}
