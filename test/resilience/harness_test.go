package resilience

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
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

// event is the value of kms_responder_connection_events_total{event=e}.
func event(t testing.TB, r *harness.Responder, e string) float64 {
	t.Helper()
	return r.Metric(t, "kms_responder_connection_events_total", `event="`+e+`"`)
}

// vmKiB reads a "Vm..." field (kB) of the responder's /proc status.
func vmKiB(t testing.TB, r *harness.Responder, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.Pid()))
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
