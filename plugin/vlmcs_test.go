package vlmcs

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

func TestAnswerStatic(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org kms2.example.org
	static kms1.example.org 1688 0 10 192.0.2.1 2001:db8::1
	static kms2.example.org 1700 5 0 192.0.2.2
	probe off
	ttl 3
}`)
	tc := test.Case{
		Qname: "_VLMCS._TCP.Example.ORG.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_vlmcs._tcp.example.org. 3 IN SRV 0 10 1688 kms1.example.org."),
			test.SRV("_vlmcs._tcp.example.org. 3 IN SRV 5 0 1700 kms2.example.org."),
		},
		Extra: []dns.RR{
			test.A("kms1.example.org. 3 IN A 192.0.2.1"),
			test.AAAA("kms1.example.org. 3 IN AAAA 2001:db8::1"),
			test.A("kms2.example.org. 3 IN A 192.0.2.2"),
		},
	}
	m := query(t, v, tc.Qname, tc.Qtype)
	if err := test.SortAndCheck(m, tc); err != nil {
		t.Fatal(err)
	}
	if !m.Authoritative || m.Question[0].Name != tc.Qname {
		t.Errorf("aa=%v question=%v", m.Authoritative, m.Question)
	}
}

func TestAnswerOrderVaries(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve *.example.org
	static a.example.org 1688 0 0 192.0.2.1
	static b.example.org 1688 0 0 192.0.2.2
	static c.example.org 1688 0 0 192.0.2.3
	static d.example.org 1688 0 0 192.0.2.4
	probe off
}`)
	firsts := map[string]bool{}
	for range 200 {
		m := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)
		if len(m.Answer) != 4 {
			t.Fatalf("answer has %d records", len(m.Answer))
		}
		firsts[m.Answer[0].(*dns.SRV).Target] = true
	}
	if len(firsts) < 2 {
		t.Errorf("first record never changed in 200 answers: %v", firsts)
	}
	// The prepared answer itself is never reordered.
	a := v.pools[0].ans.Load()
	if a.srv[0].(*dns.SRV).Target != "a.example.org." || cap(a.extra) != len(a.extra) {
		t.Errorf("prepared answer changed: %v (cap %d len %d)", a.srv[0], cap(a.extra), len(a.extra))
	}
}

func TestNodataAndFallthrough(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org
	probe off
	ttl 4
}`)
	m := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Fatalf("want NODATA with SOA, got %v", m)
	}
	soa, ok := m.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != "example.org." || soa.Minttl != 4 || soa.Hdr.Ttl != 4 {
		t.Errorf("SOA = %v", m.Ns[0])
	}
	// Other types at the owned name: NODATA too.
	if m := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeTXT); len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("TXT at owned name: %v", m)
	}
	// Everything else goes to the next plugin.
	for _, n := range []string{"example.org.", "kms1.example.org.", "_vlmcs._udp.example.org.", "_vlmcs._tcp.example.net.", `x\._vlmcs._tcp.example.org.`} {
		m := query(t, v, n, dns.TypeSRV)
		if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeTXT {
			t.Errorf("%s did not fall through: %v", n, m)
		}
	}
	// Names below the owned name are vlmcs's too: NXDOMAIN, whatever the next plugin holds.
	for _, n := range []string{"x._vlmcs._tcp.example.org.", "A.B._VLMCS._tcp.example.org."} {
		m := query(t, v, n, dns.TypeSRV)
		if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 || len(m.Ns) != 1 || !m.Authoritative {
			t.Errorf("%s: want NXDOMAIN with SOA, got %v", n, m)
		}
	}
}

func TestHealthProbes(t *testing.T) {
	up := listenKMS(t)
	dead := deadPort(t)
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org kms2.example.org
	static kms1.example.org `+up.PortString()+` 0 0 127.0.0.1
	static kms2.example.org `+strconv.Itoa(int(dead))+` 0 0 127.0.0.1
	probe 20ms 100ms 2 1
	all_down none
}`)
	if v.Ready() {
		t.Fatal("ready before the first probe round")
	}
	if m := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV); len(m.Answer) != 0 {
		t.Fatalf("unprobed members served: %v", m.Answer)
	}
	v.start()
	defer v.stop()
	testkit.Eventually(t, 2*time.Second, "ready", v.Ready)
	want := "kms1.example.org.:" + up.PortString()
	testkit.Eventually(t, 2*time.Second, "kms1 up", func() bool {
		s := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV))
		return len(s) == 1 && s[want]
	})
	// The KMS host dies: it leaves the answer after `fails` failed probes.
	up.Stop()
	start := time.Now()
	testkit.Eventually(t, 2*time.Second, "kms1 down", func() bool {
		return len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer) == 0
	})
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("member left after %s, before two probes could fail", d)
	}
}

