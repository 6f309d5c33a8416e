package test

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// Every answer that passes a scrub zone is judged, whatever the question.
// The real attackers' tools are the caches in front of CoreDNS: BIND 9.18 as a forward-only
// resolver and dnsmasq with --cache-rr=SRV (Debian bind9 and dnsmasq-base; build/tools.sh
// installs both). An upstream CoreDNS with file zones stands in for Active Directory.

// passZones is the upstream: ad.test (the scrub zone, with a lure, a DNAME over a search
// domain's _tcp, and targets that are aliases or live in other zones), attacker.test (where
// the DNAME and the aliases lead) and other.test (an approved target outside the zone).
var passZones = []harness.File{
	{Name: "db.ad", Content: `$ORIGIN ad.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN SRV 0 0 1688 kms1
_vlmcs._tcp	600 IN SRV 0 0 1688 rogue
lure	600 IN CNAME _vlmcs._tcp
_tcp.sub	600 IN DNAME attacker.test.
_vlmcs._tcp.gl	600 IN SRV 0 0 1688 kms2
_vlmcs._tcp.gl	600 IN SRV 0 0 1688 kms3.other.test.
kms1	600 IN A 127.0.0.1
kms2	600 IN CNAME evil.attacker.test.
rogue	600 IN A 127.0.0.66
`},
	{Name: "db.attacker", Content: `$ORIGIN attacker.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
x	600 IN A 127.0.0.66
evil	600 IN A 6.6.6.6
_vlmcs	600 IN SRV 0 0 1688 rogue.attacker.test.
rogue	600 IN A 127.0.0.66
`},
	{Name: "db.other", Content: `$ORIGIN other.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
kms3	600 IN A 127.0.0.3
`},
}

const passUpstream = `ad.test:{{PORT}} attacker.test:{{PORT}} other.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.ad ad.test
	file {{DIR}}/db.attacker attacker.test
	file {{DIR}}/db.other other.test
	transfer {
		to *
	}
}
`

// startPassFront starts the upstream and, in front of it, bin/coredns with vlmcs scrubbing
// ad.test (approved: names in ad.test and kms3.other.test, at 127.0.0.1 or 127.0.0.3 only).
func startPassFront(t *testing.T) (up, front *harness.CoreDNS) {
	t.Helper()
	up = harness.StartCoreDNS(t, passUpstream, passZones...)
	front = harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs ad.test {
		approve *.ad.test kms3.other.test 127.0.0.1 127.0.0.3
		scrub ad.test
		probe off
	}
	forward . `+up.Addr()+`
}
`)
	return up, front
}

// startNamedResolver runs BIND's named as a caching, forward-only resolver in front of
// forwardTo ("127.0.0.1:port"). Without options it does not validate (the test zones are
// unsigned); options go into named.conf's options block, conf after it.
func startNamedResolver(t *testing.T, forwardTo, options, conf string) string {
	t.Helper()
	named := namedBinary(t)
	host, fport, _ := strings.Cut(forwardTo, ":")
	dir := t.TempDir()
	port := harness.FreePort(t)
	harness.WriteFile(t, dir, "named.conf", fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.1; };
	allow-recursion { 127.0.0.1; };
	forward only;
	forwarders { %[3]s port %[4]s; };
	notify no;
	%[5]s
};
controls { };
%[6]s
`, dir, port, host, fport, cmp.Or(options, "dnssec-validation no;"), conf))
	p := harness.Start(t, dir, named, "-g", "-n", "1", "-c", filepath.Join(dir, "named.conf"))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	harness.Eventually(t, 20*time.Second, "named answering", func() bool {
		if p.Exited() {
			t.Fatalf("named exited:\n%s", p.Output())
		}
		m := new(dns.Msg)
		m.SetQuestion("ns1.other.test.", dns.TypeA)
		m.RecursionDesired = true
		_, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		return err == nil // any reply: named serves
	})
	return addr
}

