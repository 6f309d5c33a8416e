package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// silentHost accepts TCP connections and never answers: a blackholed KMS host as the prober
// meets it (each probe waits for its timeout). A loopback port with nothing listening would
// refuse at once, and dropping SYNs needs a firewall, so this is the honest slow peer here.
type silentHost struct {
	ln       net.Listener
	Port     int
	accepted atomic.Int64
}

func startSilent(t *testing.T, addr string) *silentHost {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &silentHost{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() { // read (never write) until the prober gives up and closes
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

// metricLine returns the value of the sample of name whose labels contain every one of
// labels (e.g. `state="down"`), summed over matching samples.
func metricLine(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); ok && err == nil {
			sum += v
		}
	}
	return sum
}

// signedUpdate sends m signed with key over TCP and returns the response code.
func signedUpdate(t *testing.T, c *harness.CoreDNS, m *dns.Msg, key, secret string) int {
	t.Helper()
	m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	cl := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{key: secret}}
	r, _, err := cl.Exchange(m, c.Addr())
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return r.Rcode
}

// registerFlood registers n members hole<i>.example.test:port at 127.0.0.1 with key, 100 per
// update.
func registerFlood(t *testing.T, c *harness.CoreDNS, key, secret string, n, port int) {
	t.Helper()
	for start := 0; start < n; start += 100 {
		m := new(dns.Msg)
		m.SetUpdate("example.test.")
		for i := start; i < min(n, start+100); i++ {
			name := fmt.Sprintf("hole%d.example.test.", i)
			m.Ns = append(m.Ns,
				&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)},
				&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: uint16(port), Target: name})
		}
		if rc := signedUpdate(t, c, m, key, secret); rc != dns.RcodeSuccess {
			t.Fatalf("flood registration %d..: %s", start, dns.RcodeToString[rc])
		}
	}
}

