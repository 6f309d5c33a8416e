package harness

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Responder is one running `kms-responder serve` started by StartResponder.
type Responder struct {
	// Cmd is the process; Stderr collects its stdout and stderr.
	Cmd    *exec.Cmd
	Stderr *SyncBuffer
	// Addr is the KMS address for clients (127.0.0.1:Port), Admin the
	// admin HTTP address, Data the data directory.
	Addr  string
	Port  int
	Admin string
	Data  string
	// Done is closed when the process has exited; State is then set.
	Done  chan struct{}
	State *os.ProcessState

	t testing.TB
}

// ResponderOptions change how StartResponderWith runs serve.
type ResponderOptions struct {
	// Prefix is a command prefix (e.g. a namespace wrapper); nil runs the
	// binary directly.
	Prefix []string
	// Env are extra environment entries.
	Env []string
	// NoListen leaves out --listen: serve listens on its default
	// addresses, and the test is skipped when another process holds them.
	NoListen bool
}

// StartResponder runs the real `kms-responder serve` with the data directory
// data, the admin endpoint on a free loopback port, JSON logs and args;
// "{port}" in an argument is replaced by the KMS port chosen at run time,
// and without a --listen argument it listens on 127.0.0.1:{port}. It waits
// until /healthz answers 200, retries a port
// collision, and kills the process in t.Cleanup (printing its log when the
// test failed).
func StartResponder(t testing.TB, data string, args ...string) *Responder {
	t.Helper()
	return StartResponderWith(t, ResponderOptions{}, data, args...)
}

// StartResponderWith is StartResponder with options.
func StartResponderWith(t testing.TB, o ResponderOptions, data string, args ...string) *Responder {
	t.Helper()
	bin := ProcessBinary(t, "kms-responder")
	var lastErr string
	for range 5 {
		port, admin := FreePort(t), FreePort(t)
		argv := []string{bin, "serve", "--data", data, "--metrics", "127.0.0.1:" + strconv.Itoa(admin), "--log-format", "json"}
		hasListen := o.NoListen
		for _, a := range args {
			if a == "--listen" || strings.HasPrefix(a, "--listen=") {
				hasListen = true
			}
			argv = append(argv, strings.ReplaceAll(a, "{port}", strconv.Itoa(port)))
		}
		if !hasListen {
			argv = append(argv, "--listen", "127.0.0.1:"+strconv.Itoa(port))
		}
		argv = append(append([]string(nil), o.Prefix...), argv...)
		r := &Responder{
			Cmd: exec.Command(argv[0], argv[1:]...), Port: port,
			Addr: "127.0.0.1:" + strconv.Itoa(port), Admin: "127.0.0.1:" + strconv.Itoa(admin),
			Data: data, Stderr: &SyncBuffer{}, Done: make(chan struct{}), t: t,
		}
		r.Cmd.Env = append(os.Environ(), o.Env...)
		r.Cmd.Stderr = r.Stderr
		r.Cmd.Stdout = r.Stderr
		if err := r.Cmd.Start(); err != nil {
			t.Fatalf("start serve: %v", err)
		}
		go func() {
			_ = r.Cmd.Wait()
			r.State = r.Cmd.ProcessState
			close(r.Done)
		}()
		t.Cleanup(func() {
			r.Kill()
			if t.Failed() {
				t.Logf("kms-responder output:\n%s", condense(r.Stderr.String(), 8000))
			}
		})
		if r.waitReady() {
			return r
		}
		lastErr = r.Stderr.String()
		if o.NoListen && strings.Contains(lastErr, "address already in use") {
			t.Skipf("the default listen port is taken by another process:\n%s", lastErr)
		}
		if !strings.Contains(lastErr, "address already in use") {
			t.Fatalf("serve %s did not start:\n%s", strings.Join(argv, " "), lastErr)
		}
	}
	t.Fatalf("serve did not start after 5 port choices:\n%s", lastErr)
	return nil
}

// waitReady waits for /healthz: serve opens the KMS listeners before the
// admin endpoint, so an answer means both serve (no probe of the KMS port,
// which --allow-client would count as refused). False if the process
// exited first.
func (r *Responder) waitReady() bool {
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-r.Done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
		resp, err := client.Get("http://" + r.Admin + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true
		}
	}
	r.t.Fatalf("serve not ready after 15s:\n%s", r.Stderr.String())
	return false
}

// Pid is the process ID.
func (r *Responder) Pid() int { return r.Cmd.Process.Pid }

// Kill stops the process with SIGKILL if it still runs and waits for it.
func (r *Responder) Kill() {
	select {
	case <-r.Done:
		return
	default:
	}
	_ = r.Cmd.Process.Kill()
	<-r.Done
}

// Stop sends sig and waits up to 30 s for the process to exit; it returns
// the exit code (-1 when killed by a signal).
func (r *Responder) Stop(sig syscall.Signal) int {
	r.t.Helper()
	if err := r.Cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-r.Done:
	case <-time.After(30 * time.Second):
		r.Kill()
		r.t.Fatalf("serve did not exit within 30s of %v:\n%s", sig, r.Stderr.String())
	}
	return r.State.ExitCode()
}

// Metric returns the sum of the samples of the metric name on /metrics
// whose labels contain every one of labels (e.g. `event="conn_evicted"`),
// or -1 if there is none.
func (r *Responder) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + r.Admin + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(rest, l)
		}
		if !all {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return -1
	}
	return sum
}

// condense shortens a child's log for a failure report: lines with the
// same message after the third are dropped, then the last n bytes are kept.
func condense(s string, n int) string {
	var b strings.Builder
	seen := map[string]int{}
	for _, line := range strings.SplitAfter(s, "\n") {
		msg := line
		if i := strings.Index(line, `"msg":`); i >= 0 {
			msg = line[i:min(len(line), i+60)]
		}
		if seen[msg]++; seen[msg] <= 3 {
			b.WriteString(line)
		}
	}
	out := b.String()
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
