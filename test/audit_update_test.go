package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
)

// The deletion tests need a DNS server that takes RFC 2136 updates, which
// CoreDNS's file plugin does not: BIND's named (Debian bind9) stands in for
// a Windows DNS server that accepts nonsecure or TSIG-signed updates.

const auditKeySecret = "c2VjcmV0LWtleS1mb3ItdGhlLWF1ZGl0LWZpeC10ZXN0IQ=="

// startNamedZones runs named in the foreground on a free loopback port serving
// zone corp.test from zone text, with the given allow-update clause.
// With partner not empty it also serves partner.test from it (updates
// allowed there as well: nothing but the tool's scope keeps a fix out).
// namedBinary returns BIND's named, which the tests run as an authoritative server and as a
// resolver in front of CoreDNS (Debian's bind9; build/tools.sh installs it).
func namedBinary(t *testing.T) string {
	t.Helper()
	if named, err := exec.LookPath("named"); err == nil {
		return named
	}
	for _, p := range []string{"/usr/sbin/named", "/sbin/named"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("named not found: install bind9 (apt-get install bind9); build/tools.sh does")
	return ""
}

func startNamedZones(t *testing.T, zone, partner, allowUpdate string) (*harness.Process, string) {
	t.Helper()
	named := namedBinary(t)
	dir := t.TempDir()
	port := harness.FreePort(t)
	harness.WriteFile(t, dir, "db.corp.test", zone)
	partnerClause := ""
	if partner != "" {
		harness.WriteFile(t, dir, "db.partner.test", partner)
		partnerClause = fmt.Sprintf(`zone "partner.test" { type primary; file "%s/db.partner.test"; allow-update { %s }; };`, dir, allowUpdate)
	}
	harness.WriteFile(t, dir, "named.conf", fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	allow-transfer { 127.0.0.1; };
	notify no;
};
controls { };
key "audit-key." { algorithm hmac-sha256; secret "%[3]s"; };
zone "corp.test" { type primary; file "%[1]s/db.corp.test"; allow-update { %[4]s }; };
%[5]s
`, dir, port, auditKeySecret, allowUpdate, partnerClause))
	p := harness.Start(t, dir, named, "-g", "-n", "1", "-c", filepath.Join(dir, "named.conf"))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	harness.Eventually(t, 20*time.Second, "named answering", func() bool {
		if p.Exited() {
			t.Fatalf("named exited:\n%s", p.Output())
		}
		m := new(dns.Msg)
		m.SetQuestion("corp.test.", dns.TypeSOA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
	})
	return p, addr
}

// namedZone holds every class the deletion must tell apart.
func namedZone(kms1, ws, dead, stale int) string {
	return fmt.Sprintf(`$ORIGIN corp.test.
$TTL 600
@            IN SOA dc1 hostmaster 1 7200 3600 1209600 30
@            IN NS  dc1
dc1          IN A   127.0.0.1
kms1         IN A   127.0.0.1
pc42         IN A   127.0.0.1
gone         IN A   127.0.0.1
oldkms       IN A   127.0.0.1
pc7.child    IN A   127.0.0.1
_ldap._tcp   IN SRV 0 100 389 dc1
_vlmcs._tcp  IN SRV 0 0 %[1]d kms1
_vlmcs._tcp  IN SRV 0 0 %[2]d pc42
_vlmcs._tcp  IN SRV 0 0 %[3]d gone
_vlmcs._tcp  IN SRV 0 0 %[4]d oldkms
_vlmcs._tcp  IN SRV 0 0 1688 nohost
_vlmcs._tcp.child IN SRV 0 0 %[2]d pc7.child
`, kms1, ws, dead, stale)
}

// partnerZone is a zone outside the audited domain that a planted alias in
// corp.test points into: its rogue SRV record must survive every fix.
func partnerZone(ws int) string {
	return fmt.Sprintf(`$ORIGIN partner.test.
$TTL 600
@            IN SOA ns hostmaster 1 7200 3600 1209600 30
@            IN NS  ns
ns           IN A   127.0.0.1
rogue        IN A   127.0.0.1
_vlmcs._tcp  IN SRV 0 0 %d rogue
`, ws)
}

// plantedAlias is the alias in corp.test that leads to partner.test.
const plantedAlias = "_vlmcs._tcp.lab IN CNAME _vlmcs._tcp.partner.test.\n"

// zoneRRs transfers corp.test and returns its records (SOA left out) as
// sorted presentation strings.
func zoneRRs(t *testing.T, addr string) []string {
	t.Helper()
	return transferRRs(t, addr, "corp.test.")
}

// transferRRs transfers zone and returns its records (SOA left out) as
// sorted presentation strings.
func transferRRs(t *testing.T, addr, zone string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetAxfr(zone)
	ch, err := new(dns.Transfer).In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		for _, rr := range env.RR {
			if rr.Header().Rrtype == dns.TypeSOA {
				continue
			}
			out = append(out, strings.ToLower(rr.String()))
		}
	}
	sort.Strings(out)
	return out
}

// diff returns what is in a but not in b.
func diff(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// wantRemoved lists the records the deletion must remove: the rogue, rogue
// dead, stale, unresolvable and child records, nothing else.
func wantRemoved(ws, dead, stale int) []string {
	out := []string{
		fmt.Sprintf("_vlmcs._tcp.corp.test.\t600\tin\tsrv\t0 0 %d pc42.corp.test.", ws),
		fmt.Sprintf("_vlmcs._tcp.corp.test.\t600\tin\tsrv\t0 0 %d gone.corp.test.", dead),
		fmt.Sprintf("_vlmcs._tcp.corp.test.\t600\tin\tsrv\t0 0 %d oldkms.corp.test.", stale),
		"_vlmcs._tcp.corp.test.\t600\tin\tsrv\t0 0 1688 nohost.corp.test.",
		fmt.Sprintf("_vlmcs._tcp.child.corp.test.\t600\tin\tsrv\t0 0 %d pc7.child.corp.test.", ws),
		"_vlmcs._tcp.lab.corp.test.\t600\tin\tcname\t_vlmcs._tcp.partner.test.",
	}
	sort.Strings(out)
	return out
}

func TestAuditNSUpdateScriptRemovesExactlyTheBadRecords(t *testing.T) {
	kms1 := startAuditHost(t, "--group", "windows-server-2025")
	ws := startAuditHost(t, "--group", "windows-10-2019", "--host-build", "17763")
	dead, stale := harness.FreePort(t), harness.FreePort(t)
	_, addr := startNamedZones(t, namedZone(kms1.Port, ws.Port, dead, stale)+plantedAlias, partnerZone(ws.Port), "127.0.0.1;")
	before, partnerBefore := zoneRRs(t, addr), transferRRs(t, addr, "partner.test.")

	dir := t.TempDir()
	script, ps := filepath.Join(dir, "delete.nsupdate"), filepath.Join(dir, "delete.ps1")
	code, out, errOut := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", addr, "--domain", "corp.test", "--axfr",
		"--approve", "kms1.corp.test", "--approve", "oldkms.corp.test", "--nsupdate-out", script, "--powershell-out", ps)
	if code != 3 {
		t.Fatalf("audit exit %d, want 3\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nsupdate script:\n%s", b)
	nsu := exec.Command(harness.Tool(t, "nsupdate"), "-v", script)
	if o, err := nsu.CombinedOutput(); err != nil {
		t.Fatalf("nsupdate %s: %v\n%s", script, err, o)
	}
	after := zoneRRs(t, addr)
	removed, added := diff(before, after), diff(after, before)
	if strings.Join(removed, "\n") != strings.Join(wantRemoved(ws.Port, dead, stale), "\n") || len(added) != 0 {
		t.Errorf("nsupdate removed:\n%s\nadded:\n%s\nwant removed:\n%s", strings.Join(removed, "\n"), strings.Join(added, "\n"),
			strings.Join(wantRemoved(ws.Port, dead, stale), "\n"))
	}
	p, err := os.ReadFile(ps)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(p), "Remove-DnsServerResourceRecord -ZoneName 'corp.test'"); n != 6 || strings.Contains(string(p), "-ZoneName 'partner.test'") {
		t.Errorf("PowerShell script has %d Remove-DnsServerResourceRecord lines in corp.test, want 6 and none in partner.test:\n%s", n, p)
	}
	if !strings.Contains(string(p), "-Name '_vlmcs._tcp.lab' -RRType CName") {
		t.Errorf("PowerShell script does not delete the planted alias:\n%s", p)
	}
	if strings.Contains(string(b), "zone partner.test") || strings.Contains(string(b), "update delete _vlmcs._tcp.partner.test") {
		t.Errorf("nsupdate script touches partner.test, outside the audited domain:\n%s", b)
	}
	if after := transferRRs(t, addr, "partner.test."); strings.Join(after, "\n") != strings.Join(partnerBefore, "\n") {
		t.Errorf("partner.test changed:\n%s", strings.Join(after, "\n"))
	}
	if !strings.Contains(string(p), "-Name '_vlmcs._tcp.child'") || !strings.Contains(string(p), "GSS-TSIG") {
		t.Errorf("PowerShell script lacks the child record's relative name or the GSS-TSIG note:\n%s", p)
	}
	// Audited again, the zone is clean.
	if code, out, _ := runKMS(t, "", "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", addr, "--domain", "corp.test", "--axfr",
		"--approve", "kms1.corp.test", "--approve", "oldkms.corp.test"); code != 0 {
		t.Errorf("after the script: exit %d, want 0\n%s", code, out)
	}
}

func TestAuditFixDeletesBySignedUpdate(t *testing.T) {
	kms1 := startAuditHost(t, "--group", "windows-server-2025")
	ws := startAuditHost(t, "--group", "windows-10-2019", "--host-build", "17763")
	dead, stale := harness.FreePort(t), harness.FreePort(t)
	_, addr := startNamedZones(t, namedZone(kms1.Port, ws.Port, dead, stale)+plantedAlias, partnerZone(ws.Port), `key "audit-key.";`)
	before, partnerBefore := zoneRRs(t, addr), transferRRs(t, addr, "partner.test.")
	dir := t.TempDir()
	key := harness.WriteFile(t, dir, "audit.key", "key \"audit-key.\" {\n\talgorithm hmac-sha256;\n\tsecret \""+auditKeySecret+"\";\n};\n")
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"audit", "--probe-loopback", "--ports", "1024-65535", "--dns", addr, "--domain", "corp.test", "--axfr", "--approve", "kms1.corp.test", "--approve", "oldkms.corp.test"}

	// Without a terminal and without --yes, --fix refuses before deleting
	// anything: on a pipe, and on /dev/null (a character device, but no
	// terminal: what a timer or cron job hands it).
	if code, _, errOut := runKMS(t, "y\n", append(base, "--fix")...); code != 64 || !strings.Contains(errOut, "--yes") {
		t.Errorf("--fix without --yes on a pipe: exit %d, want 64\n%s", code, errOut)
	}
	devNull := exec.Command(harness.ProcessBinary(t, "kms-responder"), append(base, "--fix", "--tsig-key-file", key)...)
	if null, err := os.Open(os.DevNull); err == nil {
		defer null.Close()
		devNull.Stdin = null
	}
	if out, err := devNull.CombinedOutput(); devNull.ProcessState == nil || devNull.ProcessState.ExitCode() != 64 || !strings.Contains(string(out), "give --yes") {
		t.Errorf("--fix without --yes on /dev/null: %v, want exit 64 naming --yes\n%s", err, out)
	}
	if got := zoneRRs(t, addr); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("--fix without --yes changed the zone")
	}
	// On a terminal --fix asks; answering no deletes nothing.
	if scriptTool, err := exec.LookPath("script"); err == nil {
		line := harness.ProcessBinary(t, "kms-responder")
		for _, a := range append(base, "--fix", "--tsig-key-file", key) {
			line += " '" + a + "'"
		}
		cmd := exec.Command(scriptTool, "-qec", line, "/dev/null")
		cmd.Stdin = strings.NewReader("n\n")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "Delete them? [y/N]") || !strings.Contains(string(out), "nothing deleted") {
			t.Errorf("--fix on a terminal did not ask, or deleted:\n%s", out)
		}
		if got := zoneRRs(t, addr); strings.Join(got, "\n") != strings.Join(before, "\n") {
			t.Fatalf("answering no to --fix changed the zone")
		}
	}
	// Unsigned, the server refuses: exit 1 (the fix failed), and the error says what to do.
	code, _, errOut := runKMS(t, "", append(base, "--fix", "--yes")...)
	if code != 1 || !strings.Contains(errOut, "REFUSED") || !strings.Contains(errOut, "--tsig-key-file") {
		t.Errorf("unsigned --fix: exit %d, want 1 with REFUSED and advice\n%s", code, errOut)
	}
	if got := zoneRRs(t, addr); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("a refused --fix changed the zone")
	}
	code, out, errOut := runKMS(t, "", append(base, "--fix", "--yes", "--tsig-key-file", key)...)
	if code != 0 {
		t.Errorf("--fix: exit %d, want 0 (clean after the re-audit)\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"--fix will delete 6 record(s)", "_vlmcs._tcp.lab.corp.test. CNAME _vlmcs._tcp.partner.test.", "zone corp.test.: deleted 6 record(s)", "auditing again"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("--fix output lacks %q:\n%s", want, errOut)
		}
	}
	after := zoneRRs(t, addr)
	removed, added := diff(before, after), diff(after, before)
	if strings.Join(removed, "\n") != strings.Join(wantRemoved(ws.Port, dead, stale), "\n") || len(added) != 0 {
		t.Errorf("--fix removed:\n%s\nadded:\n%s", strings.Join(removed, "\n"), strings.Join(added, "\n"))
	}
	if after := transferRRs(t, addr, "partner.test."); strings.Join(after, "\n") != strings.Join(partnerBefore, "\n") {
		t.Errorf("--fix changed partner.test, outside the audited domain:\n%s", strings.Join(after, "\n"))
	}
}
