package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

func TestDecodeEPID(t *testing.T) {
	cat := catalog.Default()
	cases := []struct {
		epid, group, kind, os string
	}{
		{"03612-00206-256-521328-03-1033-17763.0000-3382026", "windows-10-2019", KindClient, "Windows 10 1809 (build 17763)"},
		{"03612-00206-556-123456-03-1033-17763.0000-3382026", "windows-server-2019", KindServer, "Windows Server 2019 (build 17763)"},
		{"03612-04919-000-020123-03-1033-26100.0000-0012025", "windows-server-2025", KindServer, "Windows Server 2025 (build 26100)"},
		{"03612-00206-600-000001-03-1033-20348.0000-0012025", "office-ltsc-2024", KindOffice, "Windows Server 2022 (build 20348)"},
		{"03612-00206-390-000001-03-1033-19045.0000-0012025", "windows-10-2015", KindClient, "build 19045 (Windows 10 1809 or later)"},
		{"03612-09999-000-000001-03-1033-17763.0000-0012025", "", "", "Windows 10 1809 / Server 2019 (build 17763)"},
	}
	for _, c := range cases {
		hk, err := DecodeEPID(cat, c.epid)
		if err != nil {
			t.Errorf("%s: %v", c.epid, err)
			continue
		}
		if hk.Group != c.group || hk.Kind != c.kind || hk.OS != c.os || hk.Channel != "volume" {
			t.Errorf("%s: %+v, want group %q kind %q os %q", c.epid, hk, c.group, c.kind, c.os)
		}
	}
	if _, err := DecodeEPID(cat, "not-an-epid"); err == nil {
		t.Error("malformed ePID accepted")
	}
}

func TestGVLKsForFamily(t *testing.T) {
	cat := catalog.Default()
	has := func(gs []GVLK, key string) bool {
		for _, g := range gs {
			if g.Key == key {
				return true
			}
		}
		return false
	}
	if g := gvlksFor(cat, KindClient, 19045); !has(g, "NPPR9-FWDCX-D2C8J-H872K-2YT43") || !has(g, "W269N-WFGWX-YVC9B-4J6C9-T83GX") {
		t.Errorf("Windows 10 client: %v", g)
	}
	if g := gvlksFor(cat, KindServer, 17763); !has(g, "N69G4-B89J2-4G8F4-WWYCC-J464C") || !has(g, "WMDGN-G9PQG-XVVXX-R3X43-63DFG") {
		t.Errorf("Server 2019: %v", g)
	}
	if g := gvlksFor(cat, KindClient, 7601); !has(g, "33PXH-7Y6KF-2VJC9-XBBR8-HVTHH") {
		t.Errorf("Windows 7: %v", g)
	}
}

func TestProbeIDsCoverEveryGroup(t *testing.T) {
	cat := catalog.Default()
	for _, app := range cat.Applications() {
		ids := probeIDs(cat, app.ID)
		for _, g := range cat.Groups() {
			if g.AppID != app.ID {
				continue
			}
			covered := false
			for _, id := range ids {
				covered = covered || g.Covers(app.ID, id.ID)
			}
			if !covered {
				t.Errorf("%s: group %s is covered by none of %d probe IDs", app.Key, g.Name, len(ids))
			}
		}
		if app.Key == "windows" && len(ids) > 2 {
			t.Errorf("windows: %d probe IDs, want at most 2 (Vista's ID covers all but China Government)", len(ids))
		}
	}
}

// testReport is a report with one finding of each bad kind plus a healthy one.
func testReport() *Report {
	rec := func(owner, target string, port uint16, zone string) Record {
		return Record{Domain: "corp.test.", Name: owner, Owner: owner, Zone: zone, Target: target, Port: port, Aliases: []string{}}
	}
	rep := &Report{Schema: SchemaV1, Started: time.Unix(1764806400, 0).UTC(), Duration: 1.5, DNSServer: "127.0.0.1:5353",
		Domains: []string{"corp.test.", "other.test."}, Summary: map[Class]int{}}
	rep.Findings = []Finding{
		{Record: rec("_vlmcs._tcp.corp.test.", "pc42.corp.test.", 1688, "corp.test."), Address: "10.0.0.42", Class: ClassRogue},
		{Record: rec("_vlmcs._tcp.child.corp.test.", "pc7.child.corp.test.", 1688, "corp.test."), Address: "10.0.0.7", Class: ClassRogueDead},
		{Record: rec("_vlmcs._tcp.corp.test.", "kms1.corp.test.", 1688, "corp.test."), Address: "10.0.0.1", Class: ClassHealthy, Approved: true},
		// A target with two addresses, one healthy: its record stays.
		{Record: rec("_vlmcs._tcp.corp.test.", "kms2.corp.test.", 1688, "corp.test."), Address: "10.0.0.2", Class: ClassHealthy, Approved: true},
		{Record: rec("_vlmcs._tcp.corp.test.", "kms2.corp.test.", 1688, "corp.test."), Address: "10.0.0.3", Class: ClassStale, Approved: true},
		{Record: rec("_vlmcs._tcp.other.test.", "o'brien.other.test.", 1688, "other.test."), Address: "10.0.0.9", Class: ClassNotKMS},
	}
	for _, f := range rep.Findings {
		rep.Summary[f.Class]++
	}
	return rep
}