func TestHealthRecovery(t *testing.T) {
	port := deadPort(t)
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org
	static kms1.example.org `+strconv.Itoa(int(port))+` 0 0 127.0.0.1
	probe 20ms 100ms 1 2
	all_down none
}`)
	v.start()
	defer v.stop()
	testkit.Eventually(t, 2*time.Second, "ready", v.Ready)
	if m := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV); len(m.Answer) != 0 {
		t.Fatalf("dead member served: %v", m.Answer)
	}
	ln := listenOn(t, port)
	defer ln.Stop()
	testkit.Eventually(t, 2*time.Second, "recovery", func() bool {
		return len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer) == 1
	})
}

func TestAllDownLastKnown(t *testing.T) {
	dead := deadPort(t)
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org
	static kms1.example.org `+strconv.Itoa(int(dead))+` 0 0 127.0.0.1
	probe 20ms 100ms 1 1
	all_down last_known
}`)
	v.start()
	defer v.stop()
	testkit.Eventually(t, 2*time.Second, "ready", v.Ready)
	testkit.Eventually(t, time.Second, "down state", func() bool {
		v.pools[0].mu.Lock()
		defer v.pools[0].mu.Unlock()
		for _, m := range v.pools[0].members {
			return m.state == healthDown
		}
		return false
	})
	m := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)
	if len(m.Answer) != 1 || v.pools[0].ans.Load().kind != "last_known" {
		t.Fatalf("last_known policy: %v", m.Answer)
	}
}

func TestReloadKeepsPool(t *testing.T) {
	corefile := `vlmcs example.org {
	approve kms1.example.org 127.0.0.0/8
	key k. c2VjcmV0
	grant k. kms1.example.org
	probe off
}`
	// The failed reload below leaves its reference in the process-wide
	// registry by design; drop the entry so repeated runs (-count) start clean.
	t.Cleanup(func() {
		registry.mu.Lock()
		delete(registry.pools, "reload-test|example.org.")
		registry.mu.Unlock()
	})
	cfg1, _ := parse(newController(corefile))
	v1 := newVlmcs(cfg1, "dns://test", "reload-test", nil)
	if vd := register(t, v1, "kms1.example.org.", "127.0.0.1", 1688, 60); vd.Rcode != dns.RcodeSuccess {
		t.Fatalf("register: %v", vd)
	}
	// A reload that fails after vlmcs's setup (a later plugin's error) must not touch the pool.
	bad, _ := parse(newController(strings.Replace(corefile, "approve kms1.example.org 127.0.0.0/8", "approve kms9.example.org", 1)))
	newVlmcs(bad, "dns://test", "reload-test", nil) // never started
	if m := query(t, v1, "_vlmcs._tcp.example.org.", dns.TypeSRV); len(m.Answer) != 1 {
		t.Fatalf("a failed reload changed the pool: %v", m)
	}
	// Reload: the new instance acquires the same pool and starts before the old one shuts down.
	cfg2, _ := parse(newController(corefile))
	v2 := newVlmcs(cfg2, "dns://test", "reload-test", nil)
	v2.start()
	v1.stop()
	if m := query(t, v2, "_vlmcs._tcp.example.org.", dns.TypeSRV); len(m.Answer) != 1 {
		t.Fatalf("pool lost on reload: %v", m)
	}
	v2.stop()
	registry.mu.Lock()
	e := registry.pools["reload-test|example.org."]
	registry.mu.Unlock()
	if e == nil || e.refs != 1 {
		t.Errorf("registry entry after shutdown: %+v (only the failed reload's reference should remain)", e)
	}
}

