package test

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// hostileText is what a hostile peer puts where a name or ePID belongs: a
// window-title OSC, clear-screen, the 8-bit CSI (U+009B), a bidi override
// and a zero-width space.
const hostileText = "\x1b]0;PWNED\x07\x1b[2J\u009b31m\u202eROGUE\u200b"

// controlSeqs are the raw characters that must never reach an operator.
var controlSeqs = []string{"\x1b", "\x07", "\u009b", "\u202e", "\u200b"}

// assertInert fails when out carries any raw control or format character.
func assertInert(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range controlSeqs {
		if strings.Contains(out, c) {
			t.Errorf("%s passes %q raw:\n%q", what, c, out)
		}
	}
}

// startHostileKMS runs a KMS host that answers every request properly,
// except that its ePID is hostileText: the real protocol (plugin/pkg/dcerpc,
// responder/kms), since the real kms-responder only serves valid ePIDs.
func startHostileKMS(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := dcerpc.NewServer(dcerpc.HandlerFunc(func(_ context.Context, _ netip.AddrPort, request []byte) ([]byte, uint32) {
		in, err := kms.ParseRequest(request)
		if err != nil {
			return nil, uint32(kms.ErrInvalidData)
		}
		out, err := in.AppendResponse(nil, &kms.Response{EPID: hostileText, CurrentCount: 50, ActivationInterval: 120, RenewalInterval: 10080}, rand.Reader)
		if err != nil {
			return nil, dcerpc.StatusCloseConnection
		}
		return out, 0
	}), dcerpc.ServerConfig{})
	go srv.Serve(context.Background(), ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPeerEPIDNeverReachesTheTerminalRaw: a KMS host whose ePID is a
// terminal escape sequence (with C1 CSI, bidi override and zero-width
// characters) is shown escaped by activate, audit (table and JSON), doctor
// and discover: the rogue cannot retitle the window, clear the screen or
// hide its own ROGUE line.
func TestPeerEPIDNeverReachesTheTerminalRaw(t *testing.T) {
	port := startHostileKMS(t)
	zone := fmt.Sprintf(`$ORIGIN hostile.test.
@           3600 IN SOA ns hostmaster 1 7200 3600 1209600 30
@           3600 IN NS  ns
ns          3600 IN A   127.0.0.1
kms         600  IN A   127.0.0.1
_vlmcs._tcp 600  IN SRV 0 0 %d kms
`, port)
	dns := harness.StartCoreDNS(t, "hostile.test:{{PORT}} {\n\tbind 127.0.0.1\n\tfile {{DIR}}/db.hostile.test\n}\n",
		harness.File{Name: "db.hostile.test", Content: zone})
	server := "127.0.0.1:" + strconv.Itoa(port)
	escaped := `\x1b]0;PWNED\x07\x1b[2J\u009b31m\u202eROGUE\u200b`

	_, out, errOut := runKMS(t, "", "activate", "--server", server, "--product", "Windows 10/11 Enterprise", "--cmid", "random")
	assertInert(t, "activate", out+errOut)
	if !strings.Contains(out, escaped) {
		t.Errorf("activate does not show the ePID escaped:\n%s%s", out, errOut)
	}
	// The test bed is on loopback at a run-time port: both must be allowed.
	audit := []string{"audit", "--probe-loopback", "--ports", "1024-65535", "--dns", dns.Addr(), "--domain", "hostile.test", "--approve", "kms1.example.test"}
	code, out, errOut := runKMS(t, "", audit...)
	assertInert(t, "audit", out+errOut)
	if code != 3 || !strings.Contains(out, "ROGUE:") || !strings.Contains(out, escaped) {
		t.Errorf("audit: exit %d, want 3 with the ROGUE group and the escaped ePID:\n%s%s", code, out, errOut)
	}
	_, out, _ = runKMS(t, "", append(audit, "--json")...)
	assertInert(t, "audit --json", out)
	a := parseAudit(t, out)
	if len(a.Findings) != 1 || len(a.Findings[0].Apps) == 0 || a.Findings[0].Apps[0].EPID != escaped {
		t.Errorf("audit --json: findings %+v, want the ePID stored escaped", a.Findings)
	}
	_, out, errOut = runKMS(t, "", "doctor", "--dns", dns.Addr(), "--domain", "hostile.test", "--product", "Windows 10/11 Enterprise")
	assertInert(t, "doctor", out+errOut)
	if !strings.Contains(out+errOut, escaped) {
		t.Errorf("doctor does not show the ePID escaped:\n%s%s", out, errOut)
	}
	_, out, errOut = runKMS(t, "", "discover", "--dns", dns.Addr(), "--domain", "hostile.test", "--product", "Windows 10/11 Enterprise")
	assertInert(t, "discover", out+errOut)
	if !strings.Contains(out, escaped) {
		t.Errorf("discover does not show the ePID escaped:\n%s%s", out, errOut)
	}
}

// TestWorkstationNamesAreInert: workstation names a client chooses (a CSV
// formula, an OSC title sequence, a newline forging a table row, a bidi
// override) are escaped once where they enter the host, so the JSON, the
// CSV export (formula cells neutralized with a quote, as OWASP says) and the
// --wide table carry them inert; the conflict tracker's names too.
func TestWorkstationNamesAreInert(t *testing.T) {
	h := startAuditHost(t, "--group", "windows-server-2025")
	server, admin := "127.0.0.1:"+strconv.Itoa(h.Port), "127.0.0.1:"+strconv.Itoa(h.Admin)
	const cmid = "0f6b8a9e-1d2c-4b3a-8f7e-6d5c4b3a2f10"
	// The last name is 64 UTF-16 units of bidi overrides: escaped it is
	// longer than a ledger record's text, and must still be answered.
	names := []string{"=cmd|' /C calc'!A0", "@SUM(1+1)" + hostileText, strings.Repeat("\u202e", 64), "WS-01\nWS-FAKE  0.0.0.0  counted"}
	for _, n := range names {
		if code, out, errOut := runKMS(t, "", "activate", "--server", server, "--product", "Windows Server 2025 Standard", "--cmid", cmid, "--workstation", n); code != 0 && code != 2 {
			t.Fatalf("activate as %q: exit %d\n%s%s", n, code, out, errOut)
		}
	}
	_, out, _ := runKMS(t, "", "clients", "--admin", admin, "--format", "json")
	assertInert(t, "clients --format json", out)
	var doc struct {
		Clients []struct {
			Workstation string   `json:"workstation"`
			SeenAs      []string `json:"cmid_seen_as"`
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Clients) != 1 {
		t.Fatalf("clients json: %v\n%s", err, out)
	}
	if got := doc.Clients[0].Workstation; got != `WS-01\x0aWS-FAKE  0.0.0.0  counted` {
		t.Errorf("stored workstation %q, want the newline escaped", got)
	}
	if s := strings.Join(doc.Clients[0].SeenAs, "|"); !strings.Contains(s, `\x1b]0;PWNED`) || strings.ContainsAny(s, "\x1b\n\u202e") {
		t.Errorf("conflict tracker names %q not escaped", s)
	}
	_, out, _ = runKMS(t, "", "clients", "--admin", admin, "--format", "csv")
	assertInert(t, "clients --format csv", out)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	for i, cell := range recs[1] {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			t.Errorf("csv column %s = %q starts a formula", recs[0][i], cell)
		}
	}
	_, out, _ = runKMS(t, "", "clients", "--admin", admin, "--wide")
	assertInert(t, "clients --wide", out)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "WS-FAKE") {
			t.Errorf("a workstation name forged a table row: %q", l)
		}
	}
}