func TestScripts(t *testing.T) {
	rep := testReport()
	if got := len(rep.Bad()); got != 3 {
		t.Errorf("%d bad records, want 3 (kms2 keeps its record: one address is healthy)", got)
	}
	var ns bytes.Buffer
	rep.WriteNSUpdate(&ns)
	want := `server 127.0.0.1 5353
zone corp.test.
; _vlmcs._tcp.corp.test. SRV 0 0 1688 pc42.corp.test.
update delete _vlmcs._tcp.corp.test. SRV 0 0 1688 pc42.corp.test.
; _vlmcs._tcp.child.corp.test. SRV 0 0 1688 pc7.child.corp.test.
update delete _vlmcs._tcp.child.corp.test. SRV 0 0 1688 pc7.child.corp.test.
send
server 127.0.0.1 5353
zone other.test.
; _vlmcs._tcp.other.test. SRV 0 0 1688 o'brien.other.test.
update delete _vlmcs._tcp.other.test. SRV 0 0 1688 o'brien.other.test.
send
`
	if !strings.HasSuffix(ns.String(), want) {
		t.Errorf("nsupdate script:\n%s\nwant it to end with:\n%s", ns.String(), want)
	}
	var ps bytes.Buffer
	rep.WritePowerShell(&ps)
	for _, w := range []string{"-ZoneName 'corp.test' -Name '_vlmcs._tcp.child' -RRType Srv", "DomainName -eq 'o''brien.other.test.'", "GSS-TSIG"} {
		if !strings.Contains(ps.String(), w) {
			t.Errorf("PowerShell lacks %q:\n%s", w, ps.String())
		}
	}
	var prom bytes.Buffer
	rep.WritePrometheus(&prom)
	for _, w := range []string{
		"# TYPE kmsdns_audit_records gauge\n",
		`kmsdns_audit_records{class="rogue",domain="corp.test"} 1` + "\n",
		`kmsdns_audit_records{class="unresolvable",domain="corp.test"} 0` + "\n",
		"kmsdns_audit_last_run_timestamp_seconds 1764806401\n",
	} {
		if !strings.Contains(prom.String(), w) {
			t.Errorf("prometheus output lacks %q:\n%s", w, prom.String())
		}
	}
}

