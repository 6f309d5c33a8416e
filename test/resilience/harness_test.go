package resilience

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// testGroup and testEdition are the host key group the responder serves and
// the edition the well-behaved client activates.
const (
	testGroup   = "windows-server-2025"
	testEdition = "Windows Server 2025 Standard"
)

func TestMain(m *testing.M) { harness.Main(m) }

// responder is one running `kms-responder serve`.
type responder struct {
	cmd    *exec.Cmd
	addr   string // KMS address
	admin  string // admin HTTP address
	stderr *harness.SyncBuffer
	done   chan struct{}
}

// startResponder runs serve on loopback with the given data directory and
// extra flags and waits until /healthz and the KMS port answer. The process
// is killed in t.Cleanup.
func startResponder(t testing.TB, data string, extra ...string) *responder {
	t.Helper()
	return startResponderCmd(t, nil, nil, data, extra...)
}

// startResponderCmd is startResponder with an optional command prefix
// (e.g. a namespace wrapper; nil runs the binary directly) and extra
// environment entries.
func startResponderCmd(t testing.TB, prefix, env []string, data string, extra ...string) *responder {
	t.Helper()
	bin := harness.ProcessBinary(t, "kms-responder")
	port, admin := harness.FreePort(t), harness.FreePort(t)
	args := append([]string{bin, "serve", "--group", testGroup, "--data", data,
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--metrics", "127.0.0.1:" + strconv.Itoa(admin), "--log-format", "json", "--log-level", "info"}, extra...)
	args = append(append([]string(nil), prefix...), args...)
	r := &responder{
		cmd:    exec.Command(args[0], args[1:]...),
		addr:   "127.0.0.1:" + strconv.Itoa(port),
		admin:  "127.0.0.1:" + strconv.Itoa(admin),
		stderr: &harness.SyncBuffer{},
		done:   make(chan struct{}),
	}
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stderr = r.stderr
	r.cmd.Stdout = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("responder output:\n%s", condense(r.stderr.String(), 8000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			t.Fatalf("responder exited early: %s", r.stderr.String())
		default:
		}
		if code, _ := httpGet(r.admin, "/healthz"); code == http.StatusOK {
			if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
				c.Close()
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("responder not ready within 15s: %s", r.stderr.String())
	return nil
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

// httpGet fetches path from the admin listener; code 0 means no answer.
func httpGet(addr, path string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of the samples of name whose labels contain every
// one of labels (e.g. `event="conn_evicted"`), or -1 if there is none.
func (r *responder) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	code, body := httpGet(r.admin, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if !ok {
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

// event is the value of kms_responder_connection_events_total{event=e}.
func (r *responder) event(t testing.TB, e string) float64 {
	return r.metric(t, "kms_responder_connection_events_total", `event="`+e+`"`)
}

// vmKiB reads a "Vm..." field (kB) of the responder's /proc status.
func (r *responder) vmKiB(t testing.TB, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

// product is the edition the well-behaved client activates.
func product(t testing.TB) kmsclient.Product {
	t.Helper()
	e, ok := catalog.Default().Edition(testEdition)
	if !ok {
		t.Fatalf("edition %q not in the catalog", testEdition)
	}
	return kmsclient.Product{Name: e.Name, AppID: e.AppID, KMSID: e.CountedID, SKUID: e.SKUID, Protocol: e.Protocol, Threshold: 5}
}

// activate is one well-behaved client: dial, bind, one activation.
func activate(ctx context.Context, t testing.TB, addr string) (*kmsclient.Outcome, error) {
	p := product(t)
	c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := kmsclient.NewRequest(p, p.Protocol, kmsclient.RandomCMID(), "resilience", time.Now())
	return kmsclient.Activate(ctx, c, req, rand.Reader)
}

// mustActivate asserts a well-behaved client activates within limit.
func mustActivate(t testing.TB, addr string, limit time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	out, err := activate(ctx, t, addr)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("well-behaved activation failed after %v: %v", took, err)
	}
	if out.Status != kms.OK {
		t.Fatalf("well-behaved activation: status %v", out.Status)
	}
	return took
}

// tryActivate is mustActivate that returns the failure instead.
func tryActivate(t testing.TB, addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := activate(ctx, t, addr)
	if err == nil && out.Status != kms.OK {
		err = fmt.Errorf("status %v", out.Status)
	}
	return err
}

// raiseNoFile lifts the soft open-file limit to min(want, hard) and returns
// the new soft limit.
func raiseNoFile(t testing.TB, want uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	return lim.Cur
}
