package vlmcs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// fakeHosts is a probeFunc over made-up addresses: "slow" ones hang until the timeout, "up"
// ones pass, the rest fail at once. It counts probes per address.
type fakeHosts struct {
	mu    sync.Mutex
	slow  map[string]bool
	up    map[string]bool
	count map[string]int
}

func newFakeHosts() *fakeHosts {
	return &fakeHosts{slow: map[string]bool{}, up: map[string]bool{}, count: map[string]int{}}
}

func (f *fakeHosts) probe(ctx context.Context, addr string, timeout time.Duration) error {
	f.mu.Lock()
	f.count[addr]++
	slow, up := f.slow[addr], f.up[addr]
	f.mu.Unlock()
	if slow {
		select {
		case <-ctx.Done():
		case <-time.After(timeout):
		}
		return context.DeadlineExceeded
	}
	if up {
		return nil
	}
	return fmt.Errorf("connection refused")
}

func (f *fakeHosts) set(addr string, up bool) {
	f.mu.Lock()
	f.up[addr] = up
	f.mu.Unlock()
}

func (f *fakeHosts) probes(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[addr]
}

func (f *fakeHosts) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a := range f.count {
		out = append(out, a)
	}
	return out
}

// TestNoHeadOfLineBlocking: 200 members whose probes hang for the whole 500 ms timeout do
// not slow the 20 ms schedule of a live member: it keeps being probed, and leaves the answer
// within FAILS × INTERVAL of dying, far below one slow probe.
func TestNoHeadOfLineBlocking(t *testing.T) {
	var b strings.Builder
	b.WriteString("vlmcs example.org {\n approve *.example.org 192.0.2.0/24\n probe 20ms 500ms 2 1\n all_down none\n static kms1.example.org 1688 0 0 192.0.2.1\n")
	f := newFakeHosts()
	f.set("192.0.2.1:1688", true)
	for i := range 200 {
		fmt.Fprintf(&b, " static slow%d.example.org %d 0 0 192.0.2.2\n", i, 2000+i)
		f.slow[fmt.Sprintf("192.0.2.2:%d", 2000+i)] = true
	}
	b.WriteString("}")
	v := newTest(t, b.String())
	v.probe = f.probe
	v.start()
	defer v.stop()
	testkit.Eventually(t, 3*time.Second, "kms1 up", func() bool { return len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer) == 1 })
	before := f.probes("192.0.2.1:1688")
	time.Sleep(time.Second)
	if n := f.probes("192.0.2.1:1688") - before; n < 10 {
		t.Errorf("kms1 probed %d times in 1 s at a 20 ms interval; slow members hold it back", n)
	}
	f.set("192.0.2.1:1688", false)
	died := time.Now()
	testkit.Eventually(t, 3*time.Second, "kms1 removed", func() bool { return len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer) == 0 })
	// About 2 × 20 ms; a round that waited for the slow probes would take two of their
	// 500 ms timeouts at least. The slack is for a loaded machine.
	if d := time.Since(died); d > 800*time.Millisecond {
		t.Errorf("kms1 left after %s; want about 2 × 20 ms, well under two slow probes (1 s)", d)
	}
}

