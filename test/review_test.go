package test

import (
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
	"github.com/kmsdns/kmsdns/test/testkit"
)

// Findings of an outside review of the vlmcs plugin. Each test states the safe behaviour a
// network team relies on (clients asking `_vlmcs._tcp` through CoreDNS, or through a cache or
// resolver in front of it, reach only approved hosts; a captured signed update acts once).

// reviewDelegZone is the DNS behind (standing in for Active Directory): ad.test holds a
// delegation of a client's search domain, sub.ad.test, to a server the attacker runs
// (127.0.0.66), and an approved KMS host kms1 at an approved address.
const reviewDelegZone = `$ORIGIN ad.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN SRV 0 0 1688 kms1
kms1	600 IN A 127.0.0.1
sub	600 IN NS ns.sub
ns.sub	600 IN A 127.0.0.66
`

// reviewEvilZone is what the attacker's server at 127.0.0.66 answers for sub.ad.test.
const reviewEvilZone = `$ORIGIN sub.ad.test.
@	3600 IN SOA ns hostmaster 1 3600 600 86400 60
@	3600 IN NS ns
ns	600 IN A 127.0.0.66
_vlmcs._tcp	600 IN SRV 0 0 1688 rogue
rogue	600 IN A 127.0.0.66
`

// TestReviewReferralPastScrub: a question for `_vlmcs._tcp.<search domain>` below a scrub zone
// whose upstream answer is a referral (the search domain delegated, NS in the authority
// section, glue in the additional section) is passed on as it is. CoreDNS's reply to a
// `_vlmcs._tcp` question then names an unapproved host and address, and a resolver that
// iterates towards CoreDNS (BIND with a static-stub or a delegation for the zone, as a publish
// zone "delegated to CoreDNS as an unsigned child" is) follows the referral and serves the
// attacker's SRV record to the client; vlmcs never sees that answer.
//
// Safe behaviour: a reply to a `_vlmcs._tcp` question holds no delegation (NS) at or above
// the asked name below the zone, and no address of a host approve does not admit; BIND in
// front gets no rogue target.
func TestReviewReferralPastScrub(t *testing.T) {
	// Every server listens on one port (BIND queries servers at its own `port`), each on its
	// own loopback address: named 127.0.0.1, vlmcs 127.0.0.54, the attacker's server
	// 127.0.0.66.
	up := harness.StartCoreDNS(t, `ad.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.ad ad.test
}
`, harness.File{Name: "db.ad", Content: reviewDelegZone})
	port := strconv.Itoa(harness.FreePort(t))
	dir := t.TempDir()
	harness.WriteFile(t, dir, "db.sub", reviewEvilZone)
	harness.WriteFile(t, dir, "Corefile", `.:`+port+` {
	bind 127.0.0.54
	vlmcs ad.test {
		approve *.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up.Addr()+`
}
sub.ad.test:`+port+` {
	bind 127.0.0.66
	file `+dir+`/db.sub sub.ad.test
}
`)
	servers := harness.Start(t, dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	front := "127.0.0.54:" + port
	harness.Eventually(t, 10*time.Second, "vlmcs and the attacker's server answering", func() bool {
		if servers.Exited() {
			t.Fatalf("coredns exited: %s", servers.Output())
		}
		return harness.Exchange(front, "udp", harness.ProbeQuery()) == nil && harness.Exchange("127.0.0.66:"+port, "udp", harness.ProbeQuery()) == nil
	})

	// CoreDNS itself: the reply to the `_vlmcs._tcp` question carries the delegation.
	direct := ask(t, front, "_vlmcs._tcp.sub.ad.test.", dns.TypeSRV)
	if holds(direct, "127.0.0.66") || hasRRType(direct.Ns, dns.TypeNS) {
		t.Errorf("_vlmcs._tcp.sub.ad.test SRV from vlmcs: want no delegation and no unapproved address:\n%v", direct)
	}

	// BIND iterating towards CoreDNS for ad.test follows it.
	bind := startIteratingNamed(t, port, "kms1.ad.test.", "", "ad.test")
	if r := ask(t, bind, "_vlmcs._tcp.ad.test.", dns.TypeSRV); !holds(r, "kms1.ad.test.") {
		t.Fatalf("BIND in front: _vlmcs._tcp.ad.test SRV lacks kms1 (the setup does not work):\n%v", r)
	}
	r := ask(t, bind, "_vlmcs._tcp.sub.ad.test.", dns.TypeSRV)
	if holds(r, "rogue") || holds(r, "127.0.0.66") {
		t.Errorf("_vlmcs._tcp.sub.ad.test SRV through BIND iterating towards vlmcs: rogue target served:\n%v", r)
	}
}

// startIteratingNamed runs BIND's named as a recursive resolver on 127.0.0.1:port that
// iterates towards vlmcs (127.0.0.54, same port: named queries servers at its own `port`)
// for each of zones (static-stub, as for a zone delegated to CoreDNS), and waits until it
// resolves ready (an A name in the first zone). options are more named options (e.g.
// "qname-minimization strict;").
func startIteratingNamed(t *testing.T, port, ready, options string, zones ...string) string {
	t.Helper()
	named := namedBinary(t)
	dir := t.TempDir()
	var stubs strings.Builder
	for _, z := range zones {
		fmt.Fprintf(&stubs, "zone %q { type static-stub; server-addresses { 127.0.0.54; }; };\n", z)
	}
	harness.WriteFile(t, dir, "named.conf", fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	port %[2]s;
	listen-on port %[2]s { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { any; };
	allow-recursion { any; };
	dnssec-validation no;
	notify no;
	%[4]s
};
controls { };
%[3]s`, dir, port, stubs.String(), options))
	p := harness.Start(t, dir, named, "-g", "-n", "1", "-c", filepath.Join(dir, "named.conf"))
	addr := "127.0.0.1:" + port
	harness.Eventually(t, 20*time.Second, "named answering", func() bool {
		if p.Exited() {
			t.Fatalf("named exited:\n%s", p.Output())
		}
		m := new(dns.Msg)
		m.SetQuestion(ready, dns.TypeA)
		m.RecursionDesired = true
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		return err == nil && r.Rcode == dns.RcodeSuccess
	})
	return addr
}