// startDnsmasq runs dnsmasq as a forwarding cache in front of forwardTo that also caches SRV
// records (--cache-rr=SRV, dnsmasq 2.90).
func startDnsmasq(t *testing.T, forwardTo string) string {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin = "/usr/sbin/dnsmasq"
		if _, e := os.Stat(bin); e != nil {
			t.Fatal("dnsmasq not found: install dnsmasq-base (apt-get install dnsmasq-base); build/tools.sh does")
		}
	}
	host, fport, _ := strings.Cut(forwardTo, ":")
	dir := t.TempDir()
	port := harness.FreePort(t)
	p := harness.Start(t, dir, bin, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port="+strconv.Itoa(port),
		"--server="+host+"#"+fport, "--cache-rr=SRV", "--cache-size=1000", "--pid-file="+filepath.Join(dir, "pid"),
		"--log-queries=extra", "--log-facility=-")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	harness.Eventually(t, 10*time.Second, "dnsmasq answering", func() bool {
		if p.Exited() {
			t.Fatalf("dnsmasq exited:\n%s", p.Output())
		}
		m := new(dns.Msg)
		m.SetQuestion("ns1.other.test.", dns.TypeA)
		m.RecursionDesired = true
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		return err == nil && r.Rcode == dns.RcodeSuccess
	})
	return addr
}

// ask sends one recursive question to addr over UDP and returns the reply.
func ask(t *testing.T, addr, name string, qt uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	m.RecursionDesired = true
	m.AuthenticatedData = true // a validating resolver says whether it validated (RFC 6840 §5.7)
	m.SetEdns0(4096, false)
	r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qt], addr, err)
	}
	return r
}

// holds reports whether any section of m holds a record whose text contains s.
func holds(m *dns.Msg, s string) bool {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if strings.Contains(strings.ToLower(rr.String()), s) {
				return true
			}
		}
	}
	return false
}

// TestDNAMEBelowZoneThroughBIND: BIND, forward-only to CoreDNS, asks x._tcp.sub.ad.test A,
// whose upstream answer holds `_tcp.sub.ad.test DNAME attacker.test.`; had BIND cached it, it
// would answer _vlmcs._tcp.sub.ad.test (a client's search domain) itself from attacker.test's
// SRV. The DNAME never reaches BIND.
func TestDNAMEBelowZoneThroughBIND(t *testing.T) {
	up, front := startPassFront(t)
	// The upstream really hands out the DNAME and the rogue SRV behind it.
	if r := ask(t, up.Addr(), "x._tcp.sub.ad.test.", dns.TypeA); !hasRRType(r.Answer, dns.TypeDNAME) {
		t.Fatalf("upstream answer holds no DNAME: %v", r)
	}
	bind := startNamedResolver(t, front.Addr(), "", "")
	r := ask(t, bind, "x._tcp.sub.ad.test.", dns.TypeA)
	// approve *.ad.test admits x._tcp.sub.ad.test as a KMS target name, so its alias chain to
	// an address approve does not admit goes as well (addrguard.go).
	if hasRRType(r.Answer, dns.TypeDNAME) || holds(r, "127.0.0.66") {
		t.Errorf("x._tcp.sub.ad.test A through BIND: want no DNAME and no unapproved address:\n%v", r)
	}
	r = ask(t, bind, "_vlmcs._tcp.sub.ad.test.", dns.TypeSRV)
	if holds(r, "rogue") || hasRRType(r.Answer, dns.TypeSRV) {
		t.Errorf("_vlmcs._tcp.sub.ad.test SRV through BIND after the DNAME question: rogue target served:\n%v", r)
	}
	if m := scrape(t, front); !strings.Contains(m, `reason="dname"`) {
		t.Error("scrubbed_records_total lacks reason=\"dname\"")
	}
}

// TestLureThroughDnsmasq: `lure.ad.test CNAME _vlmcs._tcp.ad.test` asked as SRV through
// dnsmasq --cache-rr=SRV; had the answer carried the upstream's _vlmcs._tcp.ad.test SRV set,
// dnsmasq would serve it from its cache to the next _vlmcs._tcp.ad.test question. The part of
// the answer from the _vlmcs._tcp name on is judged as the answer to that name would be.
func TestLureThroughDnsmasq(t *testing.T) {
	up, front := startPassFront(t)
	if r := ask(t, up.Addr(), "lure.ad.test.", dns.TypeSRV); !holds(r, "rogue") {
		t.Fatalf("upstream lure answer holds no rogue target: %v", r)
	}
	dm := startDnsmasq(t, front.Addr())
	r := ask(t, dm, "lure.ad.test.", dns.TypeSRV)
	if holds(r, "rogue") || !holds(r, "kms1.ad.test.") {
		t.Errorf("lure.ad.test SRV through dnsmasq: want the approved target only:\n%v", r)
	}
	for i := range 2 { // the second comes out of dnsmasq's cache
		r = ask(t, dm, "_vlmcs._tcp.ad.test.", dns.TypeSRV)
		if holds(r, "rogue") || !holds(r, "kms1.ad.test.") {
			t.Errorf("round %d: _vlmcs._tcp.ad.test SRV through dnsmasq after the lure: want kms1 only:\n%v", i, r)
		}
	}
}

