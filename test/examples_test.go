package test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
)

// adStandIn is the AD DNS of the deployment examples: corp.example with a rogue and a genuine
// _vlmcs._tcp record and an ordinary host, and example.net for "everything else".
func adStandIn(t *testing.T, genuinePort int) *harness.CoreDNS {
	t.Helper()
	zone := fmt.Sprintf(`$ORIGIN corp.example.
@	3600	IN	SOA	dc1 hostmaster 1 7200 3600 1209600 30
@	3600	IN	NS	dc1
dc1	3600	IN	A	127.0.0.1
www	3600	IN	A	127.0.0.80
kms1	3600	IN	A	127.0.0.1
_vlmcs._tcp	600	IN	SRV	0 0 %d kms1
_vlmcs._tcp	600	IN	SRV	0 0 1688 rogue-pc
rogue-pc	600	IN	A	127.0.0.9
`, genuinePort)
	net := "$ORIGIN example.net.\n@ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 30\n@ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\nwww 3600 IN A 127.0.0.81\n"
	return harness.StartCoreDNS(t, "corp.example:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.corp\n}\nexample.net:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.net\n}\n",
		harness.File{Name: "db.corp", Content: zone}, harness.File{Name: "db.net", Content: net})
}

// startExample runs the shipped Corefile build/examples/NAME with its environment set for
// loopback, and returns the server and the TSIG secret its key file holds.
func startExample(t *testing.T, name string, ad *harness.CoreDNS) (*harness.CoreDNS, string) {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	corefile, err := os.ReadFile(filepath.Join(root, "build", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	c := &harness.CoreDNS{Dir: t.TempDir(), Port: harness.FreePort(t)}
	secret := "c2VjcmV0LWZvci10aGUtZXhhbXBsZXMtdGVzdC0wMTIzNDU2Nzg5YWI="
	// The key reaches CoreDNS as systemd's LoadCredential= hands it over: vlmcs.keys in
	// $CREDENTIALS_DIRECTORY, which the Corefiles name.
	creds := filepath.Join(c.Dir, "credentials")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	keyfile := harness.WriteFile(t, creds, "vlmcs.keys", "key \"kmsdns-key.\" {\n\talgorithm hmac-sha256;\n\tsecret \""+secret+"\";\n};\n")
	if err := os.Chmod(keyfile, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"KMSDNS_DNS_ADDR": "127.0.0.1", "KMSDNS_DNS_PORT": strconv.Itoa(c.Port), "KMSDNS_AD_DNS": ad.Addr(),
		"KMSDNS_KMS_NETWORK": "127.0.0.0/8", "KMSDNS_METRICS_ADDR": "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
		"CREDENTIALS_DIRECTORY": creds, "STATE_DIRECTORY": c.Dir,
	} {
		t.Setenv(k, v)
	}
	harness.WriteFile(t, c.Dir, "Corefile", string(corefile))
	c.Process = harness.Start(t, c.Dir, harness.Binary(t, "coredns"), "-conf", "Corefile")
	c.WaitServing(t, 10*time.Second)
	return c, secret
}

// registerResponder starts kms-responder registering kms1.corp.example with c.
func registerResponder(t *testing.T, c *harness.CoreDNS, secret string) *harness.Process {
	t.Helper()
	dir := t.TempDir()
	key := harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kmsdns-key.:"+secret+"\n")
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	// The examples approve the KMS port only (vlmcs `ports` defaults to 1688), so the
	// responder listens on 1688 of a loopback address of its own.
	listen := freeKMSAddress(t)
	return harness.Start(t, dir, harness.Binary(t, "kms-responder"), "serve", "--group", "windows-server-2025",
		"--listen", listen, "--data", filepath.Join(dir, "data"), "--metrics", "",
		"--dns-server", c.Addr(), "--zone", "corp.example", "--target", "kms1", "--port", "1688",
		"--lease", "1m", "--tsig-key-file", key, "--drain", "0s")
}

// freeKMSAddress returns a loopback address whose port 1688 is free (127.0.0.10-250, so
// not the demo's), as "addr:1688".
func freeKMSAddress(t *testing.T) string {
	t.Helper()
	for i := 0; i < 50; i++ {
		addr := fmt.Sprintf("127.0.0.%d:1688", 10+rand.IntN(240))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no loopback address with port 1688 free")
	return ""
}

// answerA returns the A addresses the server answers for name (rcode name on failure).
func answerA(t *testing.T, addr, name string) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = true
	r, err := dns.Exchange(m, addr)
	if err != nil {
		return err.Error()
	}
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return strings.Join(out, " ")
}

// TestShippedCorefiles: every Corefile of build/examples starts as documented
// and does what its header says, against an AD stand-in and a real registering responder.
func TestShippedCorefiles(t *testing.T) {
	genuine := startKMSResponder(t, nil, "kms1", "", "windows-server-2025")

	t.Run("resolver", func(t *testing.T) {
		ad := adStandIn(t, genuine.Port)
		c, secret := startExample(t, "Corefile.resolver", ad)
		registerResponder(t, c, secret)
		harness.Eventually(t, 15*time.Second, "the registered responder in the SRV answer", func() bool {
			targets, err := srvTargetsIn(c.Addr(), "corp.example")
			return err == nil && len(targets) == 1 && anyHasPrefix(targets, "kms1.corp.example.:")
		})
		targets, _ := srvTargetsIn(c.Addr(), "corp.example")
		for tgt := range targets {
			if strings.Contains(tgt, "rogue-pc") || strings.Contains(tgt, fmt.Sprint(genuine.Port)) {
				t.Errorf("the publish zone answered AD's record %s", tgt)
			}
		}
		if got := answerA(t, c.Addr(), "www.corp.example"); got != "127.0.0.80" {
			t.Errorf("www.corp.example through the example: %q, want AD's 127.0.0.80", got)
		}
		if got := answerA(t, c.Addr(), "www.example.net"); got != "127.0.0.81" {
			t.Errorf("a name outside the AD domain: %q, want 127.0.0.81 through the DCs", got)
		}
	})

	t.Run("scrub-only", func(t *testing.T) {
		ad := adStandIn(t, genuine.Port)
		c, _ := startExample(t, "Corefile.scrub-only", ad)
		targets, err := srvTargetsIn(c.Addr(), "corp.example")
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != 1 || !anyHasPrefix(targets, "kms1.corp.example.:") {
			t.Errorf("scrubbed SRV answer %v, want only AD's approved kms1", targets)
		}
		if got := answerA(t, c.Addr(), "www.example.net"); got != "127.0.0.81" {
			t.Errorf("a name outside the AD domain: %q, want 127.0.0.81", got)
		}
	})

	t.Run("delegated", func(t *testing.T) {
		ad := adStandIn(t, genuine.Port)
		c, secret := startExample(t, "Corefile.delegated", ad)
		registerResponder(t, c, secret)
		harness.Eventually(t, 15*time.Second, "the registered responder in the SRV answer", func() bool {
			targets, err := srvTargetsIn(c.Addr(), "corp.example")
			return err == nil && len(targets) == 1 && anyHasPrefix(targets, "kms1.corp.example.:")
		})
	})
}

func anyHasPrefix(set map[string]bool, prefix string) bool {
	for s := range set {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
