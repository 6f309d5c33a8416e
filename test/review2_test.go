package test

import (
	"fmt"
	"strconv"
	"strings"
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
