package test

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
)

// upstreamZones stands in for Active Directory DNS: file zones whose _vlmcs._tcp names reach
// rogue and approved SRV targets through every kind of alias.
var upstreamZones = []harness.File{
	{Name: "db.cname", Content: `$ORIGIN cname.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN CNAME rec
rec	300 IN SRV 0 0 1688 kms1
rec	300 IN SRV 0 0 1688 rogue
kms1	600 IN A 127.0.0.1
rogue	600 IN A 127.0.0.66
`},
	{Name: "db.dname", Content: `$ORIGIN dname.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_tcp	600 IN DNAME evil
_vlmcs.evil	600 IN SRV 0 0 1688 rogue
rogue	600 IN A 127.0.0.66
`},
	{Name: "db.loop", Content: `$ORIGIN loop.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN CNAME a
a	600 IN CNAME _vlmcs._tcp
`},
	{Name: "db.out", Content: `$ORIGIN out.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN CNAME _vlmcs._tcp.elsewhere.invalid.
`},
	{Name: "db.esc", Content: `$ORIGIN esc.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN SRV 0 0 1688 evil\.kms.esc.test.
_vlmcs._tcp	600 IN SRV 0 0 1688 a.kms.esc.test.
_vlmcs._tcp.sub	600 IN SRV 0 0 1688 rogue.esc.test.
evil\.kms	600 IN A 127.0.0.1
a.kms	600 IN A 127.0.0.1
rogue	600 IN A 127.0.0.66
kms9	600 IN A 127.0.0.66
`},
	{Name: "db.pub", Content: `$ORIGIN example.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_tcp	600 IN DNAME evil.example.test.
_vlmcs.evil	600 IN SRV 0 0 1688 rogue.example.test.
_vlmcs._tcp.sub	600 IN SRV 0 0 1688 rogue.example.test.
*._vlmcs._tcp	600 IN SRV 0 0 1688 rogue.example.test.
rogue	600 IN A 127.0.0.66
`},
}

const upstreamCorefile = `cname.test:{{PORT}} dname.test:{{PORT}} loop.test:{{PORT}} out.test:{{PORT}} esc.test:{{PORT}} example.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.cname cname.test
	file {{DIR}}/db.dname dname.test
	file {{DIR}}/db.loop loop.test
	file {{DIR}}/db.out out.test
	file {{DIR}}/db.esc esc.test
	file {{DIR}}/db.pub example.test
}
`

