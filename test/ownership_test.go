package test

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
)

// ownershipCorefile: any loopback machine may update unsigned; the hosts plugin behind vlmcs
// stands in for Active Directory: victim is 127.0.0.2, attacker 127.0.0.1, and fileserver (no
// KMS host) 127.0.0.3. fs-key may register any name at any address.
const ownershipCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve *.example.test 127.0.0.0/8
		unsigned 127.0.0.0/8
		key fs-key. ` + secret2 + `
		grant fs-key. *.example.test
		any_address fs-key.
		probe off
	}
	hosts {
		127.0.0.2 victim.example.test
		127.0.0.1 attacker.example.test
		127.0.0.3 fileserver.example.test
	}
}
`

// unsignedFrom runs an unsigned nsupdate over TCP from source address src.
func unsignedFrom(t *testing.T, c *harness.CoreDNS, src, script string) (int, string) {
	t.Helper()
	return c.NSUpdate(t, "local "+src+"\nzone example.test\n"+script, "-v")
}

// digShort returns dig +short's lines for name and type.
func digShort(t *testing.T, c *harness.CoreDNS, args ...string) []string {
	t.Helper()
	return strings.Fields(c.Dig(t, append(args, "+short")...))
}

// TestUnsignedOwnsOnlyItsDirectoryName: an unsigned sender may add or remove
// addresses, or withdraw a member, only at a name the directory behind vlmcs resolves to it;
// what the same update adds proves nothing; the genuine host's refresh is never locked out;
// and vlmcs never answers A for a name another plugin answers.
func TestUnsignedOwnsOnlyItsDirectoryName(t *testing.T) {
	c := harness.StartCoreDNS(t, ownershipCorefile)
	const srvName = "_vlmcs._tcp.example.test"
	victimSRV := "update add " + srvName + " 60 SRV 0 0 1688 victim.example.test"
	if code, out := unsignedFrom(t, c, "127.0.0.2", victimSRV); code != 0 {
		t.Fatalf("the genuine host's own SRV: exit %d %q", code, out)
	}
	for _, tc := range []struct{ what, script string }{
		{"an address at the victim's name", "update add victim.example.test 60 A 127.0.0.1"},
		{"the victim's SRV with the attacker's address", "update add victim.example.test 60 A 127.0.0.1\n" + victimSRV},
		{"the victim's withdraw", "update delete " + srvName + " SRV 0 0 1688 victim.example.test"},
		{"the victim's addresses deleted", "update delete victim.example.test A"},
		{"a non-KMS name", "update add fileserver.example.test 60 A 127.0.0.1\nupdate add " + srvName + " 60 SRV 0 0 1688 fileserver.example.test"},
		{"a name the directory lacks", "update add new.example.test 60 A 127.0.0.1\nupdate add " + srvName + " 60 SRV 0 0 1688 new.example.test"},
	} {
		if code, out := unsignedFrom(t, c, "127.0.0.1", tc.script); code == 0 || !strings.Contains(out, "REFUSED") {
			t.Errorf("attacker: %s: exit %d %q, want REFUSED", tc.what, code, out)
		}
	}
	if code, out := unsignedFrom(t, c, "127.0.0.2", victimSRV); code != 0 {
		t.Errorf("the genuine host's SRV-only refresh: exit %d %q", code, out)
	}
	if code, out := unsignedFrom(t, c, "127.0.0.1", "update add "+srvName+" 60 SRV 0 0 1688 attacker.example.test"); code != 0 {
		t.Errorf("the attacker's own name: exit %d %q", code, out)
	}
	if s := srvSet(t, c, srvName); len(s) != 2 || !s["victim.example.test.:1688"] || !s["attacker.example.test.:1688"] {
		t.Errorf("served: %v, want victim and attacker", s)
	}
	if got := digShort(t, c, "victim.example.test", "A"); len(got) != 1 || got[0] != "127.0.0.2" {
		t.Errorf("victim A: %v, want the directory's 127.0.0.2", got)
	}
	glue := c.Dig(t, srvName, "SRV")
	if !strings.Contains(glue, "victim.example.test.\t2\tIN\tA\t127.0.0.2") || strings.Contains(glue, "victim.example.test.\t2\tIN\tA\t127.0.0.1") {
		t.Errorf("glue for victim is not the directory's address alone:\n%s", glue)
	}

	// A key granted every name registers fileserver: the directory still answers for it. A
	// KMS name only vlmcs holds is answered by vlmcs.
	reg := func(name, ip string) {
		t.Helper()
		if code, out := c.NSUpdate(t, registerScript(name, ip, 1688), keyArg("fs-key.", secret2)...); code != 0 {
			t.Fatalf("fs-key registering %s: exit %d %q", name, code, out)
		}
	}
	reg("fileserver.example.test", "127.0.0.9")
	reg("kms1.example.test", "127.0.0.8")
	if got := digShort(t, c, "fileserver.example.test", "A"); len(got) != 1 || got[0] != "127.0.0.3" {
		t.Errorf("fileserver A: %v, want the directory's 127.0.0.3", got)
	}
	if out := c.Dig(t, "kms1.example.test", "A"); !strings.Contains(out, "flags: qr aa") || !strings.Contains(out, "127.0.0.8") {
		t.Errorf("kms1 A (registered with a key, absent from the directory) not answered by vlmcs:\n%s", out)
	}
	if n := metricLine(scrape(t, c), "coredns_vlmcs_updates_total", `reason="foreign-target"`); n != 6 {
		t.Errorf("foreign-target refusals counted: %v, want 6", n)
	}
}

// TestReplayWindowIsTheVerifiers: a signed update whose fudge is rewritten to 0,
// which miekg/dns verifies as fudge 300, is remembered for those 300 s: replayed seconds later
// it is refused.
func TestReplayWindowIsTheVerifiers(t *testing.T) {
	c := harness.StartCoreDNS(t, ownershipCorefile)
	m := new(dns.Msg)
	m.SetUpdate("example.test.")
	m.Ns = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "kms5.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)}}
	// Signed 2 s ago with fudge 0: outside a 1-second memory, inside the 300 s the verifier
	// allows. (Not before the server started: that is refused as before-start.)
	time.Sleep(3 * time.Second)
	b := signWire(t, m, "fs-key.", secret2, dns.HmacSHA256, time.Now().Unix()-2, 300)
	// Fudge rewritten to 0 on the wire: miekg/dns verifies the MAC with 0 read as 300.
	b = rewire(t, b, func(m *dns.Msg) { m.IsTsig().Fudge = 0 })
	if r := exchangeRaw(t, c.Addr(), "tcp", b); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("fudge 0 update: %s", dns.RcodeToString[r.Rcode])
	}
	for i := range 3 {
		if r := exchangeRaw(t, c.Addr(), "tcp", b); r.Rcode != dns.RcodeRefused {
			t.Fatalf("replay %d of a fudge 0 update: %s, want REFUSED", i+1, dns.RcodeToString[r.Rcode])
		}
	}
	if n := metricLine(scrape(t, c), "coredns_vlmcs_updates_total", `reason="replay"`); n != 3 {
		t.Errorf("replays counted: %v, want 3", n)
	}
}

// floodCorefile: two keys, each granted its own host.
const floodCorefile = `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve *.example.test 127.0.0.0/8
		key kms1-key. ` + secret1 + `
		grant kms1-key. kms1.example.test
		key kms2-key. ` + secret2 + `
		grant kms2-key. kms2.example.test
		unsigned 127.0.0.0/8
		probe off
	}
	hosts {
		127.0.0.1 win1.example.test
	}
}
`

// TestReplayMemoryCannotBeFlushed: a key holder sending more signed updates than
// its quota of remembered MACs is refused (replay-full) rather than evicting unexpired MACs: a
// withdraw of kms2 captured before the flood is still refused as a replay after it, and kms2's
// key keeps working.
func TestReplayMemoryCannotBeFlushed(t *testing.T) {
	c := harness.StartCoreDNS(t, floodCorefile)
	for _, k := range []struct{ name, key, secret string }{{"kms1", "kms1-key.", secret1}, {"kms2", "kms2-key.", secret2}} {
		if code, out := c.NSUpdate(t, registerScript(k.name+".example.test", "127.0.0.1", 1688), keyArg(k.key, k.secret)...); code != 0 {
			t.Fatalf("%s: exit %d %q", k.name, code, out)
		}
	}
	w := new(dns.Msg)
	w.SetUpdate("example.test.")
	w.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: 1688, Target: "kms2.example.test."}}
	captured := signWire(t, w, "kms2-key.", secret2, dns.HmacSHA256, time.Now().Unix(), 300)
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("withdraw: %s", dns.RcodeToString[r.Rcode])
	}
	if code, out := c.NSUpdate(t, registerScript("kms2.example.test", "127.0.0.1", 1688), keyArg("kms2-key.", secret2)...); code != 0 {
		t.Fatalf("kms2 again: exit %d %q", code, out)
	}

	// kms1-key floods empty signed updates over one connection, past its quota of 8192
	// remembered MACs (one of which its registration above holds).
	conn, err := dns.DialTimeout("tcp", c.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const flood = 8192 + 100
	refused, start := 0, time.Now()
	var last *dns.Msg
	buf := make([]byte, dns.MaxMsgSize)
	for i := range flood {
		m := new(dns.Msg)
		m.SetUpdate("example.test.")
		m.Id = uint16(i) // distinct messages: a repeated ID within one second would be a replay
		m.SetEdns0(1232, false)
		b := signWire(t, m, "kms1-key.", secret1, dns.HmacSHA256, time.Now().Unix(), 300)
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write(b); err != nil {
			t.Fatalf("flood update %d: %v", i, err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("flood response %d: %v", i, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatalf("flood response %d: %v", i, err)
		}
		if r.Rcode == dns.RcodeRefused {
			refused++
			last = r
		}
	}
	t.Logf("%d empty signed updates in %v, %d refused", flood, time.Since(start).Round(time.Millisecond), refused)
	if refused != 101 {
		t.Errorf("%d of %d flood updates refused, want the 101 beyond the quota", refused, flood)
	}
	if last == nil || !strings.Contains(fmt.Sprint(last.Extra), "replay-full") {
		t.Errorf("refusal does not say replay-full: %v", last)
	}
	if r := exchangeRaw(t, c.Addr(), "tcp", captured); r.Rcode != dns.RcodeRefused {
		t.Errorf("captured withdraw after the flood: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); !s["kms2.example.test.:1688"] || !s["kms1.example.test.:1688"] {
		t.Errorf("served after the flood: %v, want kms1 and kms2", s)
	}
	if code, out := c.NSUpdate(t, registerScript("kms2.example.test", "127.0.0.1", 1688), keyArg("kms2-key.", secret2)...); code != 0 {
		t.Errorf("kms2-key after kms1-key's flood: exit %d %q", code, out)
	}
}

// TestAddressNamesCountTowardLimits: member_limit bounds the names with addresses
// a key or an unsigned sender holds, not only SRV members: one update with 1024 A-only names,
// signed or unsigned, is refused and cannot fill the host table for everyone else.
func TestAddressNamesCountTowardLimits(t *testing.T) {
	c := harness.StartCoreDNS(t, strings.Replace(ownershipCorefile, "\t\tprobe off\n", "\t\tprobe off\n\t\tkey kms1-key. "+secret1+"\n\t\tgrant kms1-key. kms1.example.test\n", 1))
	names := func(n int) []dns.RR {
		var rrs []dns.RR
		for i := range n {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("h%d.example.test.", i), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
		}
		return rrs
	}
	m := new(dns.Msg)
	m.SetUpdate("example.test.")
	m.Ns = names(1024)
	cl := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := cl.Exchange(m.Copy(), c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeRefused {
		t.Errorf("unsigned update with 1024 A-only names: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if rc := signedUpdate(t, c, m.Copy(), "fs-key.", secret2); rc != dns.RcodeRefused {
		t.Errorf("signed update with 1024 A-only names: %s, want REFUSED", dns.RcodeToString[rc])
	}
	m.Ns = names(64) // member_limit's default per key
	if rc := signedUpdate(t, c, m.Copy(), "fs-key.", secret2); rc != dns.RcodeSuccess {
		t.Errorf("signed update with 64 A-only names: %s", dns.RcodeToString[rc])
	}
	m.Ns = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "h64.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)}}
	if rc := signedUpdate(t, c, m.Copy(), "fs-key.", secret2); rc != dns.RcodeRefused {
		t.Errorf("a 65th name for the key: %s, want REFUSED", dns.RcodeToString[rc])
	}
	if n := metricLine(scrape(t, c), "coredns_vlmcs_updates_total", `reason="member-limit"`); n != 3 {
		t.Errorf("member-limit refusals counted: %v, want 3", n)
	}
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", 1688), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Errorf("another key's registration: exit %d %q", code, out)
	}
}

// TestReloadDropsOrphans: a reload that removes a key's grant, or an unsigned
// sender's network, drops what they registered at once; the rest stays.
func TestReloadDropsOrphans(t *testing.T) {
	c := harness.StartCoreDNS(t, floodCorefile)
	for _, k := range []struct{ name, key, secret string }{{"kms1", "kms1-key.", secret1}, {"kms2", "kms2-key.", secret2}} {
		if code, out := c.NSUpdate(t, registerScript(k.name+".example.test", "127.0.0.1", 1688), keyArg(k.key, k.secret)...); code != 0 {
			t.Fatalf("%s: exit %d %q", k.name, code, out)
		}
	}
	if code, out := unsignedFrom(t, c, "127.0.0.1", "update add _vlmcs._tcp.example.test 60 SRV 0 0 1688 win1.example.test"); code != 0 {
		t.Fatalf("unsigned win1: exit %d %q", code, out)
	}
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); len(s) != 3 {
		t.Fatalf("served before the reload: %v", s)
	}
	changed := strings.Replace(floodCorefile, "\t\tkey kms2-key. "+secret2+"\n\t\tgrant kms2-key. kms2.example.test\n", "", 1)
	changed = strings.Replace(changed, "unsigned 127.0.0.0/8", "unsigned 10.0.0.0/8", 1)
	c.WriteCorefile(t, changed)
	if err := c.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "kms2 and win1 dropped", func() bool {
		s := srvSet(t, c, "_vlmcs._tcp.example.test")
		return len(s) == 1 && s["kms1.example.test.:1688"]
	})
	if got := digShort(t, c, "kms2.example.test", "A"); len(got) != 0 {
		t.Errorf("kms2 A after its key's grant was removed: %v", got)
	}
	if got := digShort(t, c, "kms1.example.test", "A"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("kms1 A after the reload: %v", got)
	}
}

// TestKeyBoundToAlgorithm: a key signs only with the algorithm it was defined
// with (key file or Corefile); the same secret under another algorithm is NOTAUTH BADKEY.
func TestKeyBoundToAlgorithm(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve *.example.test 127.0.0.0/8
		keyfile {{DIR}}/kms1.key
		grant kms1-key. kms1.example.test
		key kms2-key. `+secret2+`
		grant kms2-key. kms2.example.test
		key kms3-key. `+secret2+` hmac-sha384
		grant kms3-key. kms3.example.test
		probe off
	}
}
`, harness.File{Name: "kms1.key", Content: "key \"kms1-key\" {\n\talgorithm hmac-sha512;\n\tsecret \"" + secret1 + "\";\n};\n"})
	for _, tc := range []struct {
		name, alg, key, secret string
		ok                     bool
	}{
		{"kms1", "hmac-sha512", "kms1-key.", secret1, true},
		{"kms1", "hmac-sha256", "kms1-key.", secret1, false},
		{"kms1", "hmac-sha1", "kms1-key.", secret1, false},
		{"kms2", "hmac-sha256", "kms2-key.", secret2, true},
		{"kms2", "hmac-sha512", "kms2-key.", secret2, false},
		{"kms3", "hmac-sha384", "kms3-key.", secret2, true},
		{"kms3", "hmac-sha256", "kms3-key.", secret2, false},
	} {
		code, out := c.NSUpdate(t, registerScript(tc.name+".example.test", "127.0.0.1", 1688), "-y", tc.alg+":"+tc.key+":"+tc.secret)
		if tc.ok && code != 0 {
			t.Errorf("%s signed with its own algorithm %s: exit %d %q", tc.key, tc.alg, code, out)
		}
		if !tc.ok && (code == 0 || !strings.Contains(out, "NOTAUTH")) {
			t.Errorf("%s signed with %s: exit %d %q, want NOTAUTH", tc.key, tc.alg, code, out)
		}
	}
	if n := metricLine(scrape(t, c), "coredns_vlmcs_updates_total", `reason="tsig-badkey"`, `result="NOTAUTH"`); n != 4 {
		t.Errorf("tsig-badkey refusals counted: %v, want 4", n)
	}
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); len(s) != 3 {
		t.Errorf("served: %v, want kms1, kms2 and kms3", s)
	}
}
