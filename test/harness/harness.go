// Package harness is what kmsdns's end-to-end and process tests share (test/, test/resilience,
// test/monitoring, responder's process tests): it builds the real binaries once per `go test`
// run (or uses $KMSDNS_BIN), picks free loopback ports at run time, writes Corefiles, starts
// and stops processes, and drives Debian's dig and nsupdate.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// builds caches one build per binary per test process. The one instance, built, is the
// harness's only package-level state: "build once per `go test` run" needs it.
type builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
	errs map[string]error
}

var built = &builds{bins: map[string]string{}, errs: map[string]error{}}

// mainPackage maps a binary name to its main package.
func mainPackage(name string) (string, bool) {
	switch name {
	case "coredns":
		return "./build/coredns", true
	case "kms-responder":
		return "./responder", true
	}
	return "", false
}

// Binary returns the path of a project binary ("coredns" or "kms-responder"): from
// $KMSDNS_BIN when set (make test builds there first), else built once per test process
// into a temporary directory that Cleanup removes.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("KMSDNS_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KMSDNS_BIN is set but %v", err)
		}
		return p
	}
	built.mu.Lock()
	defer built.mu.Unlock()
	if p, ok := built.bins[name]; ok {
		return p
	}
	if err, ok := built.errs[name]; ok {
		t.Fatal(err)
	}
	pkg, ok := mainPackage(name)
	if !ok {
		t.Fatalf("unknown binary %q", name)
	}
	if built.dir == "" {
		d, err := os.MkdirTemp("", "kmsdns-bin-")
		if err != nil {
			t.Fatal(err)
		}
		built.dir = d
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(built.dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		built.errs[name] = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		t.Fatal(built.errs[name])
	}
	built.bins[name] = out
	return out
}

// ProcessBinary is Binary for tests that start a project binary as a
// process: they are skipped in -short mode, which promises no builds and no
// child processes.
func ProcessBinary(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts the %s binary; skipped with -short", name)
	}
	return Binary(t, name)
}

// Main runs a test binary's tests, then Cleanup, and exits with their status:
// the whole TestMain of a package whose tests use Binary.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes binaries built by Binary; Main calls it after the tests.
func Cleanup() {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
		built.dir = ""
		built.bins = map[string]string{}
	}
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the kmsdns module")
	}
	return filepath.Dir(mod), nil
}

// FreePort returns a loopback port that was free for both TCP and UDP a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return 0
}

// FreeWildcardPort returns a TCP port free on both wildcard addresses,
// 0.0.0.0 and [::], for tests of a ":PORT" listener.
func FreeWildcardPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		if p := FreePort(t); BothFamiliesFree(p) {
			return p
		}
	}
	t.Fatal("no port free on both 0.0.0.0 and [::]")
	return 0
}

// BothFamiliesFree reports whether port is free on the IPv4 and the IPv6
// wildcard address.
func BothFamiliesFree(port int) bool {
	l4, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	defer l4.Close()
	l6, err := net.Listen("tcp6", "[::]:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l6.Close()
	return true
}

// WriteFile writes content to name in dir and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Process is a started binary. Its combined output is kept for failure messages.
type Process struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error // Wait's result, valid after done
}

// SyncBuffer collects a process's output: safe for a child process's writers and the test's
// readers.
type SyncBuffer = testkit.SyncBuffer

// Start runs bin with args in dir; the process is stopped (SIGTERM, then SIGKILL) at cleanup.
func Start(t testing.TB, dir, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, out: &SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.Output())
		}
	})
	return p
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to end and returns its exit code (-1 if it did not end).
func (p *Process) Wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if p.Wait(5*time.Second) == -1 {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL at once.
func (p *Process) Kill() {
	if !p.Exited() {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// CoreDNS is a running bin/coredns serving DNS on 127.0.0.1:Port.
type CoreDNS struct {
	*Process
	Dir     string // holds the Corefile and anything the test wrote next to it
	Port    int
	Metrics int // the port for `prometheus`, when the Corefile template used {{METRICS}}
}

// Addr is "127.0.0.1:port".
func (c *CoreDNS) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)) }

// File is a file written next to the Corefile before CoreDNS starts (a zone, a key file).
type File struct {
	Name, Content string
}