// TestReviewTargetAddressUnjudged: vlmcs judges a scrub-zone SRV target's addresses (with
// network rules in approve) only inside the SRV answer. The client then resolves the target
// itself (A/AAAA), and that answer passes unjudged: once the SRV answer is cached (600 s in
// Active Directory) whoever can change the target's A record in the DNS behind (the same
// unsigned dynamic update that registers rogue SRV records) sends clients to any address, or
// a target that shows an approved address in the SRV answer's glue shows another one when
// asked. dnsmasq --cache-rr=SRV in front keeps the judged SRV; its A question for the target
// gets the new, unapproved address.
//
// Safe behaviour: an address answer for a name approve admits as a KMS target holds only
// addresses the approved networks admit (as the SRV answer's glue does), in a scrub zone too.
func TestReviewTargetAddressUnjudged(t *testing.T) {
	zone := func(serial int, addr string) string {
		return fmt.Sprintf(`$ORIGIN ad.test.
@	3600 IN SOA ns1 hostmaster %d 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp	600 IN SRV 0 0 1688 kms1
kms1	1 IN A %s
`, serial, addr)
	}
	up := harness.StartCoreDNS(t, `ad.test:{{PORT}} other.test:{{PORT}} {
	bind 127.0.0.1
	file {{DIR}}/db.ad ad.test {
		reload 1s
	}
	file {{DIR}}/db.other other.test
}
`, harness.File{Name: "db.ad", Content: zone(1, "127.0.0.1")}, passZones[2]) // other.test: dnsmasq's readiness question
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs ad.test {
		approve *.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up.Addr()+`
}
`)
	dm := startDnsmasq(t, front.Addr())
	if r := ask(t, dm, "_vlmcs._tcp.ad.test.", dns.TypeSRV); !holds(r, "kms1.ad.test.") || holds(r, "127.0.0.66") {
		t.Fatalf("judged SRV answer: want kms1 at 127.0.0.1:\n%v", r)
	}
	// kms1's A record is changed in the DNS behind (an unsigned dynamic update).
	harness.WriteFile(t, up.Dir, "db.ad", zone(2, "127.0.0.66"))
	harness.Eventually(t, 10*time.Second, "upstream serving the new address", func() bool {
		return holds(ask(t, up.Addr(), "kms1.ad.test.", dns.TypeA), "127.0.0.66")
	})
	// vlmcs itself would now remove kms1 from a fresh SRV answer ...
	if r := ask(t, front.Addr(), "_vlmcs._tcp.ad.test.", dns.TypeSRV); holds(r, "127.0.0.66") || hasRRType(r.Answer, dns.TypeSRV) {
		t.Errorf("fresh SRV answer from vlmcs: want kms1 removed (address unapproved):\n%v", r)
	}
	// ... but the client, holding the cached SRV record, resolves the target.
	if r := ask(t, dm, "_vlmcs._tcp.ad.test.", dns.TypeSRV); !holds(r, "kms1.ad.test.") {
		t.Logf("dnsmasq no longer holds the SRV record: %v", r)
	}
	for _, addr := range []string{dm, front.Addr()} {
		if r := ask(t, addr, "kms1.ad.test.", dns.TypeA); holds(r, "127.0.0.66") {
			t.Errorf("kms1.ad.test A at %s: the approved KMS target resolves to an unapproved address:\n%v", addr, r)
		}
	}
}