// probeFloodCorefile: the README's default probe settings (500 ms, 500 ms, 2, 1: a dead host
// leaves within 1.5 s); kms-key for the two responders, flood-key may register anything.
const probeFloodCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	errors
	vlmcs {
		approve *.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms-key. ` + secret1 + `
		grant kms-key. kms1.example.test kms2.example.test
		key flood-key. ` + secret2 + `
		grant flood-key. *.example.test
		any_address flood-key.
		member_limit 1024
		lease 1h 2s 1h
		probe 500ms 500ms 2 1
		all_down none
		ttl 1
	}
}
`

// TestRemovalBoundWithBlackholedMembers: with 1000 members whose probes all hang
// until the timeout, a killed responder still leaves the answer within the README's bound
// FAILS × INTERVAL + TIMEOUT = 1.5 s, as it does with none: every member has its own probe
// schedule, and the probes of members not being served yield to those of served ones under
// probe_rate. Each case kills the responder three times with the blackholed members down, and
// once (the first time logged) right after registering them, while their first probes hang.
func TestRemovalBoundWithBlackholedMembers(t *testing.T) {
	for _, holes := range []int{0, 1000} {
		t.Run(fmt.Sprintf("%d blackholed", holes), func(t *testing.T) {
			c := harness.StartCoreDNS(t, probeFloodCorefile)
			kms1 := startKMSResponder(t, c, "kms1", "1m", "windows-server-2019")
			kms2 := startKMSResponder(t, c, "kms2", "1m", "windows-server-2025")
			waitMembers(t, c, 10*time.Second, kms1, kms2)
			var took []time.Duration
			kill := func(trial int) {
				t.Helper()
				removed := make(chan time.Time, 1)
				kms1.Kill()
				killed := time.Now()
				go watchRemoval(t.Context(), c.Addr(), kms1.Member(), removed)
				select {
				case gone := <-removed:
					took = append(took, gone.Sub(killed))
				case <-time.After(6 * time.Second):
					t.Fatalf("trial %d: DNS still lists kms1 6 s after kill -9", trial)
				}
				kms1.start(t)
				waitMembers(t, c, 10*time.Second, kms1, kms2)
			}
			if holes > 0 {
				silent := startSilent(t, "127.0.0.1:0")
				registerFlood(t, c, "flood-key.", secret2, holes, silent.Port)
				kill(0) // at once, while the blackholed members' first probes hang
				harness.Eventually(t, 20*time.Second, "every blackholed member down", func() bool {
					return metricLine(scrape(t, c), "coredns_vlmcs_members", `state="down"`) == float64(holes)
				})
				if n := silent.accepted.Load(); n < int64(holes) {
					t.Fatalf("the silent host accepted %d probe connections for %d members", n, holes)
				}
				waitMembers(t, c, 5*time.Second, kms1, kms2)
			}
			for trial := 1; trial <= 3; trial++ {
				kill(trial)
			}
			t.Logf("%d blackholed members: kill -9 → out of the answer after %v", holes, took)
			for _, d := range took {
				// 1.5 s bound, plus slack for a loaded test machine.
				if d > 2500*time.Millisecond {
					t.Errorf("removal took %s; want ≤ 2 × 500 ms + 500 ms (1.5 s) plus slack", d)
				}
			}
		})
	}
}

// TestProbesOnlyWhatIsApproved: the prober never connects to an address outside
// the approved networks (a target approved by name whose address, resolved through the next
// plugin, is elsewhere), registrations on ports outside `ports` are refused, and a member
// without an address to probe is not served, not even under all_down last_known.
func TestProbesOnlyWhatIsApproved(t *testing.T) {
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	rogue := startSilent(t, net.JoinHostPort("127.0.0.2", strconv.Itoa(kms.Port))) // same port, unapproved address
	c := harness.StartCoreDNS(t, fmt.Sprintf(`example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kmsa.example.test kmsc.example.test kmsd.example.test 127.0.0.1/32
		ports %d
		key k. %s
		grant k. kmsa.example.test kmsc.example.test kmsd.example.test
		probe 100ms 200ms 2 1
		all_down last_known
	}
	hosts {
		127.0.0.2 kmsa.example.test
	}
}
`, kms.Port, secret1))
	srvOnly := func(target string, port int) *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.test.")
		m.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: uint16(port), Target: target}}
		return m
	}
	// kmsa: SRV only; the next plugin resolves it to 127.0.0.2, which is not approved.
	if rc := signedUpdate(t, c, srvOnly("kmsa.example.test.", kms.Port), "k.", secret1); rc != dns.RcodeSuccess {
		t.Fatalf("kmsa: %s", dns.RcodeToString[rc])
	}
	// kmsc: SRV only, and nothing resolves it: it cannot be probed.
	if rc := signedUpdate(t, c, srvOnly("kmsc.example.test.", kms.Port), "k.", secret1); rc != dns.RcodeSuccess {
		t.Fatalf("kmsc: %s", dns.RcodeToString[rc])
	}
	// A port outside `ports` is refused.
	if rc := signedUpdate(t, c, srvOnly("kmsd.example.test.", kms.Port+1), "k.", secret1); rc != dns.RcodeRefused {
		t.Fatalf("port outside `ports`: %s, want REFUSED", dns.RcodeToString[rc])
	}
	// kmsd at an approved address and port: the control, probed and served.
	if code, out := c.NSUpdate(t, registerScript("kmsd.example.test", "127.0.0.1", kms.Port), keyArg("k.", secret1)...); code != 0 {
		t.Fatalf("kmsd: %s", out)
	}
	want := "kmsd.example.test.:" + strconv.Itoa(kms.Port)
	harness.Eventually(t, 5*time.Second, "kmsd served", func() bool { s := srvSet(t, c, "_vlmcs._tcp.example.test"); return len(s) == 1 && s[want] })
	harness.Eventually(t, 5*time.Second, "kmsa unapproved and kmsc unprobeable", func() bool {
		text := scrape(t, c)
		return metricLine(text, "coredns_vlmcs_members", `state="unapproved"`) == 1 &&
			metricLine(text, "coredns_vlmcs_members", `state="unprobeable"`) == 1
	})
	time.Sleep(time.Second) // ten probe intervals
	if n := rogue.accepted.Load(); n != 0 {
		t.Errorf("the prober connected %d times to 127.0.0.2, outside the approved networks", n)
	}
	text := scrape(t, c)
	if n := metricLine(text, "coredns_vlmcs_updates_total", `reason="unapproved-port"`); n != 1 {
		t.Errorf("unapproved-port refusals counted: %v, want 1", n)
	}
	// With kmsd gone, all_down last_known serves the approved, registered members that can be
	// probed: kmsd, never kmsa or kmsc.
	kms.Stop()
	harness.Eventually(t, 5*time.Second, "kmsd down", func() bool {
		return metricLine(scrape(t, c), "coredns_vlmcs_members", `state="down"`) == 1
	})
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); len(s) != 1 || !s[want] {
		t.Errorf("all down, last_known answer: %v; want only kmsd", s)
	}
}

// TestMemberLimits: a key and an unsigned sender may hold only member_limit
// members; more are refused and counted.
func TestMemberLimits(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve *.example.test 127.0.0.0/8
		key k. `+secret1+`
		grant k. *.example.test
		any_address k.
		unsigned 127.0.0.0/8
		member_limit 2 1
		probe off
	}
	hosts {
		127.0.0.1 u1.example.test u2.example.test
	}
}
`)
	for i, want := range []int{dns.RcodeSuccess, dns.RcodeSuccess, dns.RcodeRefused} {
		script := fmt.Sprintf("zone example.test\nupdate add _vlmcs._tcp.example.test 60 SRV 0 0 1688 k%d.example.test", i)
		code, out := c.NSUpdate(t, script, keyArg("k.", secret1)...)
		if (code == 0) != (want == dns.RcodeSuccess) {
			t.Fatalf("signed member %d: exit %d %q", i+1, code, out)
		}
	}
	for i, ok := range []bool{true, false} {
		script := fmt.Sprintf("zone example.test\nupdate add _vlmcs._tcp.example.test 60 SRV 0 0 1688 u%d.example.test", i+1)
		if code, out := c.NSUpdate(t, script, "-v"); (code == 0) != ok {
			t.Fatalf("unsigned member %d: exit %d %q", i+1, code, out)
		}
	}
	if n := metricLine(scrape(t, c), "coredns_vlmcs_updates_total", `reason="member-limit"`); n != 2 {
		t.Errorf("member-limit refusals counted: %v, want 2", n)
	}
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); len(s) != 3 {
		t.Errorf("served: %v; want k0, k1, u1", s)
	}
}

