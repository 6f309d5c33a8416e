// Package samba runs a real Active Directory domain controller for kmsdns's end-to-end tests:
// Debian's Samba AD DC (samba-tool domain provision, then `samba -i`), provisioned once per test
// package, serving DNS, Kerberos and LDAP on 127.0.0.10 inside a private network namespace.
//
// A package's TestMain calls Main. Run as root outside a namespace, Main re-executes the test
// binary under `unshare -n` (a fresh network namespace holding only loopback) and returns its exit
// status; inside, it brings lo up, adds DCAddr, provisions and starts the DC, obtains the
// administrator's ticket (kinit), runs the tests and stops the DC. Everything the tests start
// (bin/coredns, kms-responder, nsupdate, dig) inherits the namespace, KRB5_CONFIG and KRB5CCNAME.
// Not root, Main fails the package: CI runs as root, and a silent skip would hide the AD tests.
package samba

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// The domain every test package gets.
const (
	Realm     = "CORP.EXAMPLE"        // Kerberos realm
	Domain    = "corp.example"        // AD DNS domain (the zone the DC serves)
	NetBIOS   = "CORP"                // NetBIOS domain name
	HostName  = "dc1"                 // the DC's host name
	DCName    = "dc1.corp.example"    // the DC's FQDN: its DNS service principal is DNS/DCName
	DCAddr    = "127.0.0.10"          // the DC's only address, on lo in the namespace
	AdminUser = "administrator"       // the domain administrator
	AdminPass = "Kmsdns-Test-Pass-1!" // the administrator's password (test-only domain)
)

// envInside marks the re-executed test binary as running inside its network namespace.
const envInside = "KMSDNS_SAMBA_NETNS"

// DC is a running Samba AD domain controller.
type DC struct {
	Dir        string        // provisioning target: etc/smb.conf, private/, state/
	KRB5Config string        // krb5.conf naming the DC as the realm's KDC (also in $KRB5_CONFIG)
	CCache     string        // the administrator's credential cache (also in $KRB5CCNAME)
	Provision  time.Duration // what samba-tool domain provision took
	Start      time.Duration // from starting samba to DNS, Kerberos and a ticket
	proc       *exec.Cmd
	out        *testkit.SyncBuffer
	done       chan struct{}
}

// DNSAddr is the DC's DNS service, "127.0.0.10:53".
func (d *DC) DNSAddr() string { return net.JoinHostPort(DCAddr, "53") }

// Output returns what samba printed so far (for failure messages).
func (d *DC) Output() string { return d.out.String() }

// Main runs the package's tests against a fresh DC stored in *dc, and returns the exit status
// for os.Exit. See the package comment.
func Main(m *testing.M, dc **DC) int {
	flag.Parse()
	if testing.Short() {
		// -short promises no child processes: the tests see a nil DC and skip.
		return m.Run()
	}
	if os.Getenv(envInside) != "1" {
		return reexec()
	}
	d, err := startDC()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: Samba AD DC: %v\n", err)
		if d != nil {
			d.stop()
			fmt.Fprintf(os.Stderr, "samba output:\n%s\n", d.Output())
			os.RemoveAll(d.Dir)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "samba: DC %s provisioned in %.1fs, serving in %.1fs\n", DCName, d.Provision.Seconds(), d.Start.Seconds())
	*dc = d
	code := m.Run()
	d.stop()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "samba output:\n%s\n", tail(d.Output(), 4000))
	}
	os.RemoveAll(d.Dir)
	harness.Cleanup()
	return code
}

// reexec runs this test binary again inside a new network namespace and returns its status.
func reexec() int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the Samba AD DC tests run as root (unshare -n, a private network namespace); CI runs them as root. Run: sudo go test ./test/ad/ (or go test -short to leave them out)")
		return 1
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: unshare not found: install util-linux")
		return 1
	}
	cmd := exec.Command(unshare, append([]string{"-n", "--"}, os.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInside+"=1")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "FAIL: unshare -n: %v\n", err)
		return 1
	}
	return 0
}

