package test

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestDualStackRegistration: a responder on IPv4 and IPv6 loopback registers both addresses
// over IPv6 with nsupdate; the answer carries A and AAAA glue and the member is probed.
func TestDualStackRegistration(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1 ::1
	vlmcs {
		approve kms1.example.test 127.0.0.0/8 ::1
		ports 1024-65535 # KMS ports picked at run time
		key kms1-key. `+secret1+`
		grant kms1-key. kms1.example.test
		probe 100ms 200ms 2 1
		all_down none
	}
}
`)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	testkit.StartKMS(t, net.JoinHostPort("::1", strconv.Itoa(kms.Port)))
	script := fmt.Sprintf(`server ::1 %d
zone example.test
update delete kms1.example.test A
update delete kms1.example.test AAAA
update add kms1.example.test 60 AAAA ::1
update add kms1.example.test 60 A 127.0.0.1
update add _vlmcs._tcp.example.test 60 SRV 0 0 %d kms1.example.test`, c.Port, kms.Port)
	// NSUpdate prepends a `server 127.0.0.1` line; the later one wins.
	if code, out := c.NSUpdate(t, script, keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("dual-stack registration over IPv6: exit %d %q", code, out)
	}
	harness.Eventually(t, 3*time.Second, "dual-stack member served", func() bool {
		return srvSet(t, c, "_vlmcs._tcp.example.test")["kms1.example.test.:"+strconv.Itoa(kms.Port)]
	})
	out := c.Dig(t, "_vlmcs._tcp.example.test", "SRV")
	for _, re := range []string{`(?m)^kms1\.example\.test\.\s+\d+\s+IN\s+A\s+127\.0\.0\.1$`, `(?m)^kms1\.example\.test\.\s+\d+\s+IN\s+AAAA\s+::1$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("glue %s missing:\n%s", re, out)
		}
	}
}