// TestUnsignedSRVTiedToSender: an unsigned SRV registration is accepted only when
// its target resolves to the sender through the next plugin (the directory), as a Windows KMS
// host registers itself; addresses the same update adds prove nothing.
func TestUnsignedSRVTiedToSender(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve *.example.test 127.0.0.0/8
		unsigned 127.0.0.0/8
		probe off
	}
	hosts {
		127.0.0.1 kmswin.example.test
		127.0.0.9 victim.example.test
	}
}
`)
	srv := func(target string) string {
		return "zone example.test\nupdate add _vlmcs._tcp.example.test 60 SRV 0 0 1688 " + target
	}
	if code, out := c.NSUpdate(t, srv("victim.example.test"), "-v"); code == 0 || !strings.Contains(out, "REFUSED") {
		t.Errorf("unsigned SRV at someone else's host: exit %d %q, want REFUSED", code, out)
	}
	if code, out := c.NSUpdate(t, srv("nowhere.example.test"), "-v"); code == 0 || !strings.Contains(out, "REFUSED") {
		t.Errorf("unsigned SRV at a name that resolves nowhere: exit %d %q, want REFUSED", code, out)
	}
	if code, out := c.NSUpdate(t, srv("kmswin.example.test"), "-v"); code != 0 {
		t.Errorf("unsigned SRV at the sender's own name: exit %d %q", code, out)
	}
	if code, out := c.NSUpdate(t, "zone example.test\nupdate add kmsnew.example.test 60 A 127.0.0.1\n"+
		"update add _vlmcs._tcp.example.test 60 SRV 0 0 1688 kmsnew.example.test", "-v"); code == 0 || !strings.Contains(out, "REFUSED") {
		t.Errorf("unsigned SRV with the sender's address in the same update, at a name the directory lacks: exit %d %q, want REFUSED", code, out)
	}
	if n := metricLine(scrape(t, c), "coredns_vlmcs_updates_total", `reason="foreign-target"`); n != 3 {
		t.Errorf("foreign-target refusals counted: %v, want 3", n)
	}
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); len(s) != 1 || !s["kmswin.example.test.:1688"] {
		t.Errorf("served: %v; want kmswin alone", s)
	}
}

// reloadCorefile is a publish zone whose block's zone list and bind addresses the reload
// test changes.
const reloadCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	errors
	vlmcs example.test {
		approve kms1.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms1-key. ` + secret1 + `
		grant kms1-key. kms1.example.test
		lease 1h 1s 1h
		probe 100ms 200ms 2 1
		all_down none
		replay_file {{DIR}}/vlmcs.replay
	}
}
`