// startDC brings up loopback, provisions the domain and starts samba.
func startDC() (*DC, error) {
	for _, tool := range []string{"ip", "samba-tool", "samba", "kinit"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: install samba, samba-ad-dc, samba-ad-provision, krb5-user and iproute2 (build/tools.sh does)", tool)
		}
	}
	if err := run("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if err := run("ip", "addr", "add", DCAddr+"/8", "dev", "lo"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kmsdns-samba-")
	if err != nil {
		return nil, err
	}
	d := &DC{Dir: dir, KRB5Config: filepath.Join(dir, "krb5.conf"), CCache: filepath.Join(dir, "ccache"),
		out: &testkit.SyncBuffer{}, done: make(chan struct{})}
	t0 := time.Now()
	// Provisioning is CPU-heavy (schema, ACLs): niced so it shares the machine.
	prov := exec.Command("nice", "-n", "5", "samba-tool", "domain", "provision",
		"--realm="+Realm, "--domain="+NetBIOS, "--server-role=dc", "--dns-backend=SAMBA_INTERNAL",
		"--host-name="+HostName, "--host-ip="+DCAddr, "--targetdir="+dir, "--adminpass="+AdminPass,
		"--option=interfaces="+DCAddr, "--option=bind interfaces only=yes",
		// Its own pid file: /run/samba is the host's, and another DC may be running.
		"--option=pid directory="+dir,
		// Never the provisioned default, a private-range address: names outside the domain
		// go to 127.0.0.1, where nothing listens in the namespace.
		"--option=dns forwarder=127.0.0.1")
	if out, err := prov.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("samba-tool domain provision: %v\n%s", err, tail(string(out), 3000))
	}
	d.Provision = time.Since(t0)
	krb5 := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
[realms]
	%[1]s = {
		kdc = %[2]s
	}
[domain_realm]
	.%[3]s = %[1]s
	%[3]s = %[1]s
`, Realm, DCAddr, Domain)
	if err := os.WriteFile(d.KRB5Config, []byte(krb5), 0o644); err != nil {
		return d, err
	}
	os.Setenv("KRB5_CONFIG", d.KRB5Config)
	os.Setenv("KRB5CCNAME", "FILE:"+d.CCache)

	t1 := time.Now()
	d.proc = exec.Command("samba", "-i", "-s", filepath.Join(dir, "etc", "smb.conf"))
	d.proc.Stdout, d.proc.Stderr = d.out, d.out
	// Its own process group, so stop ends samba's worker processes with it.
	d.proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.proc.Start(); err != nil {
		return d, fmt.Errorf("start samba: %v", err)
	}
	go func() { d.proc.Wait(); close(d.done) }()
	if err := d.waitDNS(60 * time.Second); err != nil {
		return d, err
	}
	if err := d.kinit(30 * time.Second); err != nil {
		return d, err
	}
	d.Start = time.Since(t1)
	return d, nil
}

// waitDNS waits until the DC answers for its own A record.
func (d *DC) waitDNS(limit time.Duration) error {
	end := time.Now().Add(limit)
	m := new(dns.Msg)
	m.SetQuestion(DCName+".", dns.TypeA)
	for {
		select {
		case <-d.done:
			return errors.New("samba exited before serving DNS")
		default:
		}
		r, _, err := (&dns.Client{Timeout: 500 * time.Millisecond}).Exchange(m, d.DNSAddr())
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("samba's DNS did not answer %s A within %s (last: %v)", DCName, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kinit obtains the administrator's ticket into CCache, retrying while the KDC starts.
func (d *DC) kinit(limit time.Duration) error {
	end := time.Now().Add(limit)
	for {
		err := d.Kinit(AdminUser, AdminPass, "FILE:"+d.CCache)
		if err == nil {
			return nil
		}
		if time.Now().After(end) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kinit obtains principal's ticket with password into ccache ("FILE:/path").
func (d *DC) Kinit(principal, password, ccache string) error {
	cmd := exec.Command("kinit", principal+"@"+Realm)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+d.KRB5Config, "KRB5CCNAME="+ccache)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kinit %s: %v\n%s", principal, err, out)
	}
	return nil
}

// Tool runs samba-tool against the DC's configuration (args after the subcommand) and returns
// its combined output.
func (d *DC) Tool(ctx context.Context, args ...string) (string, error) {
	all := append(args, "-s", filepath.Join(d.Dir, "etc", "smb.conf"))
	out, err := exec.CommandContext(ctx, "samba-tool", all...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// stop ends samba and its workers.
func (d *DC) stop() {
	if d.proc == nil || d.proc.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	syscall.Kill(-d.proc.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
	}
	// Whatever of samba's workers outlived the root process goes with the group.
	syscall.Kill(-d.proc.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// run runs a command and returns its error with its output.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
