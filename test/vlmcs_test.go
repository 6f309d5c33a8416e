package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

const (
	secret1 = "a21zMS1rZXktc2VjcmV0LWZvci10ZXN0cy0wMQ=="
	secret2 = "a21zMi1rZXktc2VjcmV0LWZvci10ZXN0cy0wMg=="
)

// publishCorefile is a publish zone with two keys; probes every 100 ms, down after 2 failures.
const publishCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	errors
	vlmcs {
		approve kms1.example.test kms2.example.test
		approve 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms1-key. ` + secret1 + `
		key kms2-key. ` + secret2 + `
		grant kms1-key. kms1.example.test rogue.example.test
		grant kms2-key. kms2.example.test
		lease 1h 1s 1h
		probe 100ms 200ms 2 1
		all_down none
		ttl 1
	}
}
`

// srvSet returns "target:port" of the SRV records dig prints for _vlmcs._tcp.example.test.
func srvSet(t *testing.T, c *harness.CoreDNS, qname string) map[string]bool {
	t.Helper()
	out := c.Dig(t, qname, "SRV", "+short")
	set := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 {
			set[f[3]+":"+f[2]] = true
		}
	}
	return set
}

func keyArg(name, secret string) []string {
	return []string{"-y", "hmac-sha256:" + name + ":" + secret}
}

func registerScript(target, ip string, port int) string {
	return fmt.Sprintf(`zone example.test