// StartCoreDNS writes corefile (and files) into a fresh directory, replacing {{PORT}} with a
// free port, {{METRICS}} with another and {{DIR}} with the directory, starts bin/coredns on it
// and waits until it answers DNS over UDP and TCP.
func StartCoreDNS(t testing.TB, corefile string, files ...File) *CoreDNS {
	t.Helper()
	c := &CoreDNS{Dir: t.TempDir(), Port: FreePort(t)}
	if strings.Contains(corefile, "{{METRICS}}") {
		c.Metrics = FreePort(t)
	}
	for _, f := range files {
		WriteFile(t, c.Dir, f.Name, f.Content)
	}
	c.WriteCorefile(t, corefile)
	c.Process = Start(t, c.Dir, Binary(t, "coredns"), "-conf", "Corefile")
	c.WaitServing(t, 10*time.Second)
	return c
}

// WriteCorefile (re)writes the Corefile with the ports filled in.
func (c *CoreDNS) WriteCorefile(t testing.TB, corefile string) {
	t.Helper()
	s := strings.ReplaceAll(corefile, "{{PORT}}", strconv.Itoa(c.Port))
	s = strings.ReplaceAll(s, "{{METRICS}}", strconv.Itoa(c.Metrics))
	s = strings.ReplaceAll(s, "{{DIR}}", c.Dir)
	WriteFile(t, c.Dir, "Corefile", s)
}

// WaitServing waits until the server answers a DNS query over UDP and TCP.
func (c *CoreDNS) WaitServing(t testing.TB, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		if c.Exited() {
			t.Fatalf("coredns exited: %s", c.Output())
		}
		okU := Exchange(c.Addr(), "udp", ProbeQuery()) == nil
		okT := Exchange(c.Addr(), "tcp", ProbeQuery()) == nil
		if okU && okT {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("coredns did not answer on %s within %s:\n%s", c.Addr(), d, c.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProbeQuery is the query WaitServing sends to learn that CoreDNS answers.
func ProbeQuery() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion("health.check.invalid.", dns.TypeA)
	return m
}

// Exchange sends m to addr over network and returns any transport error (a DNS error rcode is
// an answer, not an error).
func Exchange(addr, network string, m *dns.Msg) error {
	c := &dns.Client{Net: network, Timeout: time.Second}
	_, _, err := c.ExchangeContext(context.Background(), m, addr)
	return err
}

// RunCoreDNS runs bin/coredns on corefile expecting it to exit (a startup failure) within d,
// and returns its exit code and output.
func RunCoreDNS(t testing.TB, corefile string, d time.Duration) (int, string) {
	t.Helper()
	dir := t.TempDir()
	WriteFile(t, dir, "Corefile", corefile)
	p := Start(t, dir, Binary(t, "coredns"), "-conf", "Corefile")
	code := p.Wait(d)
	return code, p.Output()
}

// Tool returns the path of a Debian tool (dig, nsupdate, dnsperf) or fails the test naming
// its package: build/test.sh installs them.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		pkg := map[string]string{"dig": "bind9-dnsutils", "nsupdate": "bind9-dnsutils", "dnsperf": "dnsperf"}[name]
		t.Fatalf("%s not found: install %s (apt-get install %s)", name, pkg, pkg)
	}
	return p
}

// Dig runs dig against the server with extra arguments and returns its output.
func (c *CoreDNS) Dig(t testing.TB, args ...string) string {
	t.Helper()
	all := append([]string{"@127.0.0.1", "-p", strconv.Itoa(c.Port), "+time=2", "+tries=1"}, args...)
	out, err := exec.Command(Tool(t, "dig"), all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// NSUpdate runs nsupdate with script on stdin (the `server` line is prepended) and extra
// arguments (e.g. "-y", "hmac-sha256:name:secret", "-v"); it returns the exit code and output.
func (c *CoreDNS) NSUpdate(t testing.TB, script string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(Tool(t, "nsupdate"), args...)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("server 127.0.0.1 %d\n%s\nsend\n", c.Port, script))
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("nsupdate: %v", err)
		}
		code = ee.ExitCode()
	}
	return code, string(out)
}

// Eventually polls cond until it holds, failing the test once d has passed (testkit.Eventually).
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, d, what, cond)
}