// TestReviewClockAheadReplayAfterRestart: the restart rule refuses signatures timed before the
// process started, and the replay memory starts empty. A signature timed after the start but
// made before it, by a sender whose clock runs ahead (accepted: within its fudge), passes both
// after a restart: a withdraw captured on the wire removes the host again once it has
// registered anew. kms1's clock runs 60 s ahead (fudge 300, as nsupdate and kms-responder use).
//
// Safe behaviour: a captured signed update is accepted once, across restarts too.
func TestReviewClockAheadReplayAfterRestart(t *testing.T) {
	c := harness.StartCoreDNS(t, reloadCorefile)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	qname := "_vlmcs._tcp.example.test"
	member := "kms1.example.test.:" + strconv.Itoa(kms.Port)
	register := func() {
		t.Helper()
		if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", kms.Port), keyArg("kms1-key.", secret1)...); code != 0 {
			t.Fatalf("registration: %s", out)
		}
		harness.Eventually(t, 5*time.Second, "kms1 served", func() bool { return srvSet(t, c, qname)[member] })
	}
	register()
	w := new(dns.Msg)
	w.SetUpdate("example.test.")
	w.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: qname + ".", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: uint16(kms.Port), Target: "kms1.example.test."}}
	captured := signWire(t, w, "kms1-key.", secret1, dns.HmacSHA256, time.Now().Unix()+60, 300)
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("withdraw from a clock 60 s ahead: %s (want accepted: within the fudge)", dns.RcodeToString[r.Rcode])
	}
	c.Stop()
	c.Process = harness.Start(t, c.Dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	c.WaitServing(t, 10*time.Second)
	register()
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeRefused {
		t.Errorf("captured withdraw replayed after a restart: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if s := srvSet(t, c, qname); !s[member] {
		t.Errorf("a replayed withdraw removed kms1 after the restart: %v", s)
	}
}

// TestReviewBlocksShareOnePolicy: two server blocks on one port that publish the same zone
// share its pool (the registry keys pools by transport, port and zone, not by bind address),
// and the pool is judged by the configuration of whichever block started last. A block
// serving one network (127.0.0.1: approve kms1 only, static kms1) then answers with the other
// block's host (127.0.0.2: a lab block approving lab.example.test) and loses its own static
// member: its clients get a host their block never approved.
//
// Safe behaviour: each block answers only with what its own vlmcs configuration approves and
// configures (or CoreDNS refuses to start when blocks that would share a pool disagree).
func TestReviewBlocksShareOnePolicy(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs example.test {
		approve kms1.example.test 127.0.0.1
		static kms1.example.test 1688 0 0 127.0.0.1
		probe off
	}
}
example.test:{{PORT}} {
	bind 127.0.0.2
	vlmcs example.test {
		approve lab.example.test 127.0.0.2
		static lab.example.test 1688 0 0 127.0.0.2
		probe off
	}
}
`)
	s := srvSet(t, c, "_vlmcs._tcp.example.test")
	if !s["kms1.example.test.:1688"] || len(s) != 1 {
		t.Errorf("block on 127.0.0.1 answers %v; want its own static kms1.example.test alone", s)
	}
	out, err := exec.Command(harness.Tool(t, "dig"), "@127.0.0.2", "-p", strconv.Itoa(c.Port), "+time=2", "+tries=1", "+short",
		"_vlmcs._tcp.example.test", "SRV").CombinedOutput()
	if err != nil {
		t.Fatalf("dig at 127.0.0.2: %v %s", err, out)
	}
	if strings.Contains(string(out), "kms1.example.test") || !strings.Contains(string(out), "lab.example.test") {
		t.Errorf("block on 127.0.0.2 answers %q; want its own static lab.example.test alone", out)
	}
}

// TestReviewNotifyNotRelayed: vlmcs keeps UPDATE from reaching forward (a relayed update
// reaches the DNS behind unauthenticated, from CoreDNS's own address), but passes every other
// opcode on: a NOTIFY for the scrub zone from any client reaches the DNS behind (Active
// Directory) from CoreDNS's address, one forward exchange (and upstream timeout) each, the
// same relay the UPDATE rule closes.
//
// Safe behaviour: only QUERY (and UPDATE, handled by vlmcs) reaches the plugins behind vlmcs for
// its zones; a NOTIFY gets a local answer (REFUSED or NOTIMP) and never reaches the upstream.
func TestReviewNotifyNotRelayed(t *testing.T) {
	up := harness.StartCoreDNS(t, `ad.test:{{PORT}} {
	bind 127.0.0.1
	log
	file {{DIR}}/db.ad ad.test
}
`, harness.File{Name: "db.ad", Content: reviewDelegZone})
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs ad.test {
		approve *.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up.Addr()+`
}
`)
	for _, name := range []string{"ad.test.", "_vlmcs._tcp.ad.test."} {
		m := new(dns.Msg)
		m.SetNotify(name)
		r, _, err := (&dns.Client{Timeout: 6 * time.Second}).Exchange(m, front.Addr())
		if err == nil && r.Rcode != dns.RcodeRefused && r.Rcode != dns.RcodeNotImplemented {
			t.Errorf("NOTIFY %s: %s, want REFUSED or NOTIMP from vlmcs", name, dns.RcodeToString[r.Rcode])
		}
	}
	time.Sleep(200 * time.Millisecond) // the upstream's log line
	if strings.Contains(up.Output(), "notify from 127.0.0.1") {
		t.Errorf("NOTIFY relayed to the DNS behind:\n%s", up.Output())
	}
}

// TestReviewPublishTargetAddressFromDirectory: in a publish zone, an A question for a member's
// target that a key registered is answered by the next plugin whenever the next plugin has the
// name. The SRV answer's glue is the registered, approved, probed address; whoever can add the
// name to the directory behind (an unsigned dynamic update in Active Directory) makes the A
// answer, which clients that resolve the target themselves use, an unapproved address.
//
// Safe behaviour: an address answer for a registered member's target holds only addresses
// approve admits (the pool's, or none).
func TestReviewPublishTargetAddressFromDirectory(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs example.test {
		approve kms1.example.test 127.0.0.1
		ports 1024-65535
		key kms1-key. `+secret1+`
		grant kms1-key. kms1.example.test
		probe 100ms 200ms 2 1
	}
	file {{DIR}}/db.ex example.test
}
`, harness.File{Name: "db.ex", Content: `$ORIGIN example.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
kms1	600 IN A 127.0.0.66
`})
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", kms.Port), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("registration: %s", out)
	}
	member := "kms1.example.test.:" + strconv.Itoa(kms.Port)
	harness.Eventually(t, 5*time.Second, "kms1 served", func() bool { return srvSet(t, c, "_vlmcs._tcp.example.test")[member] })
	if r := ask(t, c.Addr(), "_vlmcs._tcp.example.test.", dns.TypeSRV); holds(r, "127.0.0.66") || !holds(r, "127.0.0.1") {
		t.Errorf("SRV answer: want glue 127.0.0.1 only:\n%v", r)
	}
	if r := ask(t, c.Addr(), "kms1.example.test.", dns.TypeA); holds(r, "127.0.0.66") {
		t.Errorf("kms1.example.test A: the registered KMS host resolves to an unapproved address:\n%v", r)
	}
}

