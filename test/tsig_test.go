package test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// signWire signs m with key/secret at time signed, with fudge, and returns the wire bytes.
func signWire(t *testing.T, m *dns.Msg, key, secret, alg string, signed int64, fudge uint16) []byte {
	t.Helper()
	m.SetTsig(key, alg, fudge, signed)
	b, _, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewire unpacks b, lets edit change the message (TSIG included, not re-signed) and packs it.
func rewire(t *testing.T, b []byte, edit func(*dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exchangeRaw sends wire bytes to addr over UDP or TCP and returns the unpacked response.
func exchangeRaw(t *testing.T, addr, network string, b []byte) *dns.Msg {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65535)
	var n int
	if network == "tcp" {
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(b)))
		if _, err := c.Write(append(l[:], b...)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		n = int(binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			t.Fatal(err)
		}
	} else {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if n, err = c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("response does not unpack: %v", err)
	}
	return m
}

// TestTSIGAttacks sends hostile signed updates (RFC 8945 and CVE-2017-3142/3143, CVE-2017-11104
// classes) over UDP and TCP; every one is refused and the pool stays as it was.
func TestTSIGAttacks(t *testing.T) {
	c := harness.StartCoreDNS(t, publishCorefile)
	kms := testkit.StartKMS(t, "127.0.0.1:0")
	qname := "_vlmcs._tcp.example.test"
	reg := func() *dns.Msg { return updateMsg("kms1.example.test.", "127.0.0.1", kms.Port, 0) }
	now := time.Now().Unix()

	// A live member to protect.
	if resp := exchangeRaw(t, c.Addr(), "udp", signWire(t, reg(), "kms1-key.", secret1, dns.HmacSHA256, now, 300)); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("registration: %v", resp)
	}
	member := fmt.Sprintf("kms1.example.test.:%d", kms.Port)
	harness.Eventually(t, 3*time.Second, "member served", func() bool { return srvSet(t, c, qname)[member] })

	withdraw := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.test.")
		m.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: uint16(kms.Port), Target: "kms1.example.test."}}
		return m
	}
	// A captured, valid withdraw (sent once while the member was re-registered afterwards).
	captured := signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now, 300)
	if resp := exchangeRaw(t, c.Addr(), "tcp", captured); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("withdraw: %v", resp)
	}
	if resp := exchangeRaw(t, c.Addr(), "tcp", signWire(t, reg(), "kms1-key.", secret1, dns.HmacSHA256, now, 300)); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("re-registration: %v", resp)
	}
	harness.Eventually(t, 3*time.Second, "member served again", func() bool { return srvSet(t, c, qname)[member] })
	// A short-fudge signature, to replay after its window.
	shortFudge := signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, time.Now().Unix(), 1)

	flipMAC := func(m *dns.Msg) {
		ts := m.IsTsig()
		b := []byte(ts.MAC)
		if b[0] == '0' {
			b[0] = '1'
		} else {
			b[0] = '0'
		}
		ts.MAC = string(b)
	}
	attacks := []struct {
		name    string
		wire    []byte
		rcode   int
		tsigErr int // -1: no TSIG check
	}{
		{"forged MAC, known key name", rewire(t, signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now, 300), flipMAC), dns.RcodeNotAuth, dns.RcodeBadSig},
		{"truncated MAC", rewire(t, signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now, 300), func(m *dns.Msg) {
			ts := m.IsTsig()
			ts.MAC, ts.MACSize = ts.MAC[:20], 10
		}), dns.RcodeNotAuth, dns.RcodeBadSig},
		{"empty MAC", rewire(t, signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now, 300), func(m *dns.Msg) {
			ts := m.IsTsig()
			ts.MAC, ts.MACSize = "", 0
		}), dns.RcodeNotAuth, dns.RcodeBadSig},
		{"wrong secret", signWire(t, withdraw(), "kms1-key.", secret2, dns.HmacSHA256, now, 300), dns.RcodeNotAuth, dns.RcodeBadSig},
		{"unknown key", signWire(t, withdraw(), "nobody.", secret1, dns.HmacSHA256, now, 300), dns.RcodeNotAuth, dns.RcodeBadKey},
		{"time outside the fudge", signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now-3600, 300), dns.RcodeNotAuth, dns.RcodeBadTime},
		{"replay within the window", captured, dns.RcodeRefused, 0},
		{"TSIG not last", rewire(t, signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now, 300), func(m *dns.Msg) {
			m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}})
		}), dns.RcodeFormatError, -1},
		{"two TSIG records", rewire(t, signWire(t, withdraw(), "kms1-key.", secret1, dns.HmacSHA256, now, 300), func(m *dns.Msg) {
			m.Extra = append([]dns.RR{dns.Copy(m.IsTsig())}, m.Extra...)
		}), dns.RcodeFormatError, -1},
		{"two TSIG records, unknown key", rewire(t, signWire(t, withdraw(), "nobody.", secret1, dns.HmacSHA256, now, 300), func(m *dns.Msg) {
			m.Extra = append([]dns.RR{dns.Copy(m.IsTsig())}, m.Extra...)
		}), dns.RcodeFormatError, -1},
		{"valid key, another host's member", signWire(t, withdraw(), "kms2-key.", secret2, dns.HmacSHA256, now, 300), dns.RcodeRefused, 0},
	}
	for _, a := range attacks {
		for _, network := range []string{"udp", "tcp"} {
			resp := exchangeRaw(t, c.Addr(), network, a.wire)
			if resp.Rcode != a.rcode {
				t.Errorf("%s over %s: %s, want %s", a.name, network, dns.RcodeToString[resp.Rcode], dns.RcodeToString[a.rcode])
			}
			if a.tsigErr >= 0 {
				if ts := resp.IsTsig(); ts == nil || int(ts.Error) != a.tsigErr {
					t.Errorf("%s over %s: response TSIG %v, want error %d", a.name, network, ts, a.tsigErr)
				}
			}
		}
	}
	// Replay after its window: the short-fudge signature has expired.
	time.Sleep(2500 * time.Millisecond)
	if resp := exchangeRaw(t, c.Addr(), "udp", shortFudge); resp.Rcode != dns.RcodeNotAuth || resp.IsTsig() == nil || resp.IsTsig().Error != dns.RcodeBadTime {
		t.Errorf("replay after the window: %v", resp)
	}
	if s := srvSet(t, c, qname); len(s) != 1 || !s[member] {
		t.Fatalf("pool changed by attacks: %v", s)
	}
	if !strings.Contains(scrape(t, c), `reason="replay",result="REFUSED"`) {
		t.Error("replays not counted")
	}
}

