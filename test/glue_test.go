package test

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"
)

// glueCorefile publishes example.test and scrubs corp.test, whose records come from a file
// zone (standing in for the AD zone) that names the registered kms1.example.test without glue.
const glueCorefile = `example.test:{{PORT}} corp.test:{{PORT}} {
	bind 127.0.0.1
	errors
	vlmcs {
		approve kms1.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms-key. ` + secret1 + `
		grant kms-key. kms1.example.test
		lease 1h 2s 1h
		scrub corp.test
		probe 200ms 300ms 2 1
		all_down none
		ttl 1
	}
	file {{DIR}}/db.corp corp.test
}
`

const corpZone = `$ORIGIN corp.test.
@	3600 IN SOA ns1 hostmaster 1 3600 600 86400 60
@	3600 IN NS ns1
ns1	3600 IN A 127.0.0.1
_vlmcs._tcp 600 IN SRV 0 0 PORT kms1.example.test.
`

// addrLine matches an A record of kms1.example.test at a loopback address in dig output.
var addrLine = regexp.MustCompile(`(?m)^kms1\.example\.test\.\s+\d+\s+IN\s+A\s+127\.\d+\.\d+\.\d+$`)

func TestGlueForRegisteredTarget(t *testing.T) {
	port := harness.FreePort(t)
	c := harness.StartCoreDNS(t, glueCorefile, harness.File{Name: "db.corp", Content: strings.Replace(corpZone, "PORT", strconv.Itoa(port), 1)})

	// Before registration the name is unknown to the pool and not answered from it.
	if out := c.Dig(t, "kms1.example.test", "A"); addrLine.MatchString(out) {
		t.Fatalf("kms1.example.test answered before any registration:\n%s", out)
	}

	dir := t.TempDir()
	harness.WriteFile(t, dir, "tsig.key", "hmac-sha256:kms-key.:"+secret1+"\n")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := harness.Start(t, dir, harness.Binary(t, "kms-responder"), "serve", "--listen", addr,
		"--data", filepath.Join(dir, "data"), "--metrics", "", "--drain", "0s", "--log-format", "text",
		"--group", "office-ltsc-2024",
		"--dns-server", c.Addr(), "--zone", "example.test", "--target", "kms1",
		"--port", strconv.Itoa(port), "--lease", "30s", "--tsig-key-file", filepath.Join(dir, "tsig.key"))
	member := "kms1.example.test.:" + strconv.Itoa(port)
	harness.Eventually(t, 10*time.Second, "the responder's registration", func() bool {
		if r.Exited() {
			t.Fatalf("responder exited:\n%s", r.Output())
		}
		return srvSet(t, c, "_vlmcs._tcp.example.test")[member]
	})

	out := c.Dig(t, "kms1.example.test", "A")
	if !addrLine.MatchString(out) || !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, " aa") {
		t.Errorf("A query for the registered target not answered authoritatively:\n%s", out)
	}

	out = c.Dig(t, "_vlmcs._tcp.corp.test", "SRV")
	if !strings.Contains(out, "kms1.example.test.") {
		t.Fatalf("scrub-zone answer lost the approved target:\n%s", out)
	}
	_, additional, _ := strings.Cut(out, ";; ADDITIONAL SECTION:")
	if !addrLine.MatchString(additional) {
		t.Errorf("scrub-zone answer carries no glue for kms1.example.test:\n%s", out)
	}

	rep := runClient(t, "discover", "--dns", c.Addr(), "--domain", "corp.test", "--product", officeLTSC2024)
	if !rep.answered() || !strings.HasSuffix(rep.Server, "("+addr+")") && !strings.Contains(rep.Server, strconv.Itoa(port)) {
		t.Errorf("discover through corp.test did not reach the responder (exit %d, server %q):\n%s", rep.code, rep.Server, rep.raw)
	}
}
