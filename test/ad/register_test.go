package ad

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/gsstsig"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/samba"
)

// TestResponderRegistersInADByGSSTSIG: kms-responder serve registers _vlmcs._tcp and its A
// record in the AD zone by GSS-TSIG with its own identity (a service account's keytab, no
// ticket cache), puts the record back when it disappears (refresh), and withdraws on stop; then
// does so next to its TSIG registration with CoreDNS.
func TestResponderRegistersInADByGSSTSIG(t *testing.T) {
	needDC(t)
	dir := t.TempDir()
	const account, pass = "kmsreg-svc", "Kmsdns-Svc-Pass-3!"
	if out, err := dc.Tool(context.Background(), "user", "add", account, pass); err != nil {
		t.Fatalf("samba-tool user add: %v\n%s", err, out)
	}
	kt := filepath.Join(dir, "kms.keytab")
	if out, err := dc.Tool(context.Background(), "domain", "exportkeytab", kt, "--principal="+account+"@"+samba.Realm); err != nil {
		t.Fatalf("exportkeytab: %v\n%s", err, out)
	}
	srv, target := "_vlmcs._tcp."+samba.Domain, "kmsreg."+samba.Domain
	port := harness.FreePort(t)
	h := &kmsHost{Port: port}
	h.Process = harness.Start(t, dir, harness.ProcessBinary(t, "kms-responder"), "serve",
		"--listen", h.Addr(), "--data", filepath.Join(dir, "data"), "--metrics", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)),
		"--drain", "0s", "--log-format", "text", "--group", "windows-server-2025",
		"--dns-server", dc.DNSAddr(), "--zone", samba.Domain, "--target", "kmsreg", "--port", strconv.Itoa(port),
		"--lease", "6s", "--check-interval", "1s",
		"--gss-tsig", "--krb5-keytab", kt, "--krb5-principal", account+"@"+samba.Realm)
	registered := func() bool {
		for _, s := range lookup(t, srv, dns.TypeSRV) {
			if strings.HasSuffix(s, " "+strconv.Itoa(port)+" "+target+".") {
				return true
			}
		}
		return false
	}
	harness.Eventually(t, 20*time.Second, "the responder's SRV in AD", func() bool {
		if h.Exited() {
			t.Fatalf("kms-responder exited:\n%s", h.Output())
		}
		return registered()
	})
	if got := lookup(t, target, dns.TypeA); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("A of %s = %q, want 127.0.0.1", target, got)
	}

	// Removed behind its back (an administrator, a scavenging DC), it comes back.
	cl, err := gsstsig.Credentials{}.Client()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gsstsig.Negotiate(context.Background(), cl, dc.DNSAddr(), samba.DCName, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	del := new(dns.Msg)
	del.SetUpdate(samba.Domain + ".")
	rr, _ := dns.NewRR(srv + ". 600 IN SRV 0 100 " + strconv.Itoa(port) + " " + target + ".")
	del.Remove([]dns.RR{rr})
	if r, err := c.Exchange(context.Background(), del, dc.DNSAddr(), 5*time.Second); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("deleting the record as administrator: %v %v", r, err)
	}
	harness.Eventually(t, 20*time.Second, "the responder to register again", registered)

	// Stopped, it withdraws.
	h.Stop()
	if registered() {
		t.Errorf("the SRV record is still in AD after the responder stopped:\n%s", h.Output())
	}

	// Next to a TSIG registration with CoreDNS (the resolver shape's publish zone), the same
	// host registers in AD by GSS-TSIG (--ad-dns-server, --ad-zone), and withdraws from both.
	const secret = "ZHVhbC1yZWdpc3RyYXRpb24tdGVzdC1rZXktMzJieXRlcw=="
	pub := "dual." + samba.Domain
	cd := harness.StartCoreDNS(t, fmt.Sprintf(`%[1]s:{{PORT}} {
	bind 127.0.0.1
	vlmcs %[1]s {
		approve kmsreg.%[1]s 127.0.0.0/8
		ports 1024-65535
		key kms-key. %[2]s
		grant kms-key. kmsreg.%[1]s
		probe 500ms 500ms 2 1
		ttl 1
	}
}
`, pub, secret))
	key := harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kms-key.:"+secret+"\n")
	dual := &kmsHost{Port: port}
	dual.Process = harness.Start(t, dir, harness.ProcessBinary(t, "kms-responder"), "serve",
		"--listen", dual.Addr(), "--data", filepath.Join(dir, "data"), "--metrics", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)),
		"--drain", "0s", "--log-format", "text", "--group", "windows-server-2025",
		"--dns-server", cd.Addr(), "--zone", pub, "--tsig-key-file", key, "--target", "kmsreg", "--port", strconv.Itoa(port),
		"--gss-tsig", "--krb5-keytab", kt, "--krb5-principal", account+"@"+samba.Realm,
		"--ad-dns-server", dc.DNSAddr(), "--ad-zone", samba.Domain)
	inCoreDNS := func() bool {
		got := srvTargets(t, cd.Addr(), pub)
		return len(got) == 1 && got[0] == "kmsreg."+pub+".:"+strconv.Itoa(port)
	}
	harness.Eventually(t, 20*time.Second, "the responder in CoreDNS (TSIG) and in AD (GSS-TSIG)", func() bool {
		if dual.Exited() {
			t.Fatalf("kms-responder exited:\n%s", dual.Output())
		}
		return registered() && inCoreDNS()
	})
	dual.Stop()
	if registered() || len(srvTargets(t, cd.Addr(), pub)) != 0 {
		t.Errorf("after stop: in AD %v, in CoreDNS %q; want withdrawn from both\n%s", registered(), srvTargets(t, cd.Addr(), pub), dual.Output())
	}
}