// TestProbeOnlyApprovedAddresses: a member approved by name whose address (resolved through
// the next plugin) is outside the approved networks is never probed and not served; a member
// without any address is not probed and not served, not even as last known.
func TestProbeOnlyApprovedAddresses(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org kms2.example.org kms3.example.org 192.0.2.0/24
	key k. c2VjcmV0
	grant k. kms1.example.org kms2.example.org kms3.example.org
	probe 20ms 100ms 1 1
	all_down last_known
}`)
	f := newFakeHosts()
	f.set("192.0.2.3:1688", true)
	v.probe = f.probe
	v.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		switch q := r.Question[0]; {
		case q.Name == "kms1.example.org." && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{test.A("kms1.example.org. 60 IN A 198.51.100.7")} // not approved
		case q.Name == "kms3.example.org." && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{test.A("kms3.example.org. 60 IN A 192.0.2.3")}
		}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
	srvOnly := func(target string) *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.org.")
		m.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: 1688, Target: target}}
		return sign(m, "k.")
	}
	for _, n := range []string{"kms1.example.org.", "kms2.example.org.", "kms3.example.org."} {
		if r := send(t, v, srvOnly(n), "192.0.2.9", true, nil); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %s", n, dns.RcodeToString[r.Rcode])
		}
	}
	v.start()
	defer v.stop()
	testkit.Eventually(t, 2*time.Second, "ready", v.Ready)
	testkit.Eventually(t, 2*time.Second, "kms3 served", func() bool { return len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer) == 1 })
	f.set("192.0.2.3:1688", false) // all down: last_known serves what can be probed only
	testkit.Eventually(t, 2*time.Second, "last known", func() bool { return v.pools[0].ans.Load().kind == "last_known" })
	time.Sleep(100 * time.Millisecond)
	got := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV))
	if len(got) != 1 || !got["kms3.example.org.:1688"] {
		t.Errorf("last_known answer %v; want kms3 only", got)
	}
	for _, a := range f.seen() {
		if a != "192.0.2.3:1688" {
			t.Errorf("probed %s", a)
		}
	}
}

// TestProbeRate: probe connections of a block keep to probe_rate however many members are due.
func TestProbeRate(t *testing.T) {
	var b strings.Builder
	b.WriteString("vlmcs example.org {\n approve *.example.org\n probe 10ms 100ms 1 1\n probe_rate 20\n")
	for i := range 50 {
		fmt.Fprintf(&b, " static m%d.example.org 1688 0 0 192.0.2.%d\n", i, i+1)
	}
	b.WriteString("}")
	v := newTest(t, b.String())
	var n atomic.Int64
	v.probe = func(context.Context, string, time.Duration) error { n.Add(1); return nil }
	v.start()
	time.Sleep(time.Second)
	v.stop()
	// 20 per second plus the burst of 2: 50 members at 10 ms would be 5000 unlimited.
	if got := n.Load(); got < 10 || got > 30 {
		t.Errorf("%d probes in 1 s at probe_rate 20", got)
	}
}

// TestUpdateProbeRules: ports outside `ports`, members beyond member_limit per key and per
// unsigned sender, and unsigned SRV targets that do not resolve to the sender are refused.
func TestUpdateProbeRules(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve *.example.org 192.0.2.0/24
	key k. c2VjcmV0
	grant k. *.example.org
	any_address k.
	unsigned 192.0.2.0/24
	member_limit 2 1
	probe off
}`)
	v.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeA && strings.HasPrefix(q.Name, "win") {
			m.Answer = []dns.RR{test.A(q.Name + " 60 IN A 192.0.2.5")}
		}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
	srv := func(target string, port uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.org.")
		m.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: port, Target: target}}
		return m
	}
	for _, tc := range []struct {
		name   string
		m      *dns.Msg
		signed bool
		src    string
		rcode  int
	}{
		{"port outside ports", srv("a.example.org.", 1689), true, "192.0.2.1", dns.RcodeRefused},
		{"key member 1", srv("a.example.org.", 1688), true, "192.0.2.1", dns.RcodeSuccess},
		{"key member 2", srv("b.example.org.", 1688), true, "192.0.2.1", dns.RcodeSuccess},
		{"key member 1 again (a refresh)", srv("a.example.org.", 1688), true, "192.0.2.1", dns.RcodeSuccess},
		{"key member 3", srv("c.example.org.", 1688), true, "192.0.2.1", dns.RcodeRefused},
		{"unsigned, target resolves elsewhere", srv("other.example.org.", 1688), false, "192.0.2.5", dns.RcodeRefused},
		{"unsigned, target resolves to the sender", srv("win1.example.org.", 1688), false, "192.0.2.5", dns.RcodeSuccess},
		{"unsigned, target is someone else's", srv("win2.example.org.", 1688), false, "192.0.2.6", dns.RcodeRefused},
		{"unsigned member 2 of the sender", srv("win2.example.org.", 1688), false, "192.0.2.5", dns.RcodeRefused},
		{"unsigned with its own address at a name the directory lacks", regMsg("example.org.", "new.example.org.", "192.0.2.7", 1688, 0), false, "192.0.2.7", dns.RcodeRefused},
	} {
		m := tc.m
		if tc.signed {
			m = sign(m, "k.")
		}
		if r := send(t, v, m, tc.src, true, nil); r.Rcode != tc.rcode {
			t.Errorf("%s: %s, want %s", tc.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
		}
	}
}

// TestBeforeStartRefused: a signed update timed before the server started is refused (a
// restart forgets the replay memory); one timed in the start's second is not.
func TestBeforeStartRefused(t *testing.T) {
	v := newTest(t, updCorefile)
	v.started = time.Now().Add(time.Hour)
	if r := register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 60); r.Rcode != dns.RcodeRefused {
		t.Errorf("signed before the start: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	v.started = time.Now()
	if r := register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 60); r.Rcode != dns.RcodeSuccess {
		t.Errorf("signed in the start's second: %s", dns.RcodeToString[r.Rcode])
	}
}

// TestReplayMemoryOutlivesPools: instances on one listener share the process's replay memory,
// so a pool dropped by one reload and created again by the next still refuses a replay.
func TestReplayMemoryOutlivesPools(t *testing.T) {
	cfg, _ := parse(newController(updCorefile))
	v1 := newVlmcs(cfg, "dns://test", "replay-test", nil)
	v1.started = time.Time{}
	m := sign(regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "k.")
	if r := send(t, v1, m.Copy(), "127.0.0.1", false, nil); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("first: %s", dns.RcodeToString[r.Rcode])
	}
	v1.stop() // the last reference: the pool is forgotten
	v2 := newVlmcs(cfg, "dns://test", "replay-test", nil)
	v2.started = time.Time{}
	defer v2.stop()
	if r := send(t, v2, m.Copy(), "127.0.0.1", false, nil); r.Rcode != dns.RcodeRefused {
		t.Errorf("replayed to a new pool: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}