func TestScrubAliasesAndLabels(t *testing.T) {
	up := harness.StartCoreDNS(t, upstreamCorefile, upstreamZones...)
	// The upstream really serves the rogue targets through the aliases, so the test means something.
	for _, q := range []string{"_vlmcs._tcp.cname.test", "_vlmcs._tcp.dname.test", "_vlmcs._tcp.esc.test", "_vlmcs._tcp.sub.example.test"} {
		if out := up.Dig(t, q, "SRV"); !strings.Contains(out, "rogue") && !strings.Contains(out, `evil\.kms`) {
			t.Fatalf("upstream answer for %s holds no rogue target:\n%s", q, out)
		}
	}
	front := harness.StartCoreDNS(t, `cname.test:{{PORT}} dname.test:{{PORT}} loop.test:{{PORT}} out.test:{{PORT}} esc.test:{{PORT}} example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.cname.test *.kms.esc.test 127.0.0.0/8 kms9.esc.test=127.0.0.9
		scrub cname.test dname.test loop.test out.test esc.test
		probe off
	}
	cache 30
	forward . `+up.Addr()+`
}
`)
	noRogue := func(q, qtype, out string) {
		t.Helper()
		if l := strings.ToLower(out); strings.Contains(l, "rogue") || strings.Contains(l, `evil\.kms`) || strings.Contains(l, "\tcname\t") || strings.Contains(l, "\tdname\t") {
			t.Errorf("%s %s: rogue target or alias reached the client:\n%s", q, qtype, out)
		}
	}
	for i := range 2 { // the second round comes out of cache: still filtered
		// CNAME at the question name: flattened to the approved target, TTL of the chain.
		out := front.Dig(t, "_vlmcs._tcp.cname.test", "SRV")
		noRogue("cname", "SRV", out)
		if !regexp.MustCompile(`(?m)^_vlmcs\._tcp\.cname\.test\.\s+\d+\s+IN\s+SRV\s+0 0 1688 kms1\.cname\.test\.$`).MatchString(out) {
			t.Errorf("round %d: approved target not answered at the question name:\n%s", i, out)
		}
		for _, qt := range []string{"ANY", "CNAME"} {
			noRogue("cname", qt, front.Dig(t, "_vlmcs._tcp.cname.test", qt))
		}
		// DNAME above the question name, leading to a rogue target: NODATA.
		out = front.Dig(t, "_vlmcs._tcp.dname.test", "SRV")
		noRogue("dname", "SRV", out)
		if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "ANSWER: 0") {
			t.Errorf("round %d: DNAME chain to a rogue target: want NODATA:\n%s", i, out)
		}
		// A chain that leaves for a name the answer does not resolve: NODATA, no dangling alias.
		out = front.Dig(t, "_vlmcs._tcp.out.test", "SRV")
		noRogue("out", "SRV", out)
		if !strings.Contains(out, "ANSWER: 0") {
			t.Errorf("round %d: dangling chain handed out:\n%s", i, out)
		}
		// A loop: SERVFAIL.
		if out := front.Dig(t, "_vlmcs._tcp.loop.test", "SRV"); !strings.Contains(out, "status: SERVFAIL") {
			t.Errorf("round %d: alias loop: want SERVFAIL:\n%s", i, out)
		}
		// An escaped dot makes one label: evil\.kms.esc.test is not below kms.esc.test.
		out = front.Dig(t, "_vlmcs._tcp.esc.test", "SRV")
		noRogue("esc", "SRV", out)
		if !strings.Contains(out, "a.kms.esc.test.") {
			t.Errorf("round %d: approved a.kms.esc.test lost:\n%s", i, out)
		}
		// A client's search domain below a scrub zone and below a publish zone.
		noRogue("sub.esc", "SRV", front.Dig(t, "_vlmcs._tcp.sub.esc.test", "SRV"))
		noRogue("sub.example", "SRV", front.Dig(t, "_vlmcs._tcp.sub.example.test", "SRV"))
	}
	// The plugin logs at most 10 lines a second and the rounds above log more than that: let
	// the window pass so the DNAME line checked below is not the one suppressed.
	time.Sleep(1100 * time.Millisecond)
	// Publish zone: vlmcs owns _vlmcs._tcp.<zone> and below it; the upstream's DNAME at _tcp
	// and wildcard below _vlmcs._tcp never reach a client.
	out := front.Dig(t, "_vlmcs._tcp.example.test", "SRV")
	noRogue("publish", "SRV", out)
	if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "hostmaster.example.test.") {
		t.Errorf("publish zone not answered by vlmcs:\n%s", out)
	}
	if out := front.Dig(t, "x._vlmcs._tcp.example.test", "SRV"); !strings.Contains(out, "status: NXDOMAIN") || strings.Contains(out, "rogue") {
		t.Errorf("wildcard below the publish name reached the client:\n%s", out)
	}
	out = front.Dig(t, "x._tcp.example.test", "A")
	if strings.Contains(out, "\tDNAME\t") || !strings.Contains(out, "\tCNAME\t") {
		t.Errorf("DNAME over _vlmcs._tcp.example.test handed out (or its CNAME lost):\n%s", out)
	}

	// A name bound by approve NAME=ADDRESS resolves to its bound address, not the upstream's.
	if out := front.Dig(t, "kms9.esc.test", "A", "+short"); strings.TrimSpace(out) != "127.0.0.9" {
		t.Errorf("bound kms9.esc.test resolves to %q, want 127.0.0.9 only", out)
	}

	// DNAME questions at the DNAMEs themselves: not handed out either, in both kinds of zone.
	for _, q := range []string{"_tcp.example.test", "_tcp.dname.test"} {
		if out := front.Dig(t, q, "DNAME"); strings.Contains(out, "\tDNAME\t") {
			t.Errorf("%s DNAME handed out:\n%s", q, out)
		}
	}

	m := scrape(t, front)
	for _, want := range []string{`reason="unapproved"`, `reason="alias"`, `reason="alias-loop"`, `reason="dname"`, `reason="glue"`} {
		if !strings.Contains(m, "coredns_vlmcs_scrubbed_records_total{") || !strings.Contains(m, want) {
			t.Errorf("scrubbed_records_total lacks %s", want)
		}
	}
	for _, want := range []string{"scrubbed rogue KMS host rogue.cname.test.", "scrubbed rogue KMS host rogue.dname.test.", `scrubbed rogue KMS host evil\.kms.esc.test.`, "alias loop at _vlmcs._tcp.loop.test.", "answering NODATA for _vlmcs._tcp.out.test.: its alias chain ends at _vlmcs._tcp.elsewhere.invalid.", "removed DNAME _tcp.example.test."} {
		if !strings.Contains(front.Output(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestUpdateNamesStaticAndBindings: updates with names a host cannot have are refused and
// counted; static members and approve NAME=ADDRESS bindings belong to the configuration, and
// probes and glue use the bound addresses.
func TestUpdateNamesStaticAndBindings(t *testing.T) {
	// A real KMS host at the bound address only: the static member without addresses is probed
	// there, so it is served only if the probe used the binding.
	kmsPort := harness.FreePort(t)
	dir := t.TempDir()
	kms := harness.Start(t, dir, harness.Binary(t, "kms-responder"), "serve", "--listen", net.JoinHostPort("127.0.0.50", strconv.Itoa(kmsPort)),
		"--data", filepath.Join(dir, "data"), "--metrics", "", "--drain", "0s", "--log-format", "text", "--group", "office-ltsc-2024")
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve *.kms.example.test 127.0.0.0/8 bound.example.test=127.0.0.50 bound2.example.test=127.0.0.52
		static s1.kms.example.test 1688 0 0 127.0.0.10
		static bound.example.test `+strconv.Itoa(kmsPort)+`
		key kms1-key. `+secret1+`
		grant kms1-key. *.kms.example.test bound.example.test bound2.example.test
		any_address kms1-key.
		probe 100ms 300ms 2 1
		all_down none
		ttl 1
	}
}
`)
	harness.Eventually(t, 10*time.Second, "the bound static member probed up at its bound address", func() bool {
		if kms.Exited() {
			t.Fatalf("kms-responder exited:\n%s", kms.Output())
		}
		return srvSet(t, c, "_vlmcs._tcp.example.test")["bound.example.test.:"+strconv.Itoa(kmsPort)]
	})
	if out := c.Dig(t, "_vlmcs._tcp.example.test", "SRV"); !regexp.MustCompile(`(?m)^bound\.example\.test\.\s+1\s+IN\s+A\s+127\.0\.0\.50$`).MatchString(out) {
		t.Errorf("glue of the bound member is not its bound address:\n%s", out)
	}

	key := keyArg("kms1-key.", secret1)
	refused := []struct{ name, script string }{
		{"escaped dot under *.kms.example.test", "check-names no\n" + registerScript(`evil\.kms.example.test`, "127.0.0.7", 1688)},
		{"space in a label", "check-names no\n" + registerScript(`a\032b.kms.example.test`, "127.0.0.7", 1688)},
		{"static member's address", "zone example.test\nupdate add s1.kms.example.test 60 A 127.0.0.66"},
		{"static member's SRV", "zone example.test\nupdate add _vlmcs._tcp.example.test 60 SRV 0 0 1689 s1.kms.example.test"},
		{"bound name at another address", registerScript("bound2.example.test", "127.0.0.51", 1688)},
	}
	for _, tc := range refused {
		code, out := c.NSUpdate(t, tc.script, key...)
		if code == 0 || !strings.Contains(out, "REFUSED") {
			t.Errorf("%s: not refused (exit %d):\n%s", tc.name, code, out)
		}
	}
	if code, out := c.NSUpdate(t, registerScript("a.kms.example.test", "127.0.0.7", 1688), key...); code != 0 {
		t.Errorf("a plain name under the grant refused:\n%s", out)
	}
	if out := c.Dig(t, "s1.kms.example.test", "A", "+short"); strings.TrimSpace(out) != "127.0.0.10" {
		t.Errorf("static member's address is %q, want the configured 127.0.0.10", out)
	}
	if out := c.Dig(t, "_vlmcs._tcp.example.test", "SRV"); strings.Contains(out, "evil") || strings.Contains(out, "127.0.0.51") || strings.Contains(out, "127.0.0.66") {
		t.Errorf("a refused registration reached the answer:\n%s", out)
	}
	m := scrape(t, c)
	for _, want := range []string{`reason="bad-name"`, `reason="static"`, `reason="unapproved-address"`} {
		if !strings.Contains(m, want) {
			t.Errorf("updates_total lacks %s", want)
		}
	}
	for _, want := range []string{`REFUSED bad-name: owner: "evil\.kms.example.test." is not a host name: label "evil.kms"`, "REFUSED static:", "is not bound to bound2.example.test."} {
		if !strings.Contains(c.Output(), want) {
			t.Errorf("log lacks %q:\n%s", want, c.Output())
		}
	}
}

// TestQueryClassLikeFile: queries of another class than IN at publish names get what CoreDNS's
// file plugin gives for its names: harness.CoreDNS refuses them before any plugin
// unless a plugin such as forward is loaded on the server; then file answers its IN data
// (authoritative, class IN records, the question's class echoed), and so does vlmcs.
func TestQueryClassLikeFile(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs {
		approve kms1.example.test
		static kms1.example.test 1688 0 0 127.0.0.1
		probe off
	}
}
ref.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.ref ref.test
}
other.test:{{PORT}} {
	bind 127.0.0.1
	forward . 127.0.0.1:9
}
`, harness.File{Name: "db.ref", Content: `$ORIGIN ref.test.
@	2 IN SOA ns1 hostmaster 1 3600 600 86400 2
@	2 IN NS ns1
ns1	2 IN A 127.0.0.1
_vlmcs._tcp	2 IN SRV 0 0 1688 kms1
kms1	2 IN A 127.0.0.1
`})
	shape := func(qname string, qtype, qclass uint16) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(qname, qtype)
		m.Question[0].Qclass = qclass
		cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		r, _, err := cl.Exchange(m, c.Addr())
		if err != nil {
			t.Fatalf("%s class %d: %v", qname, qclass, err)
		}
		s := dns.RcodeToString[r.Rcode] + " aa=" + strconv.FormatBool(r.Authoritative) + " q=" + dns.ClassToString[r.Question[0].Qclass]
		for _, rr := range r.Answer {
			s += " " + dns.TypeToString[rr.Header().Rrtype] + "/" + dns.ClassToString[rr.Header().Class]
		}
		return s + " ns=" + strconv.Itoa(len(r.Ns))
	}
	for _, class := range []uint16{dns.ClassCHAOS, dns.ClassANY, dns.ClassHESIOD, dns.ClassNONE, 99} {
		for _, qt := range []uint16{dns.TypeSRV, dns.TypeA, dns.TypeTXT} {
			name := map[uint16]string{dns.TypeSRV: "_vlmcs._tcp.", dns.TypeA: "kms1.", dns.TypeTXT: "_vlmcs._tcp."}[qt]
			want := shape(name+"ref.test.", qt, class)
			got := shape(name+"example.test.", qt, class)
			// The NS record file adds to positive answers is file's own; compare the rest.
			want = strings.Replace(want, " ns=1", " ns=?", 1)
			got = strings.Replace(strings.Replace(got, " ns=0", " ns=?", 1), " ns=1", " ns=?", 1)
			if got != want {
				t.Errorf("class %s %s: vlmcs %q, file %q", dns.ClassToString[class], dns.TypeToString[qt], got, want)
			}
		}
	}
}