// TestGluelessTargetsJudged: with network rules in approve, a kept target's addresses are
// looked up and judged. kms2.ad.test (a name approve allows) is a CNAME to 6.6.6.6 and is
// removed; kms3.other.test has no glue in the answer and is kept with its looked-up address.
func TestGluelessTargetsJudged(t *testing.T) {
	up, front := startPassFront(t)
	if r := ask(t, up.Addr(), "_vlmcs._tcp.gl.ad.test.", dns.TypeSRV); !holds(r, "kms2.ad.test.") || holds(r, "127.0.0.3") {
		t.Fatalf("upstream answer: want kms2 and no glue for kms3: %v", r)
	}
	for _, network := range []string{"udp", "tcp"} {
		out := front.Dig(t, "+"+map[string]string{"udp": "notcp", "tcp": "tcp"}[network], "_vlmcs._tcp.gl.ad.test", "SRV")
		if strings.Contains(out, "kms2.ad.test.") || strings.Contains(out, "6.6.6.6") {
			t.Errorf("%s: target aliased to 6.6.6.6 passed:\n%s", network, out)
		}
		if !strings.Contains(out, "1688 kms3.other.test.") || !strings.Contains(out, "127.0.0.3") {
			t.Errorf("%s: approved glue-less target or its looked-up address lost:\n%s", network, out)
		}
	}
	if m := scrape(t, front); !strings.Contains(m, `reason="unapproved"`) {
		t.Error("scrubbed_records_total lacks reason=\"unapproved\"")
	}
}

// TestZoneTransferRefused: AXFR and IXFR of the scrub zone (or of the root, which holds it)
// through vlmcs are REFUSED; the upstream itself transfers the rogue records.
func TestZoneTransferRefused(t *testing.T) {
	up, front := startPassFront(t)
	transfer := func(addr, zone string, qt uint16) (n int, rogue bool, err error) {
		m := new(dns.Msg)
		if qt == dns.TypeAXFR {
			m.SetAxfr(zone)
		} else {
			m.SetIxfr(zone, 0, "ns1."+zone, "hostmaster."+zone)
		}
		ch, err := (&dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}).In(m, addr)
		if err != nil {
			return 0, false, err
		}
		for env := range ch {
			if env.Error != nil {
				err = env.Error
				continue
			}
			for _, rr := range env.RR {
				n++
				rogue = rogue || strings.Contains(rr.String(), "rogue")
			}
		}
		return n, rogue, err
	}
	if n, rogue, err := transfer(up.Addr(), "ad.test.", dns.TypeAXFR); err != nil || !rogue {
		t.Fatalf("upstream AXFR: %d records, rogue %v, %v", n, rogue, err)
	}
	for _, tc := range []struct {
		zone string
		qt   uint16
	}{{"ad.test.", dns.TypeAXFR}, {"ad.test.", dns.TypeIXFR}, {"AD.test.", dns.TypeAXFR}, {"sub.ad.test.", dns.TypeAXFR}, {".", dns.TypeAXFR}} {
		n, rogue, err := transfer(front.Addr(), tc.zone, tc.qt)
		if err == nil || n != 0 || rogue {
			t.Errorf("%s %s through vlmcs: %d records (rogue %v), error %v; want refused", dns.TypeToString[tc.qt], tc.zone, n, rogue, err)
		} else if !strings.Contains(err.Error(), "rcode: "+strconv.Itoa(dns.RcodeRefused)) { // miekg/dns: "bad xfr rcode: 5"
			t.Errorf("%s %s: error %v, want REFUSED", dns.TypeToString[tc.qt], tc.zone, err)
		}
	}
	if m := scrape(t, front); !strings.Contains(m, `coredns_vlmcs_refused_queries_total{reason="transfer"`) {
		t.Error("refused_queries_total lacks reason=\"transfer\"")
	}
}