// TestUpdateFlood sends wrong-key, unsigned and unapproved updates from many goroutines while
// querying: every query is answered, every update counted, and the log stays rate-limited.
func TestUpdateFlood(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		key kms1-key. `+secret1+`
		grant kms1-key. kms1.example.test
		static kms1.example.test 1688 0 0 127.0.0.1
		probe off
	}
}
`)
	const perWorker, workers = 250, 4
	msgs := [][]byte{
		signWire(t, updateMsg("kms1.example.test.", "127.0.0.1", 1688, 0), "kms1-key.", secret2, dns.HmacSHA256, time.Now().Unix(), 300),
		func() []byte { b, _ := updateMsg("kms1.example.test.", "127.0.0.1", 1688, 0).Pack(); return b }(),
		signWire(t, updateMsg("rogue.example.test.", "127.0.0.1", 1688, 0), "kms1-key.", secret1, dns.HmacSHA256, time.Now().Unix(), 300),
	}
	var wg sync.WaitGroup
	var answeredUpdates atomic.Int64
	for w := range workers {
		wg.Go(func() {
			conn, err := net.Dial("udp", c.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			buf := make([]byte, 4096)
			for i := range perWorker {
				b := append([]byte(nil), msgs[(w+i)%len(msgs)]...)
				binary.BigEndian.PutUint16(b, uint16(w*perWorker+i)) // the MAC covers the original ID, not this one
				conn.SetDeadline(time.Now().Add(time.Second))
				if _, err := conn.Write(b); err != nil {
					continue
				}
				if _, err := conn.Read(buf); err == nil {
					answeredUpdates.Add(1)
				}
			}
		})
	}
	answered := 0
	q := new(dns.Msg)
	q.SetQuestion("_vlmcs._tcp.example.test.", dns.TypeSRV)
	cl := &dns.Client{Timeout: time.Second}
	for range 200 {
		resp, _, err := cl.Exchange(q, c.Addr())
		if err == nil && len(resp.Answer) == 1 {
			answered++
		}
	}
	wg.Wait()
	if answered < 198 {
		t.Errorf("only %d of 200 queries answered during the flood", answered)
	}
	if n := answeredUpdates.Load(); n < workers*perWorker*9/10 {
		t.Errorf("only %d of %d updates answered", n, workers*perWorker)
	}
	metrics := scrape(t, c)
	if n := sumMetric(metrics, "coredns_vlmcs_updates_total"); n < float64(answeredUpdates.Load()) {
		t.Errorf("%v updates counted, %d answered:\n%s", n, answeredUpdates.Load(), grepLines(metrics, "updates_total"))
	}
	if n := strings.Count(c.Output(), "refused update"); n == 0 || n > 60 {
		t.Errorf("%d refusal log lines for %d refusals: want some, rate-limited", n, answeredUpdates.Load())
	}
}

// sumMetric adds up every sample of a metric family in a /metrics text.
func sumMetric(text, name string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestKeysFromTsigPlugin uses secrets defined by CoreDNS's tsig plugin: vlmcs (before tsig)
// still sees, judges and counts every update.
func TestKeysFromTsigPlugin(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.example.test 127.0.0.0/8
		ports 1024-65535 # KMS ports picked at run time
		grant kms1-key. kms1.example.test
		probe off
	}
	tsig {
		secret kms1-key. `+secret1+`
		require all
	}
}
`)
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", 1688), keyArg("kms1-key.", secret1)...); code != 0 {
		t.Fatalf("signed with the tsig plugin's key: %s", out)
	}
	if s := srvSet(t, c, "_vlmcs._tcp.example.test"); !s["kms1.example.test.:1688"] {
		t.Fatalf("registration not served: %v", s)
	}
	if code, out := c.NSUpdate(t, registerScript("kms1.example.test", "127.0.0.1", 1688), keyArg("kms1-key.", secret2)...); code == 0 || !strings.Contains(out, "BADSIG") {
		t.Fatalf("wrong secret: exit %d %q", code, out)
	}
	if !strings.Contains(scrape(t, c), `reason="tsig-badsig",result="NOTAUTH"`) {
		t.Error("bad signature not counted by vlmcs")
	}
}
