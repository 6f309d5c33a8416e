package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// adminGet sends GET path to the admin endpoint with the given Host header.
func adminGet(t testing.TB, admin, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %q): %v", path, host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// TestProcessAdminHostHeader: the admin endpoint of the real binary answers
// only its own address, localhost, IP literals and --admin-host names; a
// DNS-rebinding Host gets 421 on every path, without data, and is logged
// and counted. `kms-responder status` still works.
func TestProcessAdminHostHeader(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--admin-host", "kms-admin.corp.example")
	_, port, _ := net.SplitHostPort(p.Admin)
	for _, host := range []string{p.Admin, "localhost:" + port, "127.0.0.1", "[::1]:" + port, "KMS-ADMIN.corp.example:" + port} {
		if code, body := adminGet(t, p.Admin, host, "/status"); code != http.StatusOK || !strings.Contains(body, `"hwid"`) {
			t.Errorf("Host %q: %d %q, want 200 with the status", host, code, body)
		}
	}
	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example", "localhost.attacker.example", "127.0.0.1.nip.example"} {
		for _, path := range []string{"/status", "/metrics", "/healthz"} {
			code, body := adminGet(t, p.Admin, host, path)
			if code != http.StatusMisdirectedRequest || strings.Contains(body, "hwid") || strings.Contains(body, "kms_responder") {
				t.Errorf("Host %q %s: %d %q, want 421 without data", host, path, code, body)
			}
		}
	}
	if !strings.Contains(p.Stderr.String(), `"host":"rebind.attacker.example:`+port+`"`) ||
		!strings.Contains(p.Stderr.String(), "admin request refused") {
		t.Errorf("the refused Host is not logged:\n%s", grepLines(p.Stderr.String(), "admin"))
	}
	_, body := adminGet(t, p.Admin, p.Admin, "/metrics")
	if !regexp.MustCompile(`kms_responder_admin_refused_total\{reason="host"\} 12\n`).MatchString(body) {
		t.Errorf("/metrics does not count 12 Host refusals:\n%s", grepLines(body, "admin_refused"))
	}
	if stdout, stderr, code := runCLI(t, "status", "--admin", p.Admin); code != exitOK || !strings.Contains(stdout, "KMS host HwId") {
		t.Errorf("status: exit %d\n%s%s", code, stdout, stderr)
	}
}

// openFDs counts the descriptors a process holds.
func openFDs(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// holdAdminConns opens n keep-alive connections to the admin endpoint, each
// makes one request and then stays open; it returns how many got an answer.
func holdAdminConns(t testing.TB, admin string, n int) int {
	t.Helper()
	var mu sync.Mutex
	answered := 0
	var wg sync.WaitGroup
	for range n {
		c, err := net.DialTimeout("tcp", admin, 5*time.Second)
		if err != nil {
			continue
		}
		t.Cleanup(func() { c.Close() })
		wg.Go(func() {
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return
			}
			resp.Body.Close()
			mu.Lock()
			answered++
			mu.Unlock()
		})
	}
	wg.Wait()
	return answered
}

// TestProcessAdminConnectionsCannotStarveKMS: with a low descriptor limit,
// 200 held keep-alive admin connections used to take every descriptor, so
// the KMS listener could not accept clients. With the admin connection cap
// the real binary keeps activating clients and answering /healthz. The
// same flood against a cap as large as the descriptor limit shows the
// starvation, so the test can tell the difference.
func TestProcessAdminConnectionsCannotStarveKMS(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed: cannot lower the responder's descriptor limit")
	}
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	run := func(t *testing.T, adminCap string) (activated bool, healthy bool) {
		p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025", "--admin-max-connections", adminCap,
			"--admin-max-connections-per-address", adminCap)
		pid := p.Cmd.Process.Pid
		limit := openFDs(t, pid) + 24 // room for the 16 admin connections of the default cap and a few clients
		if out, err := exec.Command(prlimit, "--pid", strconv.Itoa(pid), "--nofile="+strconv.Itoa(limit)+":"+strconv.Itoa(limit)).CombinedOutput(); err != nil {
			t.Skipf("prlimit: %v %s", err, out)
		}
		held := holdAdminConns(t, p.Admin, 200)
		t.Logf("cap %s: %d of 200 admin connections answered; process holds %d descriptors (limit %d)", adminCap, held, openFDs(t, pid), limit)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		activated = true
		for range 3 {
			a, err := activateGo(ctx, p.Addr, win, kmsclient.RandomCMID(), true, 1)
			if err != nil || a.out.Status != kms.OK {
				activated = false
				break
			}
		}
		c := &http.Client{Timeout: 3 * time.Second}
		if resp, err := c.Get("http://" + p.Admin + "/healthz"); err == nil {
			healthy = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		return activated, healthy
	}
	t.Run("default cap", func(t *testing.T) {
		activated, healthy := run(t, "16")
		if !activated || !healthy {
			t.Errorf("with 200 held admin connections: KMS activation ok %t, /healthz ok %t; want both", activated, healthy)
		}
	})
	// The control: the same flood with a cap above the descriptor limit
	// must starve the KMS listener, or this test shows nothing.
	t.Run("no effective cap", func(t *testing.T) {
		if activated, _ := run(t, "1024"); activated {
			t.Error("the flood did not exhaust descriptors without a cap: the default-cap case proves nothing")
		}
	})
}