// TestReviewLogCrowdedOut: refusals and scrub findings share one log budget per server block
// (10 lines a second). Unsigned updates from any address, which cost an attacker nothing and
// need no key, use it up, so a TSIG attack on a real key (a bad signature) and a rogue KMS
// host scrubbed from the directory's answer during the flood never reach the log, only as
// part of "N similar messages suppressed".
//
// Safe behaviour: the log names every attack on a key and every rogue target at least once
// while unauthenticated noise floods it (separate budgets, or one line per distinct reason).
func TestReviewLogCrowdedOut(t *testing.T) {
	up := harness.StartCoreDNS(t, passUpstream, passZones...)
	c := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs example.test ad.test {
		approve kms1.example.test *.ad.test 127.0.0.1
		key kms1-key. `+secret1+`
		grant kms1-key. kms1.example.test
		scrub ad.test
		probe off
	}
	forward . `+up.Addr()+`
}
`)
	noise := new(dns.Msg)
	noise.SetUpdate("example.test.")
	noise.Ns = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "kms1.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{127, 0, 0, 1}}}
	wire, err := noise.Pack()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			select {
			case <-stop:
				return
			default:
			}
			conn.Write(wire)
			conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			conn.Read(buf)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	// The attacks worth a log line, in the middle of the flood.
	forged := new(dns.Msg)
	forged.SetUpdate("example.test.")
	forged.Ns = noise.Ns
	b := signWire(t, forged, "kms1-key.", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==", dns.HmacSHA256, time.Now().Unix(), 300)
	if r := exchangeRaw(t, c.Addr(), "tcp", b); r.Rcode != dns.RcodeNotAuth {
		t.Errorf("forged signature: %s, want NOTAUTH", dns.RcodeToString[r.Rcode])
	}
	if r := ask(t, c.Addr(), "_vlmcs._tcp.ad.test.", dns.TypeSRV); holds(r, "rogue") {
		t.Errorf("rogue target served: %v", r)
	}
	time.Sleep(1200 * time.Millisecond)
	close(stop)
	<-done
	time.Sleep(200 * time.Millisecond)
	out := c.Output()
	if !strings.Contains(out, "scrubbed rogue KMS host rogue.ad.test.") {
		t.Error("the rogue target scrubbed during the flood is not in the log")
	}
	if !strings.Contains(out, "key kms1-key.") || !strings.Contains(out, "NOTAUTH") {
		t.Error("the forged signature on kms1-key. during the flood is not in the log")
	}
	if t.Failed() {
		lines := strings.Split(out, "\n")
		t.Logf("log (%d lines), suppressed summaries: %d", len(lines), strings.Count(out, "suppressed"))
	}
}

// TestReviewDelegationOverPublishZone: a publish zone "delegated to CoreDNS as an unsigned
// child" is answered to resolvers that iterate. An answer to another question
// (x._tcp.example.test A) that the next plugin gives as a referral (`_tcp.example.test NS`,
// with glue) passes vlmcs untouched; BIND caches the delegation and from then on asks the
// server it names, never CoreDNS, for _vlmcs._tcp.example.test: the pool is bypassed for the
// publish zone's own name once its 2 s answer has expired. BIND's default QNAME minimisation
// does not even need the other question: resolving _vlmcs._tcp.example.test, it asks CoreDNS
// about _tcp.example.test first and follows the referral.
//
// Safe behaviour: no answer vlmcs passes on holds a delegation (NS) of a name at or above a
// `_vlmcs._tcp` name of its zones, below the zone; BIND keeps getting the pool's answer.
func TestReviewDelegationOverPublishZone(t *testing.T) {
	port := strconv.Itoa(harness.FreePort(t))
	dir := t.TempDir()
	harness.WriteFile(t, dir, "db.ex", `$ORIGIN example.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.54
