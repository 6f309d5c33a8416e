package ad

import (
	"bytes"
	"context"
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

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/test/harness"
)

// windowsServer is the edition the clients activate: kms1's Windows Server host key covers it,
// the rogue workstation's Windows client host key does not.
const windowsServer = "Windows Server 2022 Standard"

// kmsHost is a running `kms-responder serve` on 127.0.0.1.
type kmsHost struct {
	*harness.Process
	Port int
}

// Addr is the KMS address.
func (h *kmsHost) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(h.Port)) }

// startKMS starts kms-responder serve with args after the listen/data/metrics ones and waits
// until it binds the KMS interface.
func startKMS(t *testing.T, args ...string) *kmsHost {
	t.Helper()
	return startKMSAt(t, harness.FreePort(t), args...)
}

// startKMSAt is startKMS on a given port (one the arguments name too).
func startKMSAt(t *testing.T, port int, args ...string) *kmsHost {
	t.Helper()
	h := &kmsHost{Port: port}
	dir := t.TempDir()
	all := append([]string{"serve", "--listen", h.Addr(), "--data", filepath.Join(dir, "data"),
		"--metrics", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), "--drain", "0s", "--log-format", "text"}, args...)
	h.Process = harness.Start(t, dir, harness.ProcessBinary(t, "kms-responder"), all...)
	harness.Eventually(t, 15*time.Second, "kms-responder binding on "+h.Addr(), func() bool {
		if h.Exited() {
			t.Fatalf("kms-responder exited:\n%s", h.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return dcerpc.Probe(ctx, h.Addr(), time.Second) == nil
	})
	return h
}

// lab is one test's corner of the AD domain: DOMAIN (a name below corp.example, so tests
// sharing the DC do not meet) holding the approved KMS host kms1 and a rogue workstation
// pc42 that registered _vlmcs._tcp by GSS-TSIG with a Windows client KMS host key, at a
// better SRV priority than kms1: a client asking the DC directly lands on the rogue.
type lab struct {
	Domain string
	KMS1   *kmsHost // approved, Windows Server host key
	PC42   *kmsHost // rogue, Windows client host key
}

// Name is label.Domain.
func (l *lab) Name(label string) string { return label + "." + l.Domain }

// SRV is the _vlmcs._tcp owner.
func (l *lab) SRV() string { return "_vlmcs._tcp." + l.Domain }

// startLab starts both KMS hosts and registers them in AD under sub.corp.example.
func startLab(t *testing.T, sub string) *lab {
	t.Helper()
	needDC(t)
	l := &lab{Domain: sub + ".corp.example"}
	l.KMS1 = startKMS(t, "--group", "windows-server-2025")
	l.PC42 = startKMS(t, "--group", "windows-10-2019", "--host-build", "17763")
	register(t,
		fmt.Sprintf("%s 600 SRV 10 100 %d %s", l.SRV(), l.KMS1.Port, l.Name("kms1")),
		l.Name("kms1")+" 600 A 127.0.0.1",
		fmt.Sprintf("%s 600 SRV 0 100 %d %s", l.SRV(), l.PC42.Port, l.Name("pc42")),
		l.Name("pc42")+" 600 A 127.0.0.1")
	return l
}

// runKMS runs kms-responder with args (and the test's environment: KRB5_CONFIG, KRB5CCNAME)
// and returns exit code, stdout and stderr.
func runKMS(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(harness.ProcessBinary(t, "kms-responder"), args...)
	if env != nil {
		cmd.Env = append(cmd.Environ(), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		t.Fatalf("kms-responder %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

// discoverReport is the part of `discover --json` the tests read.
type discoverReport struct {
	Server   string `json:"server"`
	Verdict  string `json:"verdict"`
	Attempts []struct {
		Target string `json:"target"`
		Served bool   `json:"served"`
	} `json:"attempts"`
}

// discover runs a Windows-like discovery of a KMS host for windowsServer through dnsAddr.
func discover(t *testing.T, dnsAddr, domain string) (discoverReport, string) {
	t.Helper()
	code, out, errOut := runKMS(t, nil, "discover", "--dns", dnsAddr, "--domain", domain, "--product", windowsServer,
		"--cmid", "random", "--json", "--timeout", "2s")
	var r discoverReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("discover via %s: exit %d, no JSON (%v):\n%s%s", dnsAddr, code, err, out, errOut)
	}
	return r, out + errOut
}

// auditFinding is the part of an audit --json finding the tests read.
type auditFinding struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Port     int    `json:"port"`
	Approved bool   `json:"approved"`
	Class    string `json:"class"`
}

// auditReport is the part of audit --json the tests read.
type auditReport struct {
	Findings []auditFinding `json:"findings"`
}

// classes maps each finding's target (without the domain) to its class.
func (r auditReport) classes(domain string) map[string]string {
	out := map[string]string{}
	for _, f := range r.Findings {
		out[strings.TrimSuffix(strings.TrimSuffix(f.Target, "."), "."+domain)] = f.Class
	}
	return out
}