// TestRemovalsStayInsideAuditedDomains: a record reached through a CNAME
// planted in an audited zone is removed by deleting that CNAME, never the
// SRV record at its target outside the audited domains; an alias above
// the audited domains, or one that also leads to a healthy host, is
// reported and left alone; a record outside the domains is never deleted.
func TestRemovalsStayInsideAuditedDomains(t *testing.T) {
	via := func(name, aliasOwner, aliasZone, owner, target string) Record {
		return Record{Domain: "ad.example.org.", Name: name, Owner: owner, Zone: "partner.test.", Target: target, Port: 1688,
			Aliases: []string{owner}, Alias: &Alias{Type: "CNAME", Owner: aliasOwner, Target: owner, Zone: aliasZone}}
	}
	rep := &Report{Started: time.Unix(1764806400, 0).UTC(), DNSServer: "127.0.0.1:53", Domains: []string{"ad.example.org."}}
	rep.Findings = []Finding{
		{Record: via("_vlmcs._tcp.lab.ad.example.org.", "_vlmcs._tcp.lab.ad.example.org.", "ad.example.org.", "_vlmcs._tcp.partner.test.", "rogue1.partner.test."), Address: "10.9.0.1", Class: ClassRogue},
		{Record: via("_vlmcs._tcp.lab.ad.example.org.", "_vlmcs._tcp.lab.ad.example.org.", "ad.example.org.", "_vlmcs._tcp.partner.test.", "rogue2.partner.test."), Address: "10.9.0.2", Class: ClassRogueDead},
		{Record: via("_vlmcs._tcp.mixed.ad.example.org.", "_vlmcs._tcp.mixed.ad.example.org.", "ad.example.org.", "_vlmcs._tcp.other.test.", "rogue3.other.test."), Address: "10.9.0.3", Class: ClassRogue},
		{Record: via("_vlmcs._tcp.mixed.ad.example.org.", "_vlmcs._tcp.mixed.ad.example.org.", "ad.example.org.", "_vlmcs._tcp.other.test.", "kms.other.test."), Address: "10.9.0.4", Class: ClassHealthy, Approved: true},
		{Record: via("_vlmcs._tcp.x.ad.example.org.", "example.org.", "example.org.", "_vlmcs._tcp.x.elsewhere.test.", "rogue4.elsewhere.test."), Address: "10.9.0.5", Class: ClassRogue},
		{Record: Record{Domain: "dn.ad.example.org.", Name: "_vlmcs._tcp.dn.ad.example.org.", Owner: "_vlmcs._tcp.dn.elsewhere.test.", Zone: "elsewhere.test.",
			Target: "rogue6.elsewhere.test.", Port: 1688, Alias: &Alias{Type: "DNAME", Owner: "dn.ad.example.org.", Target: "dn.elsewhere.test.", Zone: "ad.example.org."}},
			Address: "10.9.0.7", Class: ClassRogueDead},
		{Record: Record{Domain: "partner.test.", Name: "_vlmcs._tcp.partner.test.", Owner: "_vlmcs._tcp.partner.test.", Zone: "partner.test.", Target: "rogue5.partner.test.", Port: 1688}, Address: "10.9.0.6", Class: ClassRogue},
	}
	rems, skipped := rep.Removals()
	if len(rems) != 2 || rems[0].Type != "CNAME" || rems[0].Owner != "_vlmcs._tcp.lab.ad.example.org." || rems[0].Zone != "ad.example.org." || len(rems[0].Records) != 2 ||
		rems[1].Type != "DNAME" || rems[1].Owner != "dn.ad.example.org." || rems[1].RData() != "dn.elsewhere.test." {
		t.Fatalf("removals %+v, want the CNAME at _vlmcs._tcp.lab.ad.example.org. for both its records and the DNAME at dn.ad.example.org.", rems)
	}
	if len(skipped) != 3 {
		t.Errorf("skipped %q, want the mixed alias, the alias above the domains and the foreign record", skipped)
	}
	var ns, ps bytes.Buffer
	rep.WriteNSUpdate(&ns)
	rep.WritePowerShell(&ps)
	if !strings.Contains(ns.String(), "zone ad.example.org.\n") || !strings.Contains(ns.String(), "update delete _vlmcs._tcp.lab.ad.example.org. CNAME _vlmcs._tcp.partner.test.\n") {
		t.Errorf("nsupdate script does not delete the alias:\n%s", ns.String())
	}
	for _, out := range []string{ns.String(), ps.String()} {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, ";") || strings.HasPrefix(l, "#") {
				continue
			}
			for _, foreign := range []string{"partner.test", "other.test", "elsewhere.test", "zone example.org", "ZoneName 'example.org'"} {
				if strings.Contains(l, foreign) && !strings.Contains(l, "CNAME _vlmcs._tcp.partner.test.") && !strings.Contains(l, "HostNameAlias -eq '_vlmcs._tcp.partner.test.'") &&
					!strings.Contains(l, "DNAME dn.elsewhere.test.") && !strings.Contains(l, "DomainNameAlias -eq 'dn.elsewhere.test.'") {
					t.Errorf("a command touches %s outside the audited domains: %s", foreign, l)
				}
			}
		}
	}
	if !strings.Contains(ps.String(), "-ZoneName 'ad.example.org' -Name '_vlmcs._tcp.lab' -RRType CName") {
		t.Errorf("PowerShell does not delete the alias:\n%s", ps.String())
	}
}

// TestTableNeverCleanWithProblems: the table's last word is Clean only when
// nothing is to delete and no lookup failed.
func TestTableNeverCleanWithProblems(t *testing.T) {
	healthy := Finding{Record: Record{Domain: "corp.test.", Owner: "_vlmcs._tcp.corp.test.", Zone: "corp.test.", Target: "kms1.corp.test.", Port: 1688},
		Address: "10.0.0.1", Class: ClassHealthy, Approved: true}
	for _, tc := range []struct {
		name     string
		findings []Finding
		problems []string
		want     string
	}{
		{"healthy only", []Finding{healthy}, nil, "Clean:"},
		{"healthy and a failed lookup", []Finding{healthy}, []string{"SRV _VLMCS._TCP.b.test.: connection refused"}, "Incomplete:"},
		{"nothing found, a failed lookup", nil, []string{"SRV _VLMCS._TCP.b.test.: connection refused"}, "Incomplete:"},
	} {
		rep := &Report{Domains: []string{"corp.test."}, Findings: tc.findings, Problems: tc.problems, Summary: map[Class]int{}}
		var b bytes.Buffer
		rep.WriteTable(&b)
		if !strings.Contains(b.String(), tc.want) || tc.want != "Clean:" && strings.Contains(b.String(), "Clean") {
			t.Errorf("%s: want %q and never Clean with problems:\n%s", tc.name, tc.want, b.String())
		}
	}
}