// TestDNSServerRefusalTextIsInert: a DNS server that refuses the responder's
// registration with an Extended DNS Error whose text carries the 8-bit CSI
// (U+009B), a bidi override, zero-width and C0 controls: `status` (table
// and JSON) shows the reason code and the text with those characters
// replaced, never raw.
func TestDNSServerRefusalTextIsInert(t *testing.T) {
	tcp, pc := testkit.ListenUDPTCP(t, "127.0.0.1:0")
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		if q.Opcode == mdns.OpcodeUpdate {
			m.Rcode = mdns.RcodeRefused
			m.SetEdns0(1232, false)
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &mdns.EDNS0_EDE{InfoCode: mdns.ExtendedErrorCodeProhibited,
				ExtraText: "unapproved-target: " + hostileText + "\r\nforged"})
		} else if len(q.Question) == 1 && q.Question[0].Qtype == mdns.TypeSOA {
			rr, _ := mdns.NewRR("example.test. 60 IN SOA ns. h. 1 2 3 4 5")
			m.Answer = append(m.Answer, rr)
		}
		if ts := q.IsTsig(); ts != nil {
			m.SetTsig(ts.Hdr.Name, ts.Algorithm, 300, time.Now().Unix())
		}
		w.WriteMsg(m)
	})
	const secret = "c2VjcmV0LWtleS1mb3ItdGhlLWF1ZGl0LWZpeC10ZXN0IQ=="
	accept := func(mdns.Header) mdns.MsgAcceptAction { return mdns.MsgAccept }
	tsig := map[string]string{"kmsdns-key.": secret}
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: handler, MsgAcceptFunc: accept, TsigSecret: tsig},
		{Listener: tcp, Handler: handler, MsgAcceptFunc: accept, TsigSecret: tsig}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
	key := harness.WriteFile(t, t.TempDir(), "kms.key", "hmac-sha256:kmsdns-key.:"+secret+"\n")
	h := startAuditHost(t, "--group", "windows-server-2025", "--dns-server", pc.LocalAddr().String(), "--zone", "example.test",
		"--target", "kms1.example.test", "--tsig-key-file", key)
	admin := "127.0.0.1:" + strconv.Itoa(h.Admin)
	var out string
	harness.Eventually(t, 15*time.Second, "the refusal in status", func() bool {
		_, out, _ = runKMS(t, "", "status", "--admin", admin)
		return strings.Contains(out, "unapproved-target")
	})
	assertInert(t, "status", out)
	if strings.Contains(out, "\r") || strings.Contains(out, "\nforged") {
		t.Errorf("status passes the refusal's line break:\n%q", out)
	}
	_, js, _ := runKMS(t, "", "status", "--admin", admin, "--json")
	assertInert(t, "status --json", js)
	if !strings.Contains(js, `unapproved-target`) {
		t.Errorf("status --json lacks the reason:\n%s", js)
	}
}
