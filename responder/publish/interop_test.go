package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/discover"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/test/harness"
)

// The interop tests run the project's real CoreDNS build (vlmcs plugin)
// as a separate process on a loopback port and register against it. The
// binary is $KMSDNS_COREDNS if set, else built from ./build/coredns into
// a temporary directory (a few seconds with a warm build cache).

// buildDir holds the CoreDNS built for this test binary; TestMain
// removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// corednsOnce builds (once per test binary) or finds the custom CoreDNS.
var corednsOnce = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("KMSDNS_COREDNS"); p != "" {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "publish-interop-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	bin := filepath.Join(dir, "coredns")
	cmd := exec.Command("go", "build", "-o", bin, "./build/coredns")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./build/coredns: %v\n%s", err, out)
	}
	return bin, nil
})

func corednsBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("interop with the real CoreDNS build is not run in -short mode")
	}
	bin, err := corednsOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// coreDNS is one running CoreDNS process.
type coreDNS struct {
	t      *testing.T
	bin    string
	conf   string
	addr   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
}

const interopZone = `example.test:%d {
	bind 127.0.0.1
	vlmcs example.test {
		approve kms1.example.test 127.0.0.0/8
		key kms1-key. %s
		grant kms1-key. kms1.example.test
		lease 30s 2s 1h
		unsigned 127.0.0.4/32
		probe off
		ttl 5
	}
}
`

// interopUnsignedZone is interopZone with the directory an unsigned registration is checked
// against: vlmcs accepts an unsigned update only at a name the next plugin (here hosts,
// standing in for Active Directory) resolves to the sender, 127.0.0.4.
var interopUnsignedZone = strings.Replace(interopZone, "\t}\n}\n", "\t}\n\thosts {\n\t\t127.0.0.4 kms1.example.test\n\t}\n}\n", 1)

func startCoreDNS(t *testing.T) *coreDNS { return startCoreDNSWith(t, interopZone) }

