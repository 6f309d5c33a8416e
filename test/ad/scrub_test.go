package ad

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/samba"
)

// srvTargets asks addr for _vlmcs._tcp.domain and returns "target:port" of every SRV answer.
func srvTargets(t *testing.T, addr, domain string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("_vlmcs._tcp."+domain+".", dns.TypeSRV)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("SRV query at %s: %v", addr, err)
	}
	var out []string
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, s.Target+":"+strconv.Itoa(int(s.Port)))
		}
	}
	return out
}

// TestScrubOnlyHidesTheDCsRogue: CoreDNS in the scrub-only shape forwards to the DC, which
// keeps publishing every _vlmcs._tcp record; vlmcs removes the rogue workstation's, and a
// Windows-like discovery through it lands on the approved host where, asking the DC directly,
// it lands on the rogue.
func TestScrubOnlyHidesTheDCsRogue(t *testing.T) {
	l := startLab(t, "scrub")
	direct := srvTargets(t, dc.DNSAddr(), l.Domain)
	if len(direct) != 2 {
		t.Fatalf("the DC publishes %q, want kms1 and pc42", direct)
	}
	// The premise: a client of the DC tries the rogue first (it refuses Windows Server, and
	// the client moves on).
	if r, out := discover(t, dc.DNSAddr(), l.Domain); len(r.Attempts) == 0 || !strings.HasPrefix(r.Attempts[0].Target, "pc42.") {
		t.Fatalf("discovery at the DC itself did not try the rogue pc42 first:\n%s", out)
	}

	c := harness.StartCoreDNS(t, fmt.Sprintf(`%[1]s:{{PORT}} {
	bind 127.0.0.1
	errors
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs %[1]s {
		approve kms1.%[1]s 127.0.0.0/8
		ports 1024-65535
		scrub %[1]s
		probe 500ms 500ms 2 1
	}
	forward . %[2]s
}
`, l.Domain, samba.DCAddr))
	want := []string{l.Name("kms1") + ".:" + strconv.Itoa(l.KMS1.Port)}
	if got := srvTargets(t, c.Addr(), l.Domain); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("SRV through vlmcs = %q, want %q", got, want)
	}
	if r, out := discover(t, c.Addr(), l.Domain); !strings.HasPrefix(r.Server, "kms1.") || len(r.Attempts) != 1 {
		t.Errorf("discovery through vlmcs landed on %q after %d attempt(s), want kms1 at once:\n%s", r.Server, len(r.Attempts), out)
	}
	// The rest of the domain still resolves through the DC.
	if got := c.Dig(t, "+short", l.Name("pc42"), "A"); strings.TrimSpace(got) != "127.0.0.1" {
		t.Errorf("pc42's A through CoreDNS = %q, want the DC's 127.0.0.1", got)
	}
	if !strings.Contains(c.Output(), "scrubbed rogue KMS host "+l.Name("pc42")) {
		t.Errorf("CoreDNS did not log the scrubbed rogue:\n%s", c.Output())
	}
}

// TestResolverShapeAnswersOnlyRegisteredHosts: CoreDNS in the resolver shape answers
// _vlmcs._tcp from the kms-responder that registered with it by TSIG and forwards every other
// name to the DC: the rogue the DC publishes never reaches a client.
func TestResolverShapeAnswersOnlyRegisteredHosts(t *testing.T) {
	l := startLab(t, "resolver")
	const secret = "cmVzb2x2ZXItc2hhcGUtdGVzdC1rZXktMzItYnl0ZXMh"
	c := harness.StartCoreDNS(t, fmt.Sprintf(`%[1]s:{{PORT}} {
	bind 127.0.0.1
	errors
	vlmcs %[1]s {
		approve kms1.%[1]s kms2.%[1]s 127.0.0.0/8
		ports 1024-65535
		key kms-key. %[3]s
		grant kms-key. kms2.%[1]s
		lease 1m 30s 1h
		probe 500ms 500ms 2 1
		ttl 1
	}
	forward . %[2]s
}
`, l.Domain, samba.DCAddr, secret))
	dir := t.TempDir()
	key := harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kms-key.:"+secret+"\n")
	port := harness.FreePort(t)
	kms2 := startKMSAt(t, port, "--group", "windows-server-2025", "--dns-server", c.Addr(), "--zone", l.Domain,
		"--target", "kms2", "--port", strconv.Itoa(port), "--lease", "1m", "--tsig-key-file", key)
	want := l.Name("kms2") + ".:" + strconv.Itoa(kms2.Port)
	harness.Eventually(t, 15*time.Second, "kms2 registered and healthy", func() bool {
		got := srvTargets(t, c.Addr(), l.Domain)
		return len(got) == 1 && got[0] == want
	})
	if r, out := discover(t, c.Addr(), l.Domain); !strings.HasPrefix(r.Server, "kms2.") {
		t.Errorf("discovery through vlmcs landed on %q, want kms2:\n%s", r.Server, out)
	}
	if got := c.Dig(t, "+short", l.Name("pc42"), "A"); strings.TrimSpace(got) != "127.0.0.1" {
		t.Errorf("pc42's A through CoreDNS = %q, want the DC's 127.0.0.1", got)
	}
}

// TestAuditAndDoctorAgainstTheDC: audit asks the DC and classifies the rogue workstation
// (healthy kms1, rogue pc42); doctor, as a client of the DC, meets the rogue, and as a client
// of vlmcs activates on kms1 without meeting it.
func TestAuditAndDoctorAgainstTheDC(t *testing.T) {
	l := startLab(t, "audit")
	code, out, errOut := runKMS(t, nil, "audit", "--probe-loopback", "--ports", "1024-65535", "--dns", dc.DNSAddr(), "--domain", l.Domain, "--approve", l.Name("kms1"), "--json")
	var rep auditReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit: exit %d, no JSON (%v):\n%s%s", code, err, out, errOut)
	}
	got := rep.classes(l.Domain)
	if code != 3 || got["kms1"] != "healthy" || got["pc42"] != "rogue" || len(got) != 2 {
		t.Errorf("audit of the DC: exit %d, classes %v; want exit 3, kms1 healthy and pc42 rogue\n%s", code, got, errOut)
	}

	// doctor, as a client of the DC, is sent to the rogue first.
	_, out, _ = runKMS(t, nil, "doctor", "--dns", dc.DNSAddr(), "--domain", l.Domain, "--product", windowsServer, "--n-policy", "1", "--json")
	if !strings.Contains(out, "pc42."+l.Domain) {
		t.Errorf("doctor at the DC did not meet the rogue pc42:\n%s", out)
	}
	c := harness.StartCoreDNS(t, fmt.Sprintf(`%[1]s:{{PORT}} {
	bind 127.0.0.1
	vlmcs %[1]s {
		approve kms1.%[1]s 127.0.0.0/8
		ports 1024-65535
		scrub %[1]s
	}
	forward . %[2]s
}
`, l.Domain, samba.DCAddr))
	code, out, _ = runKMS(t, nil, "doctor", "--dns", c.Addr(), "--domain", l.Domain, "--product", windowsServer, "--n-policy", "1", "--json")
	if code != 0 || strings.Contains(out, "pc42") || !strings.Contains(out, "kms1."+l.Domain) {
		t.Errorf("doctor through vlmcs: exit %d, want 0, activated on kms1 without meeting pc42:\n%s", code, out)
	}
}
