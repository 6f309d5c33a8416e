package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
)

// Editions the scenarios activate, and the host key groups of the catalog that cover them.
const (
	windowsClient  = "Windows 10/11 Enterprise"           // windows-server-2019 and -2025 hosts
	officeLTSC2024 = "Office LTSC Professional Plus 2024" // office-ltsc-2024 hosts only
	windowsServer  = "Windows Server 2019 Standard"       // counted as a server (threshold 5)
)

// scenarioCorefile publishes example.test for kms1..kms3 signing with one key; LEASE is the
// lease line; probes every 200 ms, down after 2 failures (0.7 s with the 300 ms timeout).
const scenarioCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	errors
	vlmcs {
		approve kms1.example.test kms2.example.test kms3.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms-key. ` + secret1 + `
		grant kms-key. kms1.example.test kms2.example.test kms3.example.test
		LEASE
		probe 200ms 300ms 2 1
		all_down none
		ttl 1
	}
}
`

// kmsResponder is a running `kms-responder serve` registering as Name.example.test.
type kmsResponder struct {
	*harness.Process
	Name  string // label in example.test (kms1)
	Port  int    // KMS port on 127.0.0.1
	Admin string // status/metrics address
	dir   string
	args  []string
}

// Member is how srvSet names this responder.
func (r *kmsResponder) Member() string { return r.Name + ".example.test.:" + strconv.Itoa(r.Port) }

// Addr is the KMS address.
func (r *kmsResponder) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// startKMSResponder starts kms-responder with host key groups, registering with c (nil: no
// registration) for lease, its ledger in a fresh directory.
func startKMSResponder(t *testing.T, c *harness.CoreDNS, name, lease string, groups ...string) *kmsResponder {
	t.Helper()
	r := &kmsResponder{Name: name, Port: harness.FreePort(t), Admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t))), dir: t.TempDir()}
	harness.WriteFile(t, r.dir, "tsig.key", "hmac-sha256:kms-key.:"+secret1+"\n")
	r.args = []string{"serve", "--listen", r.Addr(), "--data", filepath.Join(r.dir, "data"),
		"--metrics", r.Admin, "--drain", "0s", "--log-format", "text"}
	for _, g := range groups {
		r.args = append(r.args, "--group", g)
	}
	if c != nil {
		r.args = append(r.args, "--dns-server", c.Addr(), "--zone", "example.test", "--target", name,
			"--port", strconv.Itoa(r.Port), "--lease", lease, "--tsig-key-file", filepath.Join(r.dir, "tsig.key"))
	}
	r.start(t)
	return r
}

// start (re)starts the process with the same arguments and waits for its status endpoint.
func (r *kmsResponder) start(t *testing.T) {
	t.Helper()
	r.Process = harness.Start(t, r.dir, harness.Binary(t, "kms-responder"), r.args...)
	harness.Eventually(t, 10*time.Second, r.Name+" status endpoint", func() bool {
		if r.Exited() {
			t.Fatalf("%s exited: %s", r.Name, r.Output())
		}
		_, err := statusJSON(t, r.Admin)
		return err == nil
	})
}

// clientReport is what `activate --json` and `discover --json` print (the fields the tests use).
type clientReport struct {
	Server       string `json:"server"`
	CMID         string `json:"cmid"`
	CMIDSource   string `json:"cmid_source"`
	Product      string `json:"product"`
	CurrentCount uint32 `json:"current_count"`
	HostStatus   string `json:"host_status"`
	Verdict      string `json:"verdict"`
	Error        string `json:"error"`
	Targets      []struct {
		Name      string   `json:"name"`
		Port      uint16   `json:"port"`
		Addresses []string `json:"addresses"`
	} `json:"targets"`
	Attempts       []attempt `json:"attempts"`
	CoveringGroups []string  `json:"groups_that_activate"`
	code           int
	raw            string
}

// attempt is one try of one host address in a discover report.
type attempt struct {
	Target  string `json:"target"`
	Port    uint16 `json:"port"`
	Address string `json:"address"`
	Served  bool   `json:"served"`
	HRESULT string `json:"hresult"`
	Error   string `json:"error"`
}

// String is "target:port (address): served|error", as the text report prints it.
func (a attempt) String() string {
	s := fmt.Sprintf("%s:%d", a.Target, a.Port)
	if a.Address != "" {
		s += " (" + a.Address + ")"
	}
	if a.Served {
		return s + ": served"
	}
	return s + ": " + a.Error
}

// ServedBy is the SRV target label that answered ("kms2"), from "kms2.example.test. (127.0.0.1:port)".
func (r clientReport) ServedBy() string {
	name, _, _ := strings.Cut(r.Server, ".")
	return name
}

// runClient runs kms-responder with a client subcommand and --json, and decodes its report.
func runClient(t *testing.T, args ...string) clientReport {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(harness.Binary(t, "kms-responder"), append(args, "--json", "--timeout", "2s")...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	rep := clientReport{raw: out.String() + errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		rep.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: exit %d, no JSON report (%v):\n%s", args, rep.code, err, rep.raw)
	}
	return rep
}

// runCLIText runs kms-responder with args and returns its combined output and exit code.
func runCLIText(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(harness.Binary(t, "kms-responder"), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return string(out), 0
}

// discoverOnce runs `kms-responder discover` against c for product with a fresh client ID.
func discoverOnce(t *testing.T, c *harness.CoreDNS, product string) clientReport {
	t.Helper()
	return runClient(t, "discover", "--dns", c.Addr(), "--domain", "example.test", "--product", product, "--cmid", "random")
}

// answered reports whether a KMS host answered the request: activated (exit 0) or counted
// below the threshold (exit 2), as a new host does.
func (r clientReport) answered() bool { return r.code == 0 || r.code == 2 }

// status is the part of `status --json` the tests read.
type status struct {
	Counts []struct {
		Application string `json:"application"`
		Count       int    `json:"current_count"`
	} `json:"counts"`
}

// statusJSON asks the running responder at admin for its status via `kms-responder status`.
func statusJSON(t *testing.T, admin string) (status, error) {
	t.Helper()
	out, err := exec.Command(harness.Binary(t, "kms-responder"), "status", "--admin", admin, "--json").Output()
	var s status
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(out, &s)
}

// srvTargets asks addr for _vlmcs._tcp.example.test SRV with miekg/dns (cheaper than dig in a
// tight poll) and returns the "target:port" set, or an error.
func srvTargets(addr string) (map[string]bool, error) { return srvTargetsIn(addr, "example.test") }

// srvTargetsIn is srvTargets for _vlmcs._tcp.DOMAIN.
func srvTargetsIn(addr, domain string) (map[string]bool, error) {
	m := new(dns.Msg)
	m.SetQuestion("_vlmcs._tcp."+dns.Fqdn(domain), dns.TypeSRV)
	cl := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	resp, _, err := cl.Exchange(m, addr)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, rr := range resp.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			set[fmt.Sprintf("%s:%d", srv.Target, srv.Port)] = true
		}
	}
	return set, nil
}

// waitMembers waits until the SRV answer lists exactly the given responders.
func waitMembers(t *testing.T, c *harness.CoreDNS, d time.Duration, rs ...*kmsResponder) {
	t.Helper()
	harness.Eventually(t, d, "the SRV answer to list every responder", func() bool {
		set, err := srvTargets(c.Addr())
		if err != nil || len(set) != len(rs) {
			return false
		}
		for _, r := range rs {
			if !set[r.Member()] {
				return false
			}
		}
		return true
	})
}