// TestScrubUnhealthyFullTable: scrub_unhealthy tracks at most 4096 targets. Five answers of
// 1000 glue-less approved targets fill the table; a target it cannot track (here one with no
// KMS host behind it) is not kept: no probe could judge it.
func TestScrubUnhealthyFullTable(t *testing.T) {
	var zone strings.Builder
	zone.WriteString(`$ORIGIN big.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN SRV 0 0 1688 dead
dead	600 IN A 127.0.0.1
`)
	for s := range 5 {
		for i := range 1000 {
			fmt.Fprintf(&zone, "_vlmcs._tcp.s%d\t600 IN SRV 0 0 1688 h%d-%d\n", s, s, i)
		}
	}
	up := harness.StartCoreDNS(t, `big.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.big big.test
}
`, harness.File{Name: "db.big", Content: zone.String()})
	front := harness.StartCoreDNS(t, `big.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs {
		approve *.big.test
		scrub big.test
		scrub_unhealthy
		probe 1s 200ms
	}
	forward . `+up.Addr()+`
}
`)
	for s := range 5 {
		out := front.Dig(t, "+tcp", fmt.Sprintf("_vlmcs._tcp.s%d.big.test", s), "SRV")
		if !strings.Contains(out, "status: NOERROR") {
			t.Fatalf("answer %d: %s", s, out[:min(len(out), 2000)])
		}
	}
	out := front.Dig(t, "_vlmcs._tcp.big.test", "SRV")
	if strings.Contains(out, "dead.big.test.") {
		t.Errorf("target untracked by a full scrub_unhealthy table was kept:\n%s", out)
	}
	if !strings.Contains(front.Output(), "an untracked one is not kept") {
		t.Error("log does not say why the untracked target was removed")
	}
}

