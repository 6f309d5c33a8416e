package ad

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/samba"
)

// srvPorts returns the ports of the DC's _vlmcs._tcp SRV records of the lab (one per host).
func (l *lab) srvState(t *testing.T) (kms1, pc42 bool) {
	t.Helper()
	for _, s := range lookup(t, l.SRV(), dns.TypeSRV) {
		kms1 = kms1 || strings.Contains(s, " "+strconv.Itoa(l.KMS1.Port)+" kms1.")
		pc42 = pc42 || strings.Contains(s, " "+strconv.Itoa(l.PC42.Port)+" pc42.")
	}
	return kms1, pc42
}

// reRegisterRogue puts pc42's SRV back, as the workstation does at its next registration.
func (l *lab) reRegisterRogue(t *testing.T) {
	t.Helper()
	register(t, fmt.Sprintf("%s 600 SRV 0 100 %d %s", l.SRV(), l.PC42.Port, l.Name("pc42")))
}

// TestAuditFixByGSSTSIG: the DC takes secure updates only, so an unsigned --fix is refused;
// --fix --gss-tsig deletes the rogue workstation's record and leaves the approved one, with
// the operator's ticket (KRB5CCNAME, after kinit) and with a keytab; each refusal says why in
// the operator's words; the --nsupdate-out script for nsupdate -g deletes it as well.
func TestAuditFixByGSSTSIG(t *testing.T) {
	l := startLab(t, "fix")
	base := []string{"audit", "--probe-loopback", "--ports", "1024-65535", "--dns", dc.DNSAddr(), "--domain", l.Domain, "--approve", l.Name("kms1"), "--fix", "--yes"}

	code, _, errOut := runKMS(t, nil, base...)
	if code != 1 || !strings.Contains(errOut, "REFUSED") || !strings.Contains(errOut, "--gss-tsig") {
		t.Errorf("unsigned --fix: exit %d, want 1 with REFUSED and --gss-tsig advised\n%s", code, errOut)
	}
	if kms1, pc42 := l.srvState(t); !kms1 || !pc42 {
		t.Fatalf("a refused --fix changed the zone (kms1 %v, pc42 %v)", kms1, pc42)
	}

	// The refusals, before the deletions that work.
	dir := t.TempDir()
	refusals := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no ticket", []string{"KRB5CCNAME=FILE:" + filepath.Join(dir, "none")}, nil, "no Kerberos ticket"},
		{"wrong SPN", nil, []string{"--gss-server-name", "dc9.corp.example"}, "knows no service principal DNS/dc9.corp.example"},
		{"zone ACL", []string{"KRB5CCNAME=FILE:" + userTicket(t, "alice", dir)}, nil, "access control does not let alice@CORP.EXAMPLE change these records"},
	}
	for _, r := range refusals {
		code, _, errOut := runKMS(t, r.env, append(append(base, "--gss-tsig"), r.args...)...)
		if code != 1 || !strings.Contains(errOut, r.want) {
			t.Errorf("%s: exit %d, want 1 saying %q\n%s", r.name, code, r.want, errOut)
		}
		if kms1, pc42 := l.srvState(t); !kms1 || !pc42 {
			t.Fatalf("%s: a refused --fix changed the zone (kms1 %v, pc42 %v)", r.name, kms1, pc42)
		}
	}

	// By ticket (the administrator's, in KRB5CCNAME).
	code, out, errOut := runKMS(t, nil, append(base, "--gss-tsig")...)
	if code != 0 || !strings.Contains(errOut, "deleted 1 record(s)") || !strings.Contains(errOut, "signed by GSS-TSIG with the ticket in") {
		t.Errorf("--fix --gss-tsig by ticket: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if kms1, pc42 := l.srvState(t); !kms1 || pc42 {
		t.Errorf("after --fix by ticket: kms1 present %v (want true), pc42 present %v (want false)", kms1, pc42)
	}

	// By keytab, with no ticket cache at all.
	l.reRegisterRogue(t)
	kt := filepath.Join(dir, "admin.keytab")
	if out, err := dc.Tool(context.Background(), "domain", "exportkeytab", kt, "--principal=administrator@"+samba.Realm); err != nil {
		t.Fatalf("exportkeytab: %v\n%s", err, out)
	}
	env := []string{"KRB5CCNAME=FILE:" + filepath.Join(dir, "none")}
	code, out, errOut = runKMS(t, env, append(base, "--gss-tsig", "--krb5-keytab", kt, "--krb5-principal", "administrator@"+samba.Realm)...)
	if code != 0 || !strings.Contains(errOut, "deleted 1 record(s)") {
		t.Errorf("--fix --gss-tsig by keytab: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if kms1, pc42 := l.srvState(t); !kms1 || pc42 {
		t.Errorf("after --fix by keytab: kms1 present %v (want true), pc42 present %v (want false)", kms1, pc42)
	}

	// The script for nsupdate -g. (nsupdate itself exits 1 against Samba 4.17: it cannot
	// verify Samba's signature on the answer, whose digest leaves out the request MAC's
	// length; the update is applied all the same, which is what is checked.)
	l.reRegisterRogue(t)
	script := filepath.Join(dir, "delete.nsupdate")
	code, _, errOut = runKMS(t, nil, "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", dc.DNSAddr(), "--domain", l.Domain, "--approve", l.Name("kms1"),
		"--gss-tsig", "--nsupdate-out", script)
	b, err := os.ReadFile(script)
	if code != 3 || err != nil || !strings.Contains(string(b), "\ngsstsig\n") || !strings.Contains(string(b), "nsupdate -g") {
		t.Fatalf("--gss-tsig --nsupdate-out: exit %d (%v), script:\n%s\n%s", code, err, b, errOut)
	}
	nsOut, _ := exec.Command(harness.Tool(t, "nsupdate"), script).CombinedOutput()
	if kms1, pc42 := l.srvState(t); !kms1 || pc42 {
		t.Errorf("after the nsupdate -g script: kms1 present %v (want true), pc42 present %v (want false)\n%s\n%s", kms1, pc42, b, nsOut)
	}
}

// userTicket creates a domain user with no rights over DNS and returns the path of a fresh
// credential cache holding its ticket.
func userTicket(t *testing.T, user, dir string) string {
	t.Helper()
	const pass = "Kmsdns-User-Pass-2!"
	if out, err := dc.Tool(context.Background(), "user", "add", user, pass); err != nil && !strings.Contains(out, "already exists") {
		t.Fatalf("samba-tool user add %s: %v", user, err)
	}
	cc := filepath.Join(dir, user+".ccache")
	if err := dc.Kinit(user, pass, "FILE:"+cc); err != nil {
		t.Fatal(err)
	}
	return cc
}