// TestConcurrentUse runs queries, registrations, withdrawals and probe rounds at once (meant
// for -race).
func TestConcurrentUse(t *testing.T) {
	kms := listenKMS(t)
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org kms2.example.org 127.0.0.0/8
	key k. c2VjcmV0
	grant k. kms1.example.org kms2.example.org
	lease 1h 1s 1h
	probe 10ms 50ms 1 1
}`)
	v.start()
	defer v.stop()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)
				}
			}
		})
	}
	for i := range 200 {
		target := []string{"kms1.example.org.", "kms2.example.org."}[i%2]
		register(t, v, target, "127.0.0.1", uint16(kms.Port), uint32(1+i%3))
		if i%5 == 0 {
			w := new(dns.Msg)
			w.SetUpdate("example.org.")
			w.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: uint16(kms.Port), Target: target}}
			send(t, v, sign(w, "k."), "127.0.0.1", false, nil)
		}
	}
	close(done)
	wg.Wait()
}

func TestAnswerHostAddresses(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org kms2.example.org
	static kms1.example.org 1688 0 10 192.0.2.1 2001:db8::1
	static kms2.example.org 1688 0 10 192.0.2.2
	probe off
	ttl 3
}`)
	cases := []struct {
		name   string
		qt     uint16
		answer []string
		soa    bool
		next   bool
	}{
		{"KMS1.example.org.", dns.TypeA, []string{"192.0.2.1"}, false, false},
		{"kms1.example.org.", dns.TypeAAAA, []string{"2001:db8::1"}, false, false},
		{"kms1.example.org.", dns.TypeANY, []string{"192.0.2.1", "2001:db8::1"}, false, false},
		{"kms2.example.org.", dns.TypeAAAA, nil, true, false},
		{"kms3.example.org.", dns.TypeA, nil, false, true}, // not a member
		{"other.example.org.", dns.TypeA, nil, false, true},
		{"kms1.example.org.", dns.TypeTXT, nil, true, false},   // the configuration owns a static name: every type
		{"kms1.example.org.", dns.TypeCNAME, nil, true, false}, // no alias of the next plugin's passes
		{"other.example.org.", dns.TypeTXT, nil, false, true},
	}
	for _, tc := range cases {
		m := query(t, v, tc.name, tc.qt)
		next := len(m.Answer) == 1 && m.Answer[0].Header().Rrtype == dns.TypeTXT
		if next != tc.next {
			t.Errorf("%s %s: passed on=%v, want %v", tc.name, dns.TypeToString[tc.qt], next, tc.next)
			continue
		}
		if tc.next {
			continue
		}
		var got []string
		for _, rr := range m.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				got = append(got, rr.A.String())
			case *dns.AAAA:
				got = append(got, rr.AAAA.String())
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.answer, ",") || !m.Authoritative {
			t.Errorf("%s %s: answer %v aa=%v, want %v", tc.name, dns.TypeToString[tc.qt], got, m.Authoritative, tc.answer)
		}
		if hasSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != tc.soa {
			t.Errorf("%s %s: authority %v", tc.name, dns.TypeToString[tc.qt], m.Ns)
		}
	}
}

// TestEmptyNonTerminalAnswered: `_tcp.<publish zone>`, the empty non-terminal above the pool's
// name, is answered NODATA with aa and the SOA by vlmcs, never NXDOMAIN by the next plugin.
func TestEmptyNonTerminalAnswered(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org
	static kms1.example.org 1688 0 0 192.0.2.1
	probe off
}`)
	v.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
		return dns.RcodeNameError, nil
	})
	for _, qt := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeNS} {
		m := query(t, v, "_TCP.example.org.", qt)
		if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("_tcp.example.org %s: want NODATA with aa and the SOA, got %v", dns.TypeToString[qt], m)
		}
	}
}