update delete %[1]s A
update delete %[1]s AAAA
update add %[1]s 60 A %[2]s
update add _vlmcs._tcp.example.test 60 SRV 0 0 %[3]d %[1]s`, target, ip, port)
}

func TestRegistrationAndRefusals(t *testing.T) {
	c := harness.StartCoreDNS(t, publishCorefile)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	kms1 := "kms1.example.test.:" + strconv.Itoa(kms.Port)
	qname := "_VLMCS._TCP.example.test"

	if s := srvSet(t, c, qname); len(s) != 0 {
		t.Fatalf("empty pool answers %v", s)
	}
	if out := c.Dig(t, qname, "SRV"); !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "AUTHORITY: 1") {
		t.Fatalf("empty pool: want NODATA with SOA:\n%s", out)
	}

	// A signed registration appears, with glue.
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", kms.Port), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("signed registration failed (%d): %s", code, out)
	}
	harness.Eventually(t, 3*time.Second, "kms1 in the answer", func() bool { return srvSet(t, c, qname)[kms1] })
	if out := c.Dig(t, qname, "SRV"); !regexp.MustCompile(`(?m)^kms1\.example\.test\.\s+1\s+IN\s+A\s+127\.0\.0\.1$`).MatchString(out) {
		t.Errorf("no glue in the answer:\n%s", out)
	}

	// Every hostile update is refused and leaves the pool as it was.
	refusals := []struct {
		name   string
		script string
		args   []string
		want   string
	}{
		{"unsigned udp", registerScript("kms1.example.test", "127.0.0.1", 1688), nil, "REFUSED"},
		{"unsigned tcp", registerScript("kms1.example.test", "127.0.0.1", 1688), []string{"-v"}, "REFUSED"},
		{"wrong secret", registerScript("kms1.example.test", "127.0.0.1", 1688), keyArg("kms1-key.", secret2), "NOTAUTH(BADSIG)"},
		{"unknown key", registerScript("kms1.example.test", "127.0.0.1", 1688), keyArg("nobody-key.", secret1), "NOTAUTH(BADKEY)"},
		{"key for another name", registerScript("kms1.example.test", "127.0.0.1", 1688), keyArg("kms2-key.", secret2), "REFUSED"},
		{"unapproved target", registerScript("rogue.example.test", "127.0.0.1", 1688), keyArg("kms1-key.", secret1), "REFUSED"},
		{"someone else's address", registerScript("kms1.example.test", "127.0.0.9", 1688), keyArg("kms1-key.", secret1), "REFUSED"},
		{"delete other members", "zone example.test\nupdate delete _vlmcs._tcp.example.test SRV", keyArg("kms2-key.", secret2), "REFUSED"},
		{"name outside _vlmcs", "zone example.test\nupdate add www.example.test 60 CNAME kms1.example.test", keyArg("kms1-key.", secret1), "REFUSED"},
		{"other type at _vlmcs", "zone example.test\nupdate add _vlmcs._tcp.example.test 60 TXT x", keyArg("kms1-key.", secret1), "REFUSED"},
		{"over tcp with the wrong key", registerScript("kms1.example.test", "127.0.0.1", 1688), append(keyArg("kms2-key.", secret2), "-v"), "REFUSED"},
	}
	for _, r := range refusals {
		code, out := c.NSUpdate(t, r.script, r.args...)
		if code == 0 || !strings.Contains(out, r.want) {
			t.Errorf("%s: exit %d, output %q; want failure %s", r.name, code, out, r.want)
		}
	}
	// A stale signature (outside the 300 s fudge) is refused with BADTIME.
	m := updateMsg("kms1.example.test.", "127.0.0.1", kms.Port, 0)
	m.SetTsig("kms1-key.", dns.HmacSHA256, 300, time.Now().Unix()-1000)
	cl := &dns.Client{Net: "tcp", TsigSecret: map[string]string{"kms1-key.": secret1}, Timeout: 2 * time.Second}
	resp, _, err := cl.Exchange(m, c.Addr())
	if err != nil && resp == nil {
		t.Fatalf("stale update: %v", err)
	}
	if resp.Rcode != dns.RcodeNotAuth || resp.IsTsig() == nil || resp.IsTsig().Error != dns.RcodeBadTime {
		t.Errorf("stale update: %v", resp)
	}
	if s := srvSet(t, c, qname); len(s) != 1 || !s[kms1] {
		t.Fatalf("pool changed by refused updates: %v", s)
	}

	// Withdraw: gone at once.
	withdraw := fmt.Sprintf("zone example.test\nupdate delete _vlmcs._tcp.example.test SRV 0 0 %d kms1.example.test\nupdate delete kms1.example.test A", kms.Port)
	if code, out := c.NSUpdate(t, withdraw, keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("withdraw: %s", out)
	}
	if s := srvSet(t, c, qname); len(s) != 0 {
		t.Fatalf("withdrawn member still served: %v", s)
	}

	metrics := scrape(t, c)
	for _, want := range []string{
		`coredns_vlmcs_updates_total{reason="ok",result="NOERROR",server="dns://127.0.0.1:` + strconv.Itoa(c.Port) + `",zone="example.test."} 2`,
		`reason="unsigned",result="REFUSED"`,
		`reason="tsig-badsig",result="NOTAUTH"`,
		`reason="tsig-badkey",result="NOTAUTH"`,
		`reason="tsig-badtime",result="NOTAUTH"`,
		`reason="key-not-granted",result="REFUSED"`,
		`reason="unapproved-target",result="REFUSED"`,
		`reason="foreign-address",result="REFUSED"`,
		`reason="delete-all",result="REFUSED"`,
		`reason="outside",result="REFUSED"`,
		`coredns_vlmcs_probes_total{result="success"`,
		`coredns_vlmcs_answers_total{kind="members"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Refusals are logged at most 10 per second (the rest are counted, and summarized later).
	if n := strings.Count(c.Output(), "plugin/vlmcs: refused update"); n < 10 {
		t.Errorf("%d refusals logged, want at least 10", n)
	}
}

// updateMsg is the contract's registration, built with miekg/dns like the responder does.
func updateMsg(target, ip string, port int, lease uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate("example.test.")
	m.RemoveRRset([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA}}, &dns.AAAA{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeAAAA}}})
	m.Insert([]dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)},
		&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: uint16(port), Target: target},
	})
	if lease > 0 {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		o.Option = []dns.EDNS0{&dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: lease}}
		m.Extra = append(m.Extra, o)
	}
	return m
}