// TestReloadAndRestartLoseNothing: a reload that changes the block's zone list
// and bind addresses keeps the registrations and the replay memory (a captured withdraw,
// replayed after the reload, is refused); after a restart, which forgets both, a message
// signed before the process started is refused.
func TestReloadAndRestartLoseNothing(t *testing.T) {
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
	// A withdraw, captured on the wire: accepted once, then kms1 registers again.
	w := new(dns.Msg)
	w.SetUpdate("example.test.")
	w.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: qname + ".", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: uint16(kms.Port), Target: "kms1.example.test."}}
	signedAt := time.Now().Unix()
	captured := signWire(t, w, "kms1-key.", secret1, dns.HmacSHA256, signedAt, 300)
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("withdraw: %s", dns.RcodeToString[r.Rcode])
	}
	register()

	// Reload with another zone in the block and another bind address.
	changed := strings.Replace(reloadCorefile, "example.test:{{PORT}} {\n\tbind 127.0.0.1\n", "example.test:{{PORT}} other.test:{{PORT}} {\n\tbind 127.0.0.1 127.0.0.3\n", 1)
	changed = strings.Replace(changed, "vlmcs example.test {", "vlmcs example.test other.test {", 1)
	c.WriteCorefile(t, changed)
	if err := c.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "reload on 127.0.0.3", func() bool {
		return harness.Exchange(net.JoinHostPort("127.0.0.3", strconv.Itoa(c.Port)), "udp", harness.ProbeQuery()) == nil
	})
	if s := srvSet(t, c, qname); !s[member] {
		t.Fatalf("registration lost on a reload that changed zones and bind addresses: %v", s)
	}
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeRefused {
		t.Errorf("captured withdraw replayed after the reload: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if s := srvSet(t, c, qname); !s[member] {
		t.Fatalf("a replayed withdraw removed kms1 after the reload: %v", s)
	}

	// Restart: the replay memory is gone, but the message predates the process (TSIG time
	// counts seconds: restart in a later second than the signature).
	for time.Now().Unix() <= signedAt {
		time.Sleep(50 * time.Millisecond)
	}
	c.Stop()
	c.Process = harness.Start(t, c.Dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	c.WaitServing(t, 10*time.Second)
	register()
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeRefused {
		t.Errorf("captured withdraw replayed after a restart: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	harness.Eventually(t, 3*time.Second, "the before-start refusal in the log", func() bool { return strings.Contains(c.Output(), "before-start") })
	if s := srvSet(t, c, qname); !s[member] {
		t.Errorf("a replayed withdraw removed kms1 after the restart: %v", s)
	}
}

// TestCoreDNSRestartGap: with the responders' default 10-minute lease, a harness.CoreDNS
// killed and restarted on the same port answers with both members again within 5 s: each
// responder checks its record every 2 s and registers again when it is missing. Three
// restarts; the gaps are logged.
func TestCoreDNSRestartGap(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(scenarioCorefile, "LEASE", "lease 1h 2s 1h", 1))
	kms1 := startKMSResponder(t, c, "kms1", "10m", "windows-server-2019")
	kms2 := startKMSResponder(t, c, "kms2", "10m", "windows-server-2025")
	waitMembers(t, c, 10*time.Second, kms1, kms2)
	var gaps []time.Duration
	for range 3 {
		c.Kill()
		c.Process = harness.Start(t, c.Dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
		c.WaitServing(t, 10*time.Second)
		back := time.Now()
		waitMembers(t, c, 15*time.Second, kms1, kms2)
		gaps = append(gaps, time.Since(back))
	}
	t.Logf("harness.CoreDNS kill -9 and restart: both members answered again %v after it served", gaps)
	for _, g := range gaps {
		if g > 5*time.Second {
			t.Errorf("gap %s; want ≤ 5 s", g)
		}
	}
	for _, r := range []*kmsResponder{kms1, kms2} {
		out, err := httpGet("http://" + r.Admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if n := metricLine(out, "kms_responder_dns_registration_repairs_total"); n < 3 {
			t.Errorf("%s: kms_responder_dns_registration_repairs_total %v, want ≥ 3 (one per restart)", r.Name, n)
		}
	}
}

// httpGet returns the body at url.
func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