// TestProcessAdminSilentConnectionsCannotHold: 16 connections that send
// nothing and reconnect as soon as they are closed, from one address or
// from several, fill the admin endpoint's default cap (16) over and over;
// /healthz and /metrics must still answer every time, since a silent
// connection is evicted, oldest first, to admit a new one. Without that,
// every health check is closed at the cap.
//
// The checks send their request as soon as they connect, as curl or a
// load balancer does: a new connection outlives the 15 older silent ones,
// and the attackers, reconnecting in a loop, close one about every
// millisecond here.
func TestProcessAdminSilentConnectionsCannotHold(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")
	for _, tc := range []struct {
		name  string
		from  func(i int) byte // last octet of attacker i's 127.0.0.x
		addrs int
	}{
		{"one address", func(int) byte { return 1 }, 1},
		{"eight addresses", func(i int) byte { return byte(2 + i%8) }, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var connects atomic.Int64
			for i := range 16 {
				wg.Go(func() { holdSilently(ctx, p.Admin, tc.from(i), &connects) })
			}
			defer func() { cancel(); wg.Wait() }()
			// Let the silent connections fill the cap first.
			for deadline := time.Now().Add(10 * time.Second); connects.Load() < 16 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			failed := 0
			for i := range 23 {
				path := "/healthz"
				if i%4 == 3 {
					path = "/metrics"
				}
				if code, err := promptGet(p.Admin, path); err != nil || code != http.StatusOK {
					failed++
					t.Logf("GET %s: %d %v", path, code, err)
				}
			}
			if failed > 0 {
				_, m := adminGet(t, p.Admin, "127.0.0.1", "/metrics")
				t.Log(grepLines(m, "admin_refused_total{"))
				t.Errorf("%d of 23 admin requests failed while 16 silent connections (from %d addresses, %d connects) held the port", failed, tc.addrs, connects.Load())
			}
		})
	}
	_, metrics := adminGet(t, p.Admin, "127.0.0.1", "/metrics")
	if !regexp.MustCompile(`kms_responder_admin_refused_total\{reason="evicted"\} [1-9]`).MatchString(metrics) {
		t.Errorf("no eviction counted in admin_refused_total:\n%s", grepLines(metrics, "admin_refused_total"))
	}
}

// promptGet sends GET path to addr on a new connection right after
// connecting and returns the response's status code.
func promptGet(addr, path string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// holdSilently connects to addr from 127.0.0.<from>, sends nothing, waits
// for the server to close the connection and connects again, until ctx
// ends; connects counts the connections made.
func holdSilently(ctx context.Context, addr string, from byte, connects *atomic.Int64) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, from)}, Timeout: time.Second}
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		connects.Add(1)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		_, _ = c.Read(make([]byte, 1))
		stop()
		c.Close()
	}
}

// TestProcessLicenseStateBucket: /status counts requests by the licence
// state the client sends, a uint32 the client chooses. 500 requests with
// distinct unknown values leave one "unknown" bucket in the real binary's
// /status, not 500 keys (the issue: 30,000 requests grew it to 773 KB).
func TestProcessLicenseStateBucket(t *testing.T) {
	p := harness.StartResponder(t, t.TempDir(), "--group", "windows-server-2025")
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := dcerpc.Dial(ctx, "tcp", p.Addr, dcerpc.ClientConfig{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmid := kmsclient.RandomCMID()
	const n = 500
	for i := range n {
		req := kmsclient.NewRequest(win, win.Protocol, cmid, "bucket-test", time.Now())
		req.LicenseStatus = 1000 + uint32(i)*8_000_000
		if out, err := kmsclient.Activate(ctx, c, req, nil); err != nil && out == nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	st := statusOf(t, p)
	if got := st.LicenseStates[host.UnknownLicenseStates]; got != n || len(st.LicenseStates) != 1 {
		t.Errorf("requests by licence state %v, want only %q = %d", st.LicenseStates, host.UnknownLicenseStates, n)
	}
}