func TestLeaseExpiryAndProbes(t *testing.T) {
	c := harness.StartCoreDNS(t, publishCorefile)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	qname := "_vlmcs._tcp.example.test"
	member := "kms2.example.test.:" + strconv.Itoa(kms.Port)
	cl := &dns.Client{Net: "udp", TsigSecret: map[string]string{"kms2-key.": secret2}, Timeout: 2 * time.Second}
	send := func(lease uint32) *dns.Msg {
		m := updateMsg("kms2.example.test.", "127.0.0.1", kms.Port, lease)
		m.SetTsig("kms2-key.", dns.HmacSHA256, 300, time.Now().Unix())
		resp, _, err := cl.Exchange(m, c.Addr())
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if resp.Rcode != dns.RcodeSuccess {
			t.Fatalf("update: %s", dns.RcodeToString[resp.Rcode])
		}
		return resp
	}

	// A one-second lease (the minimum) that is not refreshed lapses.
	resp := send(1)
	o := resp.IsEdns0()
	if o == nil || len(o.Option) != 1 || o.Option[0].(*dns.EDNS0_UL).Lease != 1 {
		t.Fatalf("granted lease missing: %v", resp)
	}
	harness.Eventually(t, 2*time.Second, "registration served", func() bool { return srvSet(t, c, qname)[member] })
	harness.Eventually(t, 3*time.Second, "lease expiry", func() bool { return len(srvSet(t, c, qname)) == 0 })

	// A lease above the maximum is clamped.
	if ul := send(1 << 30).IsEdns0().Option[0].(*dns.EDNS0_UL).Lease; ul != 3600 {
		t.Fatalf("granted %d, want the 3600 s maximum", ul)
	}
	harness.Eventually(t, 2*time.Second, "registration served", func() bool { return srvSet(t, c, qname)[member] })

	// The KMS host dies: it leaves within fails × interval + timeout (here 0.4 s; allow slack).
	kms.Stop()
	start := time.Now()
	harness.Eventually(t, 3*time.Second, "dead member removed", func() bool { return len(srvSet(t, c, qname)) == 0 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dead member left after %s, want ≤ 2 s", d)
	}
	// It comes back: served again after one good probe.
	kms.Restart(t)
	harness.Eventually(t, 3*time.Second, "recovered member served", func() bool { return srvSet(t, c, qname)[member] })

	m := scrape(t, c)
	for _, want := range []string{"coredns_vlmcs_lease_expiries_total", `coredns_vlmcs_probes_total{result="failure"`, `coredns_vlmcs_members{server=`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The member went down and came up at least twice (first probe, recovery).
	for _, want := range []string{`coredns_vlmcs_health_changes_total\{[^}]*state="down"[^}]*\} [1-9]\n`, `coredns_vlmcs_health_changes_total\{[^}]*state="up"[^}]*\} [2-9]\n`} {
		if !regexp.MustCompile(want).MatchString(m) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestScrubZone(t *testing.T) {
	zone := `$ORIGIN ad.example.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp 600 IN SRV 0 0 1688 kms1
_vlmcs._tcp 600 IN SRV 0 0 1688 rogue
kms1	600 IN A 127.0.0.1
rogue	600 IN A 127.0.0.66
`
	up := harness.StartCoreDNS(t, "ad.example.test:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.ad\n}\n", harness.File{Name: "db.ad", Content: zone})
	if out := up.Dig(t, "_vlmcs._tcp.ad.example.test", "SRV"); !strings.Contains(out, "rogue.ad.example.test") {
		t.Fatalf("the upstream does not serve the rogue record, so this test proves nothing:\n%s", out)
	}
	front := harness.StartCoreDNS(t, `ad.example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.ad.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		scrub ad.example.test
		probe off
	}
	cache 30
	forward . `+up.Addr()+`
}
`)
	for i := range 3 { // the second and third answers come out of cache: still scrubbed
		out := front.Dig(t, "_VLMCS._TCP.ad.example.test", "SRV")
		if strings.Contains(strings.ToLower(out), "rogue") {
			t.Fatalf("query %d: rogue target reached the client:\n%s", i, out)
		}
		if !strings.Contains(out, "kms1.ad.example.test.") {
			t.Fatalf("query %d: approved target missing:\n%s", i, out)
		}
	}
	if !strings.Contains(scrape(t, front), `coredns_vlmcs_scrubbed_records_total{reason="unapproved"`) {
		t.Error("scrubbed records not counted")
	}
	if !strings.Contains(front.Output(), "scrubbed rogue KMS host rogue.ad.example.test.") {
		t.Errorf("rogue target not logged:\n%s", front.Output())
	}
}

func TestCorefileErrors(t *testing.T) {
	block := func(body string) string {
		return "example.test:" + strconv.Itoa(harness.FreePort(t)) + " {\n\tbind 127.0.0.1\n\tvlmcs {\n" + body + "\t}\n}\n"
	}
	for _, c := range []struct {
		name, corefile, want string
	}{
		{"unknown property", block("\t\tapprove kms1.example.test\n\t\tfrobnicate\n"), `Corefile:5 - Error during parsing: unknown property "frobnicate"`},
		{"bad lease", block("\t\tapprove kms1.example.test\n\t\tlease 1h 2h 1h\n"), "Corefile:5 - Error during parsing: lease: minimum 2h0m0s is above maximum 1h0m0s"},
		{"no approval", block("\t\tttl 5\n"), "Corefile:5 - Error during parsing: no `approve` rule"},
		{"static not approved", block("\t\tapprove kms1.example.test\n\t\tstatic kms2.example.test 1688\n"), "Corefile:5 - Error during parsing: static member kms2.example.test. is not approved"},
		{"bad network", block("\t\tapprove 10.0.0.0/40\n"), `Corefile:4 - Error during parsing: approve: "10.0.0.0/40" is not a network`},
		{"bad ports", block("\t\tapprove kms1.example.test\n\t\tports 1688 9000-8000\n"), `Corefile:5 - Error during parsing: ports: "9000-8000" is not a port or a range LOW-HIGH in 1..65535`},
		{"bad probe_rate", block("\t\tapprove kms1.example.test\n\t\tprobe_rate fast\n"), `Corefile:5 - Error during parsing: probe_rate: "fast" is not a number of connections per second`},
		{"bad member_limit", block("\t\tapprove kms1.example.test\n\t\tmember_limit 8 -1\n"), `Corefile:5 - Error during parsing: member_limit: "-1" is not a number of members in 0..1024`},
		{"key without secret", block("\t\tapprove kms1.example.test\n\t\tgrant k. kms1.example.test\n"), `Corefile:5: key "k." is granted but has no secret`},
		{"replay file unwritable", block("\t\tapprove kms1.example.test\n\t\treplay_file /nonexistent/dir/vlmcs.replay\n"), "Corefile:5: replay_file: open /nonexistent/dir/vlmcs.replay: no such file or directory"},
		{"blocks sharing a pool and a bind disagree", func() string {
			p := strconv.Itoa(harness.FreePort(t))
			return "a.test:" + p + " {\n\tbind 127.0.0.1\n\tvlmcs example.test {\n\t\tapprove kms1.example.test\n\t}\n}\n" +
				"b.test:" + p + " {\n\tbind 127.0.0.1\n\tvlmcs example.test {\n\t\tapprove lab.example.test\n\t}\n}\n"
		}(), "zone example.test. on dns://:"},
		{"block below a vlmcs zone without vlmcs", func() string {
			p := strconv.Itoa(harness.FreePort(t))
			return ".:" + p + " {\n\tbind 127.0.0.1\n\tvlmcs ad.test {\n\t\tapprove kms1.ad.test\n\t}\n}\n" +
				"sub.ad.test:" + p + " {\n\tbind 127.0.0.1 127.0.0.2\n}\n"
		}(), "Corefile:3: the server block dns://sub.ad.test.:"},
		{"key replaced by tsig", "example.test:" + strconv.Itoa(harness.FreePort(t)) + " {\n\tbind 127.0.0.1\n\tvlmcs {\n\t\tapprove kms1.example.test\n\t\tkey k. " + secret1 + "\n\t\tgrant k. kms1.example.test\n\t}\n\ttsig {\n\t\tsecret other. " + secret2 + "\n\t}\n}\n", `Corefile:5: key "k." was replaced by another plugin's TSIG secrets`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := harness.RunCoreDNS(t, c.corefile, 10*time.Second)
			if code == 0 || code == -1 {
				t.Fatalf("exit code %d, want a startup failure; output:\n%s", code, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out)
			}
		})
	}
}

func TestTruncationAndEDNS(t *testing.T) {
	var b strings.Builder
	b.WriteString("example.test:{{PORT}} {\n\tbind 127.0.0.1\n\tvlmcs {\n\t\tapprove *.example.test\n\t\tprobe off\n")
	for i := range 30 {
		fmt.Fprintf(&b, "\t\tstatic kms-host-%02d.example.test 1688 0 0 127.0.1.%d\n", i, i+1)
	}
	b.WriteString("\t}\n}\n")
	c := harness.StartCoreDNS(t, b.String())
	qname := "_vlmcs._tcp.example.test"
	if out := c.Dig(t, qname, "SRV", "+noedns", "+ignore"); !regexp.MustCompile(`flags: qr aa tc`).MatchString(out) {
		t.Errorf("512-byte UDP answer not truncated:\n%s", out)
	}
	if out := c.Dig(t, qname, "SRV", "+tcp"); !strings.Contains(out, "ANSWER: 30,") {
		t.Errorf("TCP answer incomplete:\n%s", out)
	}
	if out := c.Dig(t, qname, "SRV", "+bufsize=4096", "+ignore"); strings.Contains(out, " tc") || !strings.Contains(out, "ANSWER: 30,") {
		t.Errorf("EDNS buffer of 4096 not honoured:\n%s", out)
	}
}

func TestReloadKeepsPool(t *testing.T) {
	c := harness.StartCoreDNS(t, publishCorefile)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	qname := "_vlmcs._tcp.example.test"
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", kms.Port), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("registration: %s", out)
	}
	harness.Eventually(t, 3*time.Second, "registration served", func() bool { return len(srvSet(t, c, qname)) == 1 })
	// A reload that fails in a plugin after vlmcs (here forward) keeps the running config and
	// pool, although the new vlmcs block would no longer approve kms1.
	broken := strings.Replace(publishCorefile, "approve kms1.example.test kms2.example.test", "approve kms2.example.test", 1)
	broken = strings.Replace(broken, "\terrors\n", "\terrors\n\tforward . not-an-address\n", 1)
	c.WriteCorefile(t, broken)
	if err := c.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "the failed reload to be logged", func() bool { return strings.Contains(c.Output(), "not-an-address") })
	if s := srvSet(t, c, qname); len(s) != 1 || c.Exited() {
		t.Fatalf("a failed reload changed the pool: %v (exited %v)", s, c.Exited())
	}
	c.WriteCorefile(t, strings.Replace(publishCorefile, "ttl 1", "ttl 7", 1))
	if err := c.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "reloaded configuration (ttl 7)", func() bool {
		return regexp.MustCompile(`(?m)^_vlmcs\._tcp\.example\.test\.\s+7\s+IN\s+SRV`).MatchString(c.Dig(t, qname, "SRV"))
	})
	if s := srvSet(t, c, qname); len(s) != 1 {
		t.Fatalf("pool lost on reload: %v", s)
	}
}

// scrape fetches the server's /metrics.
func scrape(t *testing.T, c *harness.CoreDNS) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(c.Metrics) + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