// hasRRType reports whether rrs hold a record of type t.
func hasRRType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// TestDNSSECValidatingResolver: what plugin/DESIGN.md's "DNSSEC" says a validating resolver in
// front sees for a signed scrub zone. BIND validates sig.test (a trust anchor for its key):
// an answer vlmcs did not change validates (AD set); one it changed (a rogue target removed,
// with the SRV RRSIGs) is bogus, so SERVFAIL, never the rogue target. A negative trust anchor
// for the zone (validate-except) gives the scrubbed answer.
func TestDNSSECValidatingResolver(t *testing.T) {
	dir := t.TempDir()
	zone := `$ORIGIN sig.test.
$TTL 600
@	IN SOA ns1 hostmaster 1 3600 600 86400 60
@	IN NS ns1
ns1	IN A 127.0.0.1
_vlmcs._tcp	IN SRV 0 0 1688 kms1
_vlmcs._tcp	IN SRV 0 0 1688 rogue
_vlmcs._tcp.clean	IN SRV 0 0 1688 kms1
kms1	IN A 127.0.0.1
rogue	IN A 127.0.0.66
`
	harness.WriteFile(t, dir, "db.sig", zone)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s (install bind9-utils; build/tools.sh does)", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	ksk := run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "sig.test")
	run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "sig.test")
	run("dnssec-signzone", "-q", "-S", "-K", ".", "-o", "sig.test", "-f", "db.sig.signed", "db.sig")
	signed, err := os.ReadFile(filepath.Join(dir, "db.sig.signed"))
	if err != nil {
		t.Fatal(err)
	}
	keyText, err := os.ReadFile(filepath.Join(dir, ksk+".key"))
	if err != nil {
		t.Fatal(err)
	}
	var anchor string
	for _, l := range strings.Split(string(keyText), "\n") {
		if rr, err := dns.NewRR(l); err == nil && rr != nil {
			if k, ok := rr.(*dns.DNSKEY); ok {
				anchor = fmt.Sprintf(`trust-anchors { sig.test. static-key %d %d %d "%s"; };`, k.Flags, k.Protocol, k.Algorithm, k.PublicKey)
			}
		}
	}
	if anchor == "" {
		t.Fatalf("no DNSKEY in %s.key:\n%s", ksk, keyText)
	}
	up := harness.StartCoreDNS(t, `sig.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.sig.signed sig.test
}
`, harness.File{Name: "db.sig.signed", Content: string(signed)})
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs sig.test {
		approve *.sig.test 127.0.0.1
		scrub sig.test
		probe off
	}
	forward . `+up.Addr()+`
}
`)
	validating := startNamedResolver(t, front.Addr(), "dnssec-validation yes;", anchor)
	if r := ask(t, validating, "kms1.sig.test.", dns.TypeA); r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData {
		t.Fatalf("the signed zone does not validate through vlmcs (want AD set): %v", r)
	}
	if r := ask(t, validating, "_vlmcs._tcp.clean.sig.test.", dns.TypeSRV); r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData || !holds(r, "kms1.sig.test.") {
		t.Errorf("an answer vlmcs left alone: want it validated (AD set): %v", r)
	}
	if r := ask(t, validating, "_vlmcs._tcp.sig.test.", dns.TypeSRV); r.Rcode != dns.RcodeServerFailure || holds(r, "rogue") {
		t.Errorf("a changed answer through a validating resolver: want SERVFAIL (bogus): %v", r)
	}
	nta := startNamedResolver(t, front.Addr(), `dnssec-validation yes;
	validate-except { "sig.test"; };`, anchor)
	if r := ask(t, nta, "_vlmcs._tcp.sig.test.", dns.TypeSRV); r.Rcode != dns.RcodeSuccess || holds(r, "rogue") || !holds(r, "kms1.sig.test.") {
		t.Errorf("with a negative trust anchor: want the scrubbed answer: %v", r)
	}
}

// TestOddSectionsJudged: an upstream that puts SRV records in the authority section and
// address records of the targets in the answer section (no DNS server behind CoreDNS in these
// tests does, so a miekg/dns server on loopback stands in for one that would). The authority
// section's rogue SRV (and the apex NS) is removed; a target with an unapproved address in the
// answer section is removed with all its addresses; one whose answer-section address is
// approved is kept.
func TestOddSectionsJudged(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	answers := map[string]*dns.Msg{
		"_vlmcs._tcp.odd.test.": {
			Answer: []dns.RR{rr("_vlmcs._tcp.odd.test. 60 IN SRV 0 0 1688 kms1.odd.test."), rr("kms1.odd.test. 60 IN A 6.6.6.6")},
			Ns:     []dns.RR{rr("_vlmcs._tcp.odd.test. 60 IN SRV 0 0 1688 rogue.odd.test."), rr("odd.test. 60 IN NS ns1.odd.test.")},
			Extra:  []dns.RR{rr("kms1.odd.test. 60 IN A 127.0.0.1"), rr("rogue.odd.test. 60 IN A 127.0.0.66")},
		},
		"_vlmcs._tcp.ok.odd.test.": {
			Answer: []dns.RR{rr("_vlmcs._tcp.ok.odd.test. 60 IN SRV 0 0 1688 kms2.odd.test."), rr("kms2.odd.test. 60 IN A 127.0.0.1")},
		},
	}
	ln, pc := testkit.ListenUDPTCP(t, "127.0.0.1:0")
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if a, ok := answers[strings.ToLower(r.Question[0].Name)]; ok && r.Question[0].Qtype == dns.TypeSRV {
			m.Answer, m.Ns, m.Extra = a.Answer, a.Ns, a.Extra
		}
		w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{Listener: ln, Handler: handler}, {PacketConn: pc, Handler: handler}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
	front := harness.StartCoreDNS(t, `odd.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs {
		approve *.odd.test 127.0.0.1
		scrub odd.test
		probe off
	}
	forward . `+ln.Addr().String()+`
}
`)
	out := front.Dig(t, "_vlmcs._tcp.odd.test", "SRV")
	if strings.Contains(out, "rogue") || strings.Contains(out, "kms1.odd.test") || strings.Contains(out, "6.6.6.6") || !strings.Contains(out, "status: NOERROR") {
		t.Errorf("odd sections: rogue SRV in the authority section or a target with an unapproved address passed:\n%s", out)
	}
	// The zone's own apex NS set from the DNS behind is not passed on either (it would lead an
	// iterating resolver past vlmcs: TestReview2ApexNSLeadsPastVlmcs).
	if strings.Contains(out, "IN\tNS\tns1.odd.test.") {
		t.Errorf("the DNS behind's apex NS passed in the authority section:\n%s", out)
	}
	out = front.Dig(t, "_vlmcs._tcp.ok.odd.test", "SRV")
	if !strings.Contains(out, "1688 kms2.odd.test.") || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("approved target with its address in the answer section lost:\n%s", out)
	}
}