// startCoreDNSWith starts bin/coredns with the Corefile template zone (port and secret filled in).
func startCoreDNSWith(t *testing.T, zone string) *coreDNS {
	t.Helper()
	c := &coreDNS{t: t, bin: corednsBinary(t)}
	port := harness.FreePort(t)
	c.addr = fmt.Sprintf("127.0.0.1:%d", port)
	c.conf = filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(c.conf, []byte(fmt.Sprintf(zone, port, testSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *coreDNS) start() {
	c.t.Helper()
	c.stderr.Reset()
	c.cmd = exec.Command(c.bin, "-conf", c.conf)
	c.cmd.Stdout, c.cmd.Stderr = &c.stderr, &c.stderr
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.done) }()
	// Ready when it answers anything over UDP.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := discover.Lookup(ctx, c.addr, "example.test")
		cancel()
		var le *discover.LookupError
		if err == nil || errors.As(err, &le) {
			return
		}
		select {
		case <-c.done:
			c.t.Fatalf("coredns exited: %s", c.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("coredns at %s not answering after 10s: %v\n%s", c.addr, err, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *coreDNS) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.done
	c.cmd = nil
}

// members returns the targets CoreDNS answers, or the lookup's HRESULT.
func (c *coreDNS) members() ([]discover.Target, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return discover.Lookup(ctx, c.addr, "example.test")
}

// waitMembers polls until the answer satisfies ok.
func (c *coreDNS) waitMembers(what string, ok func([]discover.Target, error) bool) []discover.Target {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts, err := c.members()
		if ok(ts, err) {
			return ts
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("answer never became %s: %+v, %v\ncoredns log:\n%s", what, ts, err, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasKMS1(ts []discover.Target, err error) bool {
	return err == nil && len(ts) == 1 && ts[0].Name == "kms1.example.test." && ts[0].Port == 1688 &&
		ts[0].Priority == 10 && ts[0].Weight == 100 && len(ts[0].Addrs) == 1 && ts[0].Addrs[0] == netip.MustParseAddr("127.0.0.2")
}

func noRecords(_ []discover.Target, err error) bool { return errors.Is(err, kms.ErrDNSNoRecords) }

func interopConfig(t *testing.T, server string) Config {
	cfg := baseConfig(t, server)
	cfg.Addresses = []netip.Addr{netip.MustParseAddr("127.0.0.2")} // sent from, by default
	return cfg
}

// TestInteropRegisterWithdraw: register, see the member in the SRV answer
// with its glue, get the lease clamped by the server, withdraw, see it go.
func TestInteropRegisterWithdraw(t *testing.T) {
	c := startCoreDNS(t)
	c.waitMembers("NODATA before registration", noRecords)

	cfg := interopConfig(t, c.addr)
	cfg.Lease = time.Second // below the server's 2s minimum
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- p.Run(ctx) }()

	st := waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
	if st.Servers[0].GrantedLease != 2*time.Second {
		t.Errorf("granted lease %v, want the server's minimum 2s", st.Servers[0].GrantedLease)
	}
	c.waitMembers("kms1 with glue", hasKMS1)

	if err := p.Withdraw(context.Background()); err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	if err := <-res; err != nil {
		t.Errorf("Run: %v", err)
	}
	// Withdraw removes the member at once: no waiting for the lease.
	if ts, err := c.members(); !noRecords(ts, err) {
		t.Errorf("after Withdraw the answer is %+v, %v; want NODATA", ts, err)
	}
}

// TestInteropRefusals: the real server's verdicts reach State.
func TestInteropRefusals(t *testing.T) {
	c := startCoreDNS(t)
	tests := []struct {
		name string
		mod  func(*Config)
		skew time.Duration // of this host's TSIG clock
		want string
	}{
		{name: "clock skew", mod: func(*Config) {}, skew: -time.Hour, want: "NOTAUTH (TSIG BADTIME): this host's clock and the server's differ"},
		{name: "wrong secret", mod: func(c *Config) { c.Key = testKey(t, otherSecret) }, want: "NOTAUTH (TSIG BADSIG)"},
		{name: "unknown key", mod: func(c *Config) { k := testKey(t, testSecret); k.Name = "nobody."; c.Key = k }, want: "NOTAUTH (TSIG BADKEY)"},
		{name: "unsigned", mod: func(c *Config) { c.Key = nil }, want: "REFUSED"},
		{name: "someone else's address", mod: func(c *Config) { c.Source = netip.MustParseAddr("127.0.0.3") }, want: "REFUSED"},
		{name: "name not granted", mod: func(c *Config) { c.Target = "kms2.example.test" }, want: "REFUSED"},
		{name: "zone not published", mod: func(c *Config) { c.Zone, c.Target = "sub.example.test", "kms1.sub.example.test" }, want: "NOTZONE"},
		{name: "zone outside the server block", mod: func(c *Config) { c.Zone, c.Target = "other.test", "kms1.other.test" }, want: "REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := interopConfig(t, c.addr)
			cfg.Clock = newFakeClock() // no retries while we look
			tt.mod(&cfg)
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.skew != 0 {
				p.s.tsigNow = func() time.Time { return time.Now().Add(tt.skew) }
			}
			runPublisher(t, p)
			st := waitState(t, p, "failed", func(s State) bool { return s.Servers[0].Failures > 0 })
			if !strings.Contains(st.Servers[0].LastError, tt.want) {
				t.Errorf("last error %q, want %q", st.Servers[0].LastError, tt.want)
			}
			c.waitMembers("still empty", noRecords)
		})
	}
}

// TestInteropServerRestart: a restarted CoreDNS (empty pool) has the member
// back within one refresh; Suspend and Resume take it out and back.
func TestInteropServerRestart(t *testing.T) {
	c := startCoreDNS(t)
	cfg := interopConfig(t, c.addr)
	cfg.Lease = 2 * time.Second
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	c.waitMembers("kms1", hasKMS1)

	c.stop()
	c.start()
	c.waitMembers("kms1 again after the restart", hasKMS1)

	p.Suspend("test: cannot record activations")
	c.waitMembers("empty while suspended", noRecords)
	p.Resume()
	c.waitMembers("kms1 after Resume", hasKMS1)
}

// TestInteropUnsigned: an unsigned registration (as a Windows KMS host
// sends) goes over TCP and is accepted from a network the Corefile allows, at a
// name the directory behind vlmcs resolves to the sender.
func TestInteropUnsigned(t *testing.T) {
	c := startCoreDNSWith(t, interopUnsignedZone)
	cfg := interopConfig(t, c.addr)
	cfg.Key = nil
	cfg.Addresses = []netip.Addr{netip.MustParseAddr("127.0.0.4")}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	waitState(t, p, "registered", func(s State) bool { return s.Servers[0].Registered })
	c.waitMembers("kms1 at 127.0.0.4", func(ts []discover.Target, err error) bool {
		return err == nil && len(ts) == 1 && len(ts[0].Addrs) == 1 && ts[0].Addrs[0] == netip.MustParseAddr("127.0.0.4")
	})
	if err := p.Withdraw(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.waitMembers("empty after withdraw", noRecords)
}
