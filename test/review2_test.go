package test

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// Findings of a second outside review of the vlmcs plugin's newest defences. Each test states
// the safe behaviour clients rely on: a `_vlmcs._tcp` question asked of CoreDNS, or of a cache
// in front of it, reaches only approved hosts at approved addresses.

// review2Upstream starts a miekg/dns server on loopback standing in for a DNS server behind
// CoreDNS whose records an attacker can write (Active Directory's unsigned dynamic updates
// let any domain member create names): answer builds the reply to each query. It returns the
// server's address.
func review2Upstream(t *testing.T, answer func(r, m *dns.Msg)) string {
	t.Helper()
	ln, pc := testkit.ListenUDPTCP(t, "127.0.0.1:0")
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		answer(r, m)
		w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{Listener: ln, Handler: handler}, {PacketConn: pc, Handler: handler}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
	return ln.Addr().String()
}

// review2RR parses a record or fails the test.
func review2RR(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReview2BlockBelowZoneSkipsVlmcs: CoreDNS routes each question to the server block with
// the longest matching zone on its listener. A Corefile whose vlmcs block covers ad.test (here
// the root block `.`, with `vlmcs ad.test { scrub ad.test }`) and that also has a block for a
// name below ad.test on the same port without vlmcs (a conditional forward for a branch
// office's search domain, sub.ad.test, is a common sight) hands `_vlmcs._tcp.sub.ad.test`
// (and every other name under sub.ad.test) to that block: vlmcs never sees the question, and
// the rogue SRV record of the DNS behind reaches the client unjudged. CoreDNS starts without
// a word.
//
// Safe behaviour: CoreDNS refuses a Corefile in which a block without vlmcs (or with another
// vlmcs configuration) serves a name at or below a zone of a vlmcs block on the same listener,
// naming both blocks; or, if it starts, the SRV answer for the search domain holds no rogue
// target.
func TestReview2BlockBelowZoneSkipsVlmcs(t *testing.T) {
	up := review2Upstream(t, func(r, m *dns.Msg) {
		q := r.Question[0]
		if q.Qtype == dns.TypeSRV && strings.HasPrefix(strings.ToLower(q.Name), "_vlmcs._tcp.") {
			m.Answer = []dns.RR{review2RR(t, q.Name+" 600 IN SRV 0 0 1688 rogue.ad.test.")}
			m.Extra = []dns.RR{review2RR(t, "rogue.ad.test. 600 IN A 127.0.0.66")}
		}
	})
	port := harness.FreePort(t)
	dir := t.TempDir()
	harness.WriteFile(t, dir, "Corefile", fmt.Sprintf(`.:%d {
	bind 127.0.0.1
	vlmcs ad.test {
		approve kms1.ad.test
		scrub ad.test
		probe off
	}
	forward . %s
}
sub.ad.test:%d {
	bind 127.0.0.1
	forward . %s
}
`, port, up, port, up))
	p := harness.Start(t, dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	end := time.Now().Add(10 * time.Second)
	for harness.Exchange(addr, "udp", harness.ProbeQuery()) != nil {
		if p.Exited() {
			t.Logf("refused at startup (safe): %s", p.Output())
			return
		}
		if time.Now().After(end) {
			t.Fatalf("coredns neither started nor exited:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := ask(t, addr, "_vlmcs._tcp.ad.test.", dns.TypeSRV); holds(r, "rogue") {
		t.Fatalf("the vlmcs block itself passed the rogue target:\n%v", r)
	}
	if r := ask(t, addr, "_vlmcs._tcp.sub.ad.test.", dns.TypeSRV); holds(r, "rogue") || holds(r, "127.0.0.66") {
		t.Errorf("_vlmcs._tcp.sub.ad.test (a search domain inside the vlmcs zone ad.test) answered by another server block, unjudged; CoreDNS started with this Corefile:\n%v", r)
	}
}

// TestReview2LongAliasChainAddress: the address guard follows the alias chain of an address
// question for a KMS target name for at most 8 aliases (maxChain) and then stops, judging the
// rest of the chain by owner alone; names outside the zones are never judged by owner. scrub
// treats a chain longer than 8 as a loop (SERVFAIL), but the address guard passes it. The DNS
// behind answers kms1.ad.test A with a chain of 9 aliases that leaves the zone and ends at an
// unapproved address; resolvers and stub resolvers follow such chains (BIND up to 16, Windows
// further), so a client that holds kms1 from a cached SRV answer connects to 127.0.0.66.
//
// Safe behaviour: an address answer for a KMS target name carries no address approve does not
// admit, however long the chain (a chain the guard cannot follow to its end is answered
// SERVFAIL, as scrub answers it).
func TestReview2LongAliasChainAddress(t *testing.T) {
	up := review2Upstream(t, func(r, m *dns.Msg) {
		q := r.Question[0]
		hops := map[string]int{"kms1.ad.test.": 9, "kms2.ad.test.": 8}[strings.ToLower(q.Name)]
		if hops == 0 || q.Qtype != dns.TypeA {
			return
		}
		name := strings.ToLower(q.Name)
		for i := 1; i <= hops; i++ {
			next := fmt.Sprintf("hop%d.elsewhere.test.", i)
			m.Answer = append(m.Answer, review2RR(t, name+" 600 IN CNAME "+next))
			name = next
		}
		m.Answer = append(m.Answer, review2RR(t, name+" 600 IN A 127.0.0.66"))
	})
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs ad.test {
		approve *.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up+`
}
`)
	// With 8 aliases the address is removed ...
	if r := ask(t, front.Addr(), "kms2.ad.test.", dns.TypeA); holds(r, "127.0.0.66") {
		t.Errorf("kms2.ad.test A through 8 aliases: want the unapproved address removed:\n%v", r)
	}
	// ... with 9 it passes.
	if r := ask(t, front.Addr(), "kms1.ad.test.", dns.TypeA); holds(r, "127.0.0.66") {
		t.Errorf("kms1.ad.test A (an approved KMS target name, approve admits only 127.0.0.1) resolves through 9 aliases to an unapproved address:\n%v", r)
	}
}

// TestReview2LureAliasThroughTarget: the address guard judges the alias chain of an address
// question only when the question name is itself a KMS target name. With `approve
// kms1.ad.test 127.0.0.1`, an answer to lure.ad.test A (any name the attacker creates in the
// DNS behind) that runs lure.ad.test CNAME kms1.ad.test CNAME evil.elsewhere.test A
// 127.0.0.66 passes whole: no address record is owned by kms1. A cache in front (dnsmasq)
// stores kms1.ad.test's CNAME and the address it leads to, and answers the client's own
// kms1.ad.test A question from them: the approved target resolves to 127.0.0.66.
//
// Safe behaviour: wherever a KMS target name appears on an alias chain, the addresses the
// chain leads to from it are held to approve's rules for that name (or the alias owned by the
// target name is removed), so no cache learns an unapproved address for kms1.
func TestReview2LureAliasThroughTarget(t *testing.T) {
	up := review2Upstream(t, func(r, m *dns.Msg) {
		q := r.Question[0]
		if q.Qtype != dns.TypeA {
			return
		}
		switch strings.ToLower(q.Name) {
		case "lure.ad.test.":
			m.Answer = []dns.RR{
				review2RR(t, "lure.ad.test. 600 IN CNAME kms1.ad.test."),
				review2RR(t, "kms1.ad.test. 600 IN CNAME evil.elsewhere.test."),
				review2RR(t, "evil.elsewhere.test. 600 IN A 127.0.0.66"),
			}
		case "kms1.ad.test.":
			m.Answer = []dns.RR{review2RR(t, "kms1.ad.test. 600 IN A 127.0.0.1")}
		}
	})
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs ad.test {
		approve kms1.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up+`
}
`)
	if r := ask(t, front.Addr(), "lure.ad.test.", dns.TypeA); holds(r, "127.0.0.66") {
		t.Errorf("lure.ad.test A: the chain through kms1.ad.test (a KMS target) to an unapproved address passed:\n%v", r)
	}
	dm := startDnsmasq(t, front.Addr())
	ask(t, dm, "lure.ad.test.", dns.TypeA)
	if r := ask(t, dm, "kms1.ad.test.", dns.TypeA); holds(r, "127.0.0.66") {
		t.Errorf("kms1.ad.test A from dnsmasq after the lure: the approved KMS target resolves to an unapproved address:\n%v", r)
	}
}

// review2TwoBlocks is two blocks on one port publishing example.test with different
// configurations: FIRST (bind 127.0.0.1) takes registrations of kms1 by kms1-key; SECOND
// (bind 127.0.0.2) serves a lab host. The test swaps their order in the Corefile.
const (
	review2BlockOne = `example.test:{{PORT}} {
	bind 127.0.0.1
	vlmcs example.test {
		approve kms1.example.test 127.0.0.1
		key kms1-key. ` + secret1 + `
		grant kms1-key. kms1.example.test
		ports 1024-65535
		probe off
	}
}
`
	review2BlockTwo = `example.test:{{PORT}} {
	bind 127.0.0.2
	vlmcs example.test {
		approve lab.example.test 127.0.0.2
		static lab.example.test 1688 0 0 127.0.0.2
		probe off
	}
}
`
)

// TestReview2ReloadReorderLosesPool: blocks on one port that publish one zone with different
// configurations get separate pools, but only the second claimant's pool key carries its bind
// addresses; the first claimant's key is the bare listener and zone. Which block is "first"
// is the order in the Corefile, so a reload that only swaps the two blocks (or removes the
// first one) hands the first block's pool, with its registrations, to the other block (which
// drops them as orphans) and gives the first block a new, empty pool: kms1, registered and
// with a live lease, is gone from the answers of its own block until it registers again
// (Windows clients of that network get NODATA meanwhile). Nothing in the Corefile the block
// reads changed.
//
// Safe behaviour: a reload that does not change a block's vlmcs configuration or bind keeps
// that block's registrations (the pool key does not depend on block order).
func TestReview2ReloadReorderLosesPool(t *testing.T) {
	c := harness.StartCoreDNS(t, review2BlockOne+review2BlockTwo)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	qname := "_vlmcs._tcp.example.test"
	member := "kms1.example.test.:" + strconv.Itoa(kms.Port)
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", kms.Port), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("registration: %s", out)
	}
	harness.Eventually(t, 5*time.Second, "kms1 served", func() bool { return srvSet(t, c, qname)[member] })

	reload := func(corefile string) {
		t.Helper()
		c.WriteCorefile(t, corefile)
		before := strings.Count(c.Output(), "Reloading complete")
		if err := c.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 10*time.Second, "the reload", func() bool {
			return strings.Count(c.Output(), "Reloading complete") > before
		})
	}
	// A reload of the same Corefile keeps kms1 ...
	reload(review2BlockOne + review2BlockTwo + "\n")
	if s := srvSet(t, c, qname); !s[member] {
		t.Fatalf("after a reload of the same Corefile, kms1 is gone: %v", s)
	}
	// ... one that swaps the blocks loses it.
	reload(review2BlockTwo + review2BlockOne)
	if s := srvSet(t, c, qname); !s[member] {
		t.Errorf("after a reload that only swapped two blocks, kms1 (registered, lease live) is gone from its block's answer: %v\n%s", s, c.Output())
	}
}

// TestReview2AliasLeftForResolverToChase: when the address guard removes the unapproved
// address at the end of a KMS target name's alias chain, it keeps the aliases: the answer to
// kms1.ad.test A is `kms1.ad.test CNAME evil.elsewhere.test` and nothing else. A resolver in
// front (BIND, forward-only to CoreDNS) takes a CNAME without its target's records as an
// unfinished chain and asks evil.elsewhere.test A itself; that name is no KMS target, so its
// address passes, and the client gets kms1.ad.test -> 127.0.0.66 from BIND.
//
// Safe behaviour: an address question for a KMS target name whose chain leads to an address
// approve does not admit gets no alias that leads there (NODATA, or SERVFAIL, for kms1), so no
// resolver in front resolves kms1 to an unapproved address.
func TestReview2AliasLeftForResolverToChase(t *testing.T) {
	up := review2Upstream(t, func(r, m *dns.Msg) {
		q := r.Question[0]
		if q.Qtype != dns.TypeA {
			return
		}
		switch strings.ToLower(q.Name) {
		case "kms1.ad.test.":
			m.Answer = []dns.RR{
				review2RR(t, "kms1.ad.test. 600 IN CNAME evil.elsewhere.test."),
				review2RR(t, "evil.elsewhere.test. 600 IN A 127.0.0.66"),
			}
		case "evil.elsewhere.test.":
			m.Answer = []dns.RR{review2RR(t, "evil.elsewhere.test. 600 IN A 127.0.0.66")}
		}
	})
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs ad.test {
		approve *.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up+`
}
`)
	direct := ask(t, front.Addr(), "kms1.ad.test.", dns.TypeA)
	if holds(direct, "127.0.0.66") {
		t.Fatalf("CoreDNS itself passed the unapproved address:\n%v", direct)
	}
	named := startNamedResolver(t, front.Addr(), "", "")
	if r := ask(t, named, "kms1.ad.test.", dns.TypeA); holds(r, "127.0.0.66") {
		t.Errorf("kms1.ad.test A through BIND: the approved KMS target resolves to an unapproved address (CoreDNS answered %v):\n%v", direct.Answer, r)
	}
}

// TestReview2ApexNSLeadsPastVlmcs: vlmcs keeps the NS RRset at a zone's apex as the next
// plugin gives it. When the zone is delegated to CoreDNS (here: the parent zone test, served
// at 127.0.0.54, delegates ad.test to CoreDNS's vlmcs block on the same address) and the DNS
// behind names its own servers at the apex (Active Directory names its domain controllers),
// an iterating resolver (BIND) receives that NS RRset in the authority section of vlmcs's
// answers, which is authoritative data and outranks the parent's delegation in its cache: its
// next question for the zone goes to the domain controller (127.0.0.66), never to CoreDNS,
// and the rogue SRV record there reaches the client unjudged once vlmcs's answer has expired.
//
// Safe behaviour: no answer vlmcs gives for its zones names, as the zone's name servers,
// servers other than the ones the zone is delegated to (vlmcs's own); BIND keeps asking
// CoreDNS and never gets the rogue target.
func TestReview2ApexNSLeadsPastVlmcs(t *testing.T) {
	port := strconv.Itoa(harness.FreePort(t))
	dir := t.TempDir()
	harness.WriteFile(t, dir, "db.test", `$ORIGIN test.
@	3600 IN SOA ns hostmaster 1 3600 600 86400 60
@	3600 IN NS ns
ns	3600 IN A 127.0.0.54
www	600 IN A 127.0.0.1
ad	3600 IN NS cdns
cdns	3600 IN A 127.0.0.54
`)
	harness.WriteFile(t, dir, "db.ad", `$ORIGIN ad.test.
@	3600 IN SOA dc1 hostmaster 1 3600 600 86400 1
@	3600 IN NS dc1
dc1	3600 IN A 127.0.0.66
_vlmcs._tcp	1 IN SRV 0 0 1688 kms1
_vlmcs._tcp	1 IN SRV 0 0 1688 rogue
kms1	1 IN A 127.0.0.1
rogue	1 IN A 127.0.0.66
`)
	harness.WriteFile(t, dir, "Corefile", `test:`+port+` {
	bind 127.0.0.54
	file `+dir+`/db.test test
}
ad.test:`+port+` {
	bind 127.0.0.54
	vlmcs ad.test {
		approve kms1.ad.test 127.0.0.1
		scrub ad.test
		probe off
	}
	forward . 127.0.0.66:`+port+`
}
ad.test:`+port+` {
	bind 127.0.0.66
	file `+dir+`/db.ad ad.test
}
`)
	servers := harness.Start(t, dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	front := "127.0.0.54:" + port
	harness.Eventually(t, 10*time.Second, "vlmcs and the domain controller answering", func() bool {
		if servers.Exited() {
			t.Fatalf("coredns exited: %s", servers.Output())
		}
		return harness.Exchange(front, "udp", harness.ProbeQuery()) == nil && harness.Exchange("127.0.0.66:"+port, "udp", harness.ProbeQuery()) == nil
	})
	direct := ask(t, front, "_vlmcs._tcp.ad.test.", dns.TypeSRV)
	if holds(direct, "rogue") {
		t.Fatalf("vlmcs itself passed the rogue target:\n%v", direct)
	}
	bind := startIteratingNamed(t, port, "www.test.", "", "test")
	for i := range 4 {
		if r := ask(t, bind, "_vlmcs._tcp.ad.test.", dns.TypeSRV); holds(r, "rogue") {
			t.Fatalf("_vlmcs._tcp.ad.test SRV through BIND (question %d; vlmcs answered with authority %v): the rogue target reached the client:\n%v", i+1, direct.Ns, r)
		}
		time.Sleep(1500 * time.Millisecond) // vlmcs's answer (ttl 1 s) leaves BIND's cache
	}
}

// TestReview2EmptyNonTerminalNXDOMAIN: `_tcp.<publish zone>` is an empty non-terminal of the
// pool's `_vlmcs._tcp.<zone>` name, but vlmcs passes questions for it on, and a next plugin
// that holds the zone without `_vlmcs._tcp` records (the pool owns them) answers NXDOMAIN: the
// name and everything below it do not exist (RFC 8020). A resolver that minimises the
// question name (BIND with qname-minimization strict, asking CoreDNS through a static-stub)
// asks `_tcp.example.test` first, gets that NXDOMAIN and answers the client's
// `_vlmcs._tcp.example.test` SRV question NXDOMAIN: Windows clients find no KMS host (and cache
// the negative answer) while the pool holds a healthy, approved one.
//
// Safe behaviour: vlmcs answers every name above a `_vlmcs._tcp` name of a publish zone, below
// the zone, NOERROR (NODATA) with aa, never NXDOMAIN; the minimising resolver's first answer is
// the pool's kms1.
func TestReview2EmptyNonTerminalNXDOMAIN(t *testing.T) {
	port := strconv.Itoa(harness.FreePort(t))
	dir := t.TempDir()
	harness.WriteFile(t, dir, "db.ex", `$ORIGIN example.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.54
www	600 IN A 127.0.0.1
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
`)
	servers := harness.Start(t, dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	front := "127.0.0.54:" + port
	harness.Eventually(t, 10*time.Second, "vlmcs answering", func() bool {
		if servers.Exited() {
			t.Fatalf("coredns exited: %s", servers.Output())
		}
		return harness.Exchange(front, "udp", harness.ProbeQuery()) == nil
	})
	if r := ask(t, front, "_tcp.example.test.", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("_tcp.example.test (an empty non-terminal above the pool's _vlmcs._tcp.example.test) answered %s, want NOERROR:\n%v", dns.RcodeToString[r.Rcode], r)
	}
	bind := startIteratingNamed(t, port, "www.example.test.", "qname-minimization strict;", "example.test")
	if r := ask(t, bind, "_vlmcs._tcp.example.test.", dns.TypeSRV); r.Rcode != dns.RcodeSuccess || !holds(r, "kms1.example.test.") {
		t.Errorf("_vlmcs._tcp.example.test SRV through a minimising BIND: %s, want the pool's kms1:\n%v", dns.RcodeToString[r.Rcode], r)
	}
}

// TestReview2CNAMEQuestionAtTarget: only A, AAAA and ANY questions for a KMS target name are
// answered from the configuration (`approve NAME=ADDRESS`) or judged. A CNAME question for it
// is passed on and its answer passes whole: the DNS behind (where any domain member can create
// names) answers kms1.ad.test CNAME evil.elsewhere.test. A resolver in front (BIND) caches
// that alias, and from then on answers the client's kms1.ad.test A question itself by
// following it (it never asks CoreDNS about kms1 again while the alias is cached): the name
// the configuration binds to 127.0.0.1 resolves to 127.0.0.66. Anyone who can ask the
// resolver a question can plant it.
//
// Safe behaviour: no answer vlmcs passes on holds an alias owned by a KMS target name that
// leads to an address approve (or the name's binding) does not admit; through BIND,
// kms1.ad.test A stays 127.0.0.1.
func TestReview2CNAMEQuestionAtTarget(t *testing.T) {
	up := review2Upstream(t, func(r, m *dns.Msg) {
		q := r.Question[0]
		switch {
		case strings.EqualFold(q.Name, "kms1.ad.test.") && q.Qtype == dns.TypeCNAME:
			m.Answer = []dns.RR{review2RR(t, "kms1.ad.test. 600 IN CNAME evil.elsewhere.test.")}
		case strings.EqualFold(q.Name, "kms1.ad.test.") && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{review2RR(t, "kms1.ad.test. 600 IN A 127.0.0.1")}
		case strings.EqualFold(q.Name, "evil.elsewhere.test.") && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{review2RR(t, "evil.elsewhere.test. 600 IN A 127.0.0.66")}
		}
	})
	front := harness.StartCoreDNS(t, `.:{{PORT}} {
	bind 127.0.0.1
	vlmcs ad.test {
		approve kms1.ad.test=127.0.0.1
		scrub ad.test
		probe off
	}
	forward . `+up+`
}
`)
	if r := ask(t, front.Addr(), "kms1.ad.test.", dns.TypeA); !holds(r, "127.0.0.1") || holds(r, "127.0.0.66") {
		t.Fatalf("kms1.ad.test A from CoreDNS: want the bound 127.0.0.1:\n%v", r)
	}
	named := startNamedResolver(t, front.Addr(), "", "")
	lure := ask(t, named, "kms1.ad.test.", dns.TypeCNAME)
	if r := ask(t, named, "kms1.ad.test.", dns.TypeA); holds(r, "127.0.0.66") || !holds(r, "127.0.0.1") {
		t.Errorf("kms1.ad.test A through BIND after a CNAME question (answered %v): the bound KMS target resolves elsewhere:\n%v", lure.Answer, r)
	}
}