www	600 IN A 127.0.0.1
_tcp	600 IN NS ns._tcp
ns._tcp	600 IN A 127.0.0.66
`)
	harness.WriteFile(t, dir, "db.evil", `$ORIGIN _tcp.example.test.
@	3600 IN SOA ns hostmaster 1 3600 600 86400 60
@	3600 IN NS ns
ns	600 IN A 127.0.0.66
x	600 IN A 127.0.0.66
_vlmcs	600 IN SRV 0 0 1688 rogue.example.test.
`)
	harness.WriteFile(t, dir, "Corefile", `.:`+port+` {
	bind 127.0.0.54
	vlmcs example.test {
		approve kms1.example.test 127.0.0.1
		static kms1.example.test 1688 0 0 127.0.0.1
		probe off
	}
	file `+dir+`/db.ex example.test
}
_tcp.example.test:`+port+` {
	bind 127.0.0.66
	file `+dir+`/db.evil _tcp.example.test
}
`)
	servers := harness.Start(t, dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	front := "127.0.0.54:" + port
	harness.Eventually(t, 10*time.Second, "vlmcs and the attacker's server answering", func() bool {
		if servers.Exited() {
			t.Fatalf("coredns exited: %s", servers.Output())
		}
		return harness.Exchange(front, "udp", harness.ProbeQuery()) == nil && harness.Exchange("127.0.0.66:"+port, "udp", harness.ProbeQuery()) == nil
	})
	direct := ask(t, front, "x._tcp.example.test.", dns.TypeA)
	if hasRRType(direct.Ns, dns.TypeNS) || holds(direct, "127.0.0.66") {
		t.Errorf("x._tcp.example.test A from vlmcs: a delegation over _vlmcs._tcp.example.test passed:\n%v", direct)
	}
	bind := startIteratingNamed(t, port, "www.example.test.", "", "example.test")
	// BIND 9.18 minimises the question (qname-minimization relaxed, the default): it asks
	// CoreDNS about _tcp.example.test first, gets the referral and asks the server it names.
	if r := ask(t, bind, "_vlmcs._tcp.example.test.", dns.TypeSRV); holds(r, "rogue") || !holds(r, "kms1.example.test.") {
		t.Errorf("_vlmcs._tcp.example.test SRV through BIND: want the pool's kms1:\n%v", r)
	}
	ask(t, bind, "x._tcp.example.test.", dns.TypeA)
	time.Sleep(3 * time.Second) // the pool's answer (ttl 2 s) leaves BIND's cache
	if r := ask(t, bind, "_vlmcs._tcp.example.test.", dns.TypeSRV); holds(r, "rogue") || !holds(r, "kms1.example.test.") {
		t.Errorf("_vlmcs._tcp.example.test SRV through BIND after the referral: want the pool's kms1:\n%v", r)
	}
}
