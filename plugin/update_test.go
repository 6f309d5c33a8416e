package vlmcs

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// updWriter is a test.ResponseWriter whose TSIG verdict is set by the test (the real MAC check
// is miekg/dns's and is exercised end to end in test/).
type updWriter struct {
	test.ResponseWriter
	tsig error
}

func (w *updWriter) TsigStatus() error { return w.tsig }

// regMsg builds the contract's register message for target at ip:port with a lease request.
func regMsg(zone, target, ip string, port uint16, lease uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	a := &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}
	m.RemoveRRset([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA}}, &dns.AAAA{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeAAAA}}})
	m.Insert([]dns.RR{a, &dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp." + zone, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: port, Target: target}})
	if lease > 0 {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		o.Option = []dns.EDNS0{&dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: lease}}
		m.Extra = append(m.Extra, o)
	}
	return m
}

// sign signs m for real with key's secret (both test keys share "c2VjcmV0"; an unknown key
// gets the same) and returns the message as the server would unpack it, MAC included.
func sign(m *dns.Msg, key string) *dns.Msg {
	m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	b, _, err := dns.TsigGenerate(m, "c2VjcmV0", "", false)
	if err != nil {
		panic(err)
	}
	out := new(dns.Msg)
	if err := out.Unpack(b); err != nil {
		panic(err)
	}
	return out
}

// send runs an update through v as if from src (TCP or UDP) with the given TSIG verdict.
func send(t testing.TB, v *Vlmcs, m *dns.Msg, src string, tcp bool, tsig error) *dns.Msg {
	t.Helper()
	rec := newRecorder(&updWriter{ResponseWriter: test.ResponseWriter{RemoteIP: src, TCP: tcp}, tsig: tsig})
	if _, err := v.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if rec.Msg == nil {
		t.Fatal("no response written")
	}
	return rec.Msg
}

// register sends a signed contract registration from ip itself.
func register(t testing.TB, v *Vlmcs, target, ip string, port uint16, lease uint32) *dns.Msg {
	return send(t, v, sign(regMsg("example.org.", target, ip, port, lease), "k."), ip, false, nil)
}

const updCorefile = `vlmcs example.org ad.example.org {
	approve kms1.example.org kms2.example.org 127.0.0.0/8 192.0.2.0/24
	key k. c2VjcmV0
	key k2. c2VjcmV0
	grant k. kms1.example.org
	grant k2. kms2.example.org
	any_address k2.
	lease 1h 2s 2h
	probe off
	scrub ad.example.org
	unsigned 192.0.2.0/24
	ports 1688 1689 1700
}`

func TestUpdateRules(t *testing.T) {
	withdraw := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.org.")
		m.Ns = []dns.RR{
			&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: 1688, Target: "kms1.example.org."},
			&dns.A{Hdr: dns.RR_Header{Name: "kms1.example.org.", Rrtype: dns.TypeA, Class: dns.ClassANY}},
		}
		return m
	}
	oneRR := func(r dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.SetUpdate("example.org.")
		m.Ns = []dns.RR{r}
		return m
	}
	one := func(rr string) *dns.Msg {
		r, err := dns.NewRR(rr)
		if err != nil {
			t.Fatal(err)
		}
		return oneRR(r)
	}
	tests := []struct {
		name    string
		msg     *dns.Msg
		key     string // "" unsigned
		src     string
		tcp     bool
		tsig    error
		rcode   int
		tsigErr uint16
		members int // SRV records in the answer afterwards
	}{
		{"signed register", regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "k.", "127.0.0.1", false, nil, dns.RcodeSuccess, 0, 1},
		{"bad signature", regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "k.", "127.0.0.1", false, dns.ErrSig, dns.RcodeNotAuth, dns.RcodeBadSig, 0},
		{"unknown key", regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "nokey.", "127.0.0.1", false, dns.ErrSecret, dns.RcodeNotAuth, dns.RcodeBadKey, 0},
		{"stale time", regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "k.", "127.0.0.1", false, dns.ErrTime, dns.RcodeNotAuth, dns.RcodeBadTime, 0},
		{"unsigned udp from allowed net", regMsg("example.org.", "kms1.example.org.", "192.0.2.5", 1688, 0), "", "192.0.2.5", false, nil, dns.RcodeRefused, 0, 0},
		{"unsigned tcp from allowed net", regMsg("example.org.", "kms1.example.org.", "192.0.2.5", 1688, 0), "", "192.0.2.5", true, nil, dns.RcodeSuccess, 0, 1},
		{"unsigned tcp from elsewhere", regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0), "", "127.0.0.1", true, nil, dns.RcodeRefused, 0, 0},
		{"key for another name", regMsg("example.org.", "kms2.example.org.", "127.0.0.1", 1688, 60), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"unapproved target", regMsg("example.org.", "rogue.example.org.", "127.0.0.1", 1688, 60), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"someone else's address", regMsg("example.org.", "kms1.example.org.", "127.0.0.9", 1688, 60), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"any_address key", regMsg("example.org.", "kms2.example.org.", "127.0.0.9", 1688, 60), "k2.", "127.0.0.1", false, nil, dns.RcodeSuccess, 0, 1},
		{"unapproved address", regMsg("example.org.", "kms2.example.org.", "198.51.100.1", 1688, 60), "k2.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"delete whole SRV set", oneRR(empty("_vlmcs._tcp.example.org.", dns.ClassANY, dns.TypeSRV, 0)), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"replace own SRV set", func() *dns.Msg {
			m := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0)
			m.Ns = append([]dns.RR{empty("_vlmcs._tcp.example.org.", dns.ClassANY, dns.TypeSRV, 0)}, m.Ns...)
			return m
		}(), "k.", "127.0.0.1", false, nil, dns.RcodeSuccess, 0, 1},
		{"other type at srv name", one("_vlmcs._tcp.example.org. 60 IN TXT hello"), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"name outside _vlmcs", one("www.example.org. 60 IN CNAME kms1.example.org."), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"name outside zone", one("kms1.example.net. 60 IN A 127.0.0.1"), "k.", "127.0.0.1", false, nil, dns.RcodeNotZone, 0, 0},
		{"add with meta type", oneRR(empty("kms1.example.org.", dns.ClassINET, dns.TypeANY, 60)), "k.", "127.0.0.1", false, nil, dns.RcodeFormatError, 0, 0},
		{"delete with ttl", oneRR(empty("kms1.example.org.", dns.ClassANY, dns.TypeA, 60)), "k.", "127.0.0.1", false, nil, dns.RcodeFormatError, 0, 0},
		{"srv port 0", one("_vlmcs._tcp.example.org. 60 IN SRV 0 0 0 kms1.example.org."), "k.", "127.0.0.1", false, nil, dns.RcodeRefused, 0, 0},
		{"withdraw nothing", withdraw(), "k.", "127.0.0.1", false, nil, dns.RcodeSuccess, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTest(t, updCorefile)
			v.Next = dirHandler(map[string][]string{"kms1.example.org.": {"192.0.2.5"}})
			m := tc.msg.Copy()
			if tc.key != "" {
				m = sign(m, tc.key)
			}
			resp := send(t, v, m, tc.src, tc.tcp, tc.tsig)
			if resp.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if tc.key != "" {
				rt := resp.IsTsig()
				if rt == nil {
					t.Fatal("signed request, response without TSIG")
				}
				if rt.Error != tc.tsigErr {
					t.Errorf("TSIG error %d, want %d", rt.Error, tc.tsigErr)
				}
			}
			if n := len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer); n != tc.members {
				t.Errorf("%d members after the update, want %d", n, tc.members)
			}
		})
	}
}

func TestUpdateLeaseAndWithdraw(t *testing.T) {
	v := newTest(t, updCorefile)
	for _, c := range []struct {
		ask, want uint32
	}{{60, 60}, {1, 2}, {1 << 30, 7200}} {
		resp := register(t, v, "kms1.example.org.", "127.0.0.1", 1688, c.ask)
		o := resp.IsEdns0()
		if resp.Rcode != dns.RcodeSuccess || o == nil || len(o.Option) != 1 {
			t.Fatalf("lease %d: %v", c.ask, resp)
		}
		if ul := o.Option[0].(*dns.EDNS0_UL); ul.Lease != c.want {
			t.Errorf("asked %d, granted %d, want %d", c.ask, ul.Lease, c.want)
		}
		if resp.Extra[len(resp.Extra)-1].Header().Rrtype != dns.TypeTSIG {
			t.Errorf("TSIG is not last: %v", resp.Extra)
		}
	}
	// No option: the default lease, no option in the reply.
	resp := send(t, v, sign(regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0), "k."), "127.0.0.1", false, nil)
	if resp.IsEdns0() != nil {
		t.Errorf("reply carries OPT though the request had none")
	}
	p := v.pools[0]
	p.mu.Lock()
	exp := p.members[memberKey{"kms1.example.org.", 1688}].expires
	p.mu.Unlock()
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Errorf("default lease gives %s", d)
	}

	// Refresh with new priority replaces, does not add.
	m := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60)
	m.Ns[3].(*dns.SRV).Priority = 7
	send(t, v, sign(m, "k."), "127.0.0.1", false, nil)
	ans := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)
	if len(ans.Answer) != 1 || ans.Answer[0].(*dns.SRV).Priority != 7 || len(ans.Extra) != 1 {
		t.Fatalf("after refresh: %v", ans)
	}

	// Withdraw: the member leaves at once.
	w := new(dns.Msg)
	w.SetUpdate("example.org.")
	w.Ns = []dns.RR{
		&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Priority: 7, Port: 1688, Target: "kms1.example.org."},
		&dns.A{Hdr: dns.RR_Header{Name: "kms1.example.org.", Rrtype: dns.TypeA, Class: dns.ClassANY}},
		&dns.AAAA{Hdr: dns.RR_Header{Name: "kms1.example.org.", Rrtype: dns.TypeAAAA, Class: dns.ClassANY}},
	}
	if resp := send(t, v, sign(w, "k."), "127.0.0.1", false, nil); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("withdraw: %v", resp)
	}
	if ans := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV); len(ans.Answer) != 0 {
		t.Fatalf("withdrawn member still served: %v", ans.Answer)
	}
}

func TestLeaseExpiry(t *testing.T) {
	v := newTest(t, updCorefile)
	register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 2)
	if n := len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer); n != 1 {
		t.Fatalf("%d members after registering", n)
	}
	// Expiry is evaluated at query time; move the pool's clock instead of sleeping.
	if a := v.pools[0].current(time.Now().Add(3 * time.Second)); len(a.srv) != 0 {
		t.Fatalf("lapsed member still served: %v", a.srv)
	}
	v.pools[0].mu.Lock()
	n := len(v.pools[0].members)
	v.pools[0].mu.Unlock()
	if n != 0 {
		t.Errorf("lapsed member not swept")
	}
}

func TestUpdateZones(t *testing.T) {
	v := newTest(t, updCorefile)
	for _, c := range []struct {
		zone  string
		rcode int
		next  bool
	}{
		{"ad.example.org.", dns.RcodeNotZone, false},
		{"sub.example.org.", dns.RcodeNotZone, false},
		{"example.net.", dns.RcodeNotZone, false}, // never passed on (forward would relay it)
	} {
		m := regMsg(c.zone, "kms1."+c.zone, "127.0.0.1", 1688, 60)
		resp := send(t, v, sign(m, "k."), "127.0.0.1", false, nil)
		if len(resp.Answer) != 0 {
			t.Errorf("%s: passed to the next plugin: %v", c.zone, resp)
		}
		if resp.Rcode != c.rcode {
			t.Errorf("%s: rcode %s", c.zone, dns.RcodeToString[resp.Rcode])
		}
	}
	// Zone section with a wrong count or type.
	m := new(dns.Msg)
	m.SetUpdate("example.org.")
	m.Question[0].Qtype = dns.TypeA
	if resp := send(t, v, m, "127.0.0.1", true, nil); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("zone type A: %s", dns.RcodeToString[resp.Rcode])
	}
	m.Question = append(m.Question, m.Question[0])
	if resp := send(t, v, m, "127.0.0.1", true, nil); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("two zones: %s", dns.RcodeToString[resp.Rcode])
	}
	// TSIG not last.
	m = sign(regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0), "k.")
	m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}})
	if resp := send(t, v, m, "127.0.0.1", false, nil); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("TSIG not last: %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestUpdateOnlyOverPlainDNS(t *testing.T) {
	cfg, err := parse(newController(updCorefile))
	if err != nil {
		t.Fatal(err)
	}
	v := newVlmcs(cfg, "tls://127.0.0.1:853", "", nil)
	if resp := register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 60); resp.Rcode != dns.RcodeRefused {
		t.Errorf("update over DoT: %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestPrerequisites(t *testing.T) {
	v := newTest(t, updCorefile)
	register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 60)
	pre := func(rrs ...dns.RR) *dns.Msg {
		m := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60)
		m.Answer = rrs
		return sign(m, "k.")
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		name  string
		pre   []dns.RR
		rcode int
	}{
		{"name in use", []dns.RR{empty("kms1.example.org.", dns.ClassANY, dns.TypeANY, 0)}, dns.RcodeSuccess},
		{"name not in use fails", []dns.RR{empty("kms9.example.org.", dns.ClassANY, dns.TypeANY, 0)}, dns.RcodeNameError},
		{"name must be unused fails", []dns.RR{empty("kms1.example.org.", dns.ClassNONE, dns.TypeANY, 0)}, dns.RcodeYXDomain},
		{"rrset exists", []dns.RR{empty("_vlmcs._tcp.example.org.", dns.ClassANY, dns.TypeSRV, 0)}, dns.RcodeSuccess},
		{"rrset exists fails", []dns.RR{empty("kms1.example.org.", dns.ClassANY, dns.TypeAAAA, 0)}, dns.RcodeNXRrset},
		{"rrset absent fails", []dns.RR{empty("kms1.example.org.", dns.ClassNONE, dns.TypeA, 0)}, dns.RcodeYXRrset},
		{"rrset value", []dns.RR{rr("kms1.example.org. 0 IN A 127.0.0.1")}, dns.RcodeSuccess},
		{"rrset value fails", []dns.RR{rr("kms1.example.org. 0 IN A 127.0.0.2")}, dns.RcodeNXRrset},
		{"ttl not zero", []dns.RR{empty("kms1.example.org.", dns.ClassANY, dns.TypeANY, 5)}, dns.RcodeFormatError},
		{"outside zone", []dns.RR{empty("kms1.example.net.", dns.ClassANY, dns.TypeANY, 0)}, dns.RcodeNotZone},
	} {
		if resp := send(t, v, pre(c.pre...), "127.0.0.1", false, nil); resp.Rcode != c.rcode {
			t.Errorf("%s: %s, want %s", c.name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[c.rcode])
		}
	}
}

func TestReplayRefused(t *testing.T) {
	v := newTest(t, updCorefile)
	reg := sign(regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "k.")
	w := new(dns.Msg)
	w.SetUpdate("example.org.")
	w.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: 1688, Target: "kms1.example.org."}}
	withdraw := sign(w, "k.")
	for i, c := range []struct {
		m       *dns.Msg
		rcode   int
		members int
	}{
		{reg, dns.RcodeSuccess, 1},
		{withdraw, dns.RcodeSuccess, 0},
		{sign(regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60), "k."), dns.RcodeSuccess, 1},
		{withdraw, dns.RcodeRefused, 1}, // the captured withdraw, replayed: the live member stays
		{reg, dns.RcodeRefused, 1},
	} {
		if resp := send(t, v, c.m.Copy(), "127.0.0.1", false, nil); resp.Rcode != c.rcode {
			t.Fatalf("step %d: %s, want %s", i, dns.RcodeToString[resp.Rcode], dns.RcodeToString[c.rcode])
		}
		if n := len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer); n != c.members {
			t.Fatalf("step %d: %d members, want %d", i, n, c.members)
		}
	}
}

// TestReplayGuardBounded: the memory is bounded per key and in all, never forgets an
// unexpired MAC to make room (it refuses instead), and frees entries whose window has passed.
func TestReplayGuardBounded(t *testing.T) {
	g := newReplayGuard()
	now := time.Now()
	for i := range maxReplayPerKey {
		if got := g.check("k1.", strconv.Itoa(i), now.Add(time.Hour), now); got != replayFirst {
			t.Fatalf("entry %d: %v", i, got)
		}
	}
	if got := g.check("k1.", "one more", now.Add(time.Hour), now); got != replayKeyFull {
		t.Fatalf("beyond the key's quota: %v, want replayKeyFull", got)
	}
	if got := g.check("k1.", "0", now.Add(time.Hour), now); got != replaySeen {
		t.Fatalf("the oldest unexpired MAC: %v, want replaySeen (never evicted)", got)
	}
	// Other keys fill the rest; then everyone is refused, and nothing was forgotten.
	for k := 2; g.size() < maxReplayEntries; k++ {
		for i := range maxReplayPerKey {
			if got := g.check("k"+strconv.Itoa(k)+".", strconv.Itoa(i), now.Add(time.Duration(k)*time.Hour), now); got != replayFirst {
				t.Fatalf("key %d entry %d: %v", k, i, got)
			}
		}
	}
	if got := g.check("fresh.", "x", now.Add(time.Hour), now); got != replayFull {
		t.Fatalf("memory full: %v, want replayFull", got)
	}
	if got := g.check("k1.", "5", now.Add(time.Hour), now); got != replaySeen {
		t.Fatalf("memory full, remembered MAC: %v, want replaySeen", got)
	}
	// After k1's window only k1's entries go: k1 and a new key may sign again.
	later := now.Add(time.Hour)
	if got := g.check("k1.", "5", later.Add(time.Hour), later); got != replayFirst {
		t.Fatalf("expired entry: %v, want replayFirst", got)
	}
	if got := g.check("k2.", "5", later.Add(time.Hour), later); got != replaySeen {
		t.Fatalf("k2's unexpired entry: %v, want replaySeen", got)
	}
	if got := g.size(); got != maxReplayEntries-maxReplayPerKey+1 {
		t.Errorf("%d entries after expiry, want %d", got, maxReplayEntries-maxReplayPerKey+1)
	}
}

// TestTSIGWindow: the replay memory keeps a MAC for the window miekg/dns enforces, fudge 0
// included (verified as 300 s).
func TestTSIGWindow(t *testing.T) {
	for _, tc := range []struct {
		fudge uint16
		want  time.Duration
	}{{0, 301 * time.Second}, {1, 2 * time.Second}, {300, 301 * time.Second}, {65535, 65536 * time.Second}} {
		signed, until := tsigWindow(&dns.TSIG{TimeSigned: 1_000_000, Fudge: tc.fudge})
		if signed.Unix() != 1_000_000 || until.Sub(signed) != tc.want {
			t.Errorf("fudge %d: window %v..%v, want %v long", tc.fudge, signed, until, tc.want)
		}
	}
	// Through the handler: a fudge-0 update signed 5 s ago is still remembered.
	v := newTest(t, updCorefile)
	m := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60)
	m.SetTsig("k.", dns.HmacSHA256, 0, time.Now().Unix()-5)
	for i, want := range []int{dns.RcodeSuccess, dns.RcodeRefused} {
		if r := send(t, v, m.Copy(), "127.0.0.1", false, nil); r.Rcode != want {
			t.Errorf("fudge 0, send %d: %s, want %s", i+1, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
		}
	}
}

func TestRefusalsAreRateLimitedLogged(t *testing.T) {
	v := newTest(t, updCorefile)
	var lines []string
	v.logger.out = func(s string) { lines = append(lines, s) }
	for range 50 {
		send(t, v, regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0), "127.0.0.1", false, nil)
	}
	if len(lines) != v.logger.burst {
		t.Errorf("%d log lines for 50 refusals, want %d", len(lines), v.logger.burst)
	}
}

// empty returns a record without data (RRset/name prerequisites and deletes).
// (miekg/dns's ANY type packs no data whatever Rrtype says, as its RemoveRRset does.)
func empty(name string, class, typ uint16, ttl uint32) dns.RR {
	return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: typ, Class: class, Ttl: ttl}}
}

func TestUnsignedCannotTouchSignedMembers(t *testing.T) {
	v := newTest(t, updCorefile)
	v.Next = dirHandler(map[string][]string{"kms1.example.org.": {"192.0.2.5"}, "kms2.example.org.": {"192.0.2.5"}})
	if resp := register(t, v, "kms1.example.org.", "192.0.2.5", 1688, 60); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed registration: %s", dns.RcodeToString[resp.Rcode])
	}
	w := new(dns.Msg)
	w.SetUpdate("example.org.")
	w.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: 1688, Target: "kms1.example.org."}}
	for _, m := range []*dns.Msg{w, regMsg("example.org.", "kms1.example.org.", "192.0.2.5", 1688, 0)} {
		if resp := send(t, v, m, "192.0.2.5", true, nil); resp.Rcode != dns.RcodeRefused {
			t.Errorf("unsigned update of a signed member: %s", dns.RcodeToString[resp.Rcode])
		}
	}
	if n := len(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV).Answer); n != 1 {
		t.Fatalf("signed member gone: %d members", n)
	}
	// Unsigned members stay manageable unsigned.
	if resp := send(t, v, regMsg("example.org.", "kms2.example.org.", "192.0.2.5", 1689, 0), "192.0.2.5", true, nil); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("unsigned registration: %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestScopedRRsetDelete(t *testing.T) {
	v := newTest(t, updCorefile)
	register(t, v, "kms1.example.org.", "127.0.0.1", 1688, 60)
	register(t, v, "kms1.example.org.", "127.0.0.1", 1700, 60)
	if resp := send(t, v, sign(regMsg("example.org.", "kms2.example.org.", "127.0.0.9", 1688, 60), "k2."), "127.0.0.1", false, nil); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("kms2: %s", dns.RcodeToString[resp.Rcode])
	}
	// kms1 replaces "the" SRV RRset with its port 1688 record: its port 1700 goes, kms2 stays.
	m := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 60)
	m.Ns = append([]dns.RR{empty("_vlmcs._tcp.example.org.", dns.ClassANY, dns.TypeSRV, 0)}, m.Ns...)
	if resp := send(t, v, sign(m, "k."), "127.0.0.1", false, nil); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("replace: %s", dns.RcodeToString[resp.Rcode])
	}
	got := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV))
	if len(got) != 2 || !got["kms1.example.org.:1688"] || !got["kms2.example.org.:1688"] {
		t.Fatalf("after a scoped RRset delete: %v", got)
	}
}

func TestPoolBounds(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve *.example.org
	key k. c2VjcmV0
	grant k. *.example.org
	any_address k.
	member_limit 1024
	probe off
}`)
	// One update may not carry more addresses for a name than the bound.
	m := new(dns.Msg)
	m.SetUpdate("example.org.")
	for i := range maxHostAddrs + 1 {
		m.Ns = append(m.Ns, &dns.A{Hdr: dns.RR_Header{Name: "kms.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, byte(i+1))})
	}
	if resp := send(t, v, sign(m, "k."), "127.0.0.1", false, nil); resp.Rcode != dns.RcodeRefused {
		t.Fatalf("too many addresses: %s", dns.RcodeToString[resp.Rcode])
	}
	// Members up to the bound, then refused.
	for i := range maxMembers + 1 {
		m := new(dns.Msg)
		m.SetUpdate("example.org.")
		m.Ns = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: 1688, Target: "kms" + strconv.Itoa(i) + ".example.org."}}
		want := dns.RcodeSuccess
		if i == maxMembers {
			want = dns.RcodeRefused
		}
		if resp := send(t, v, sign(m, "k."), "127.0.0.1", false, nil); resp.Rcode != want {
			t.Fatalf("member %d: %s, want %s", i, dns.RcodeToString[resp.Rcode], dns.RcodeToString[want])
		}
	}
}

func TestRegisterIPv6(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org ::1/128 127.0.0.1
	key k. c2VjcmV0
	grant k. kms1.example.org
	probe off
}`)
	m := new(dns.Msg)
	m.SetUpdate("example.org.")
	m.RemoveRRset([]dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: "kms1.example.org.", Rrtype: dns.TypeAAAA}}})
	m.Insert([]dns.RR{
		&dns.AAAA{Hdr: dns.RR_Header{Name: "kms1.example.org.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("::1")},
		&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Port: 1688, Target: "kms1.example.org."},
	})
	if resp := send(t, v, sign(m, "k."), "::1", true, nil); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("IPv6 registration: %s", dns.RcodeToString[resp.Rcode])
	}
	ans := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)
	if len(ans.Answer) != 1 || len(ans.Extra) != 1 {
		t.Fatalf("answer: %v", ans)
	}
	if a, ok := ans.Extra[0].(*dns.AAAA); !ok || !a.AAAA.Equal(net.ParseIP("::1")) {
		t.Errorf("glue: %v", ans.Extra[0])
	}
	// An IPv4 address alone, sent over IPv6, is someone else's.
	m2 := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0)
	if resp := send(t, v, sign(m2, "k."), "::1", true, nil); resp.Rcode != dns.RcodeRefused {
		t.Errorf("IPv4 address from an IPv6 sender: %s", dns.RcodeToString[resp.Rcode])
	}
	// A dual-stack host publishes both families from one: allowed with its own address.
	m3 := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0)
	m3.Ns = append(m3.Ns, &dns.AAAA{Hdr: dns.RR_Header{Name: "kms1.example.org.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("::1")})
	if resp := send(t, v, sign(m3, "k."), "::1", true, nil); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("dual-stack registration from ::1: %s", dns.RcodeToString[resp.Rcode])
	}
	if ans := query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV); len(ans.Extra) != 2 {
		t.Errorf("dual-stack glue: %v", ans.Extra)
	}
}

// TestUpdateNamesAndOwnership: names a host cannot have, escaped dots against *.suffix grants,
// static members and approve NAME=ADDRESS bindings.
func TestUpdateNamesAndOwnership(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve *.kms.example.org 192.0.2.0/24 bound.example.org=192.0.2.50
	static s1.kms.example.org 1688 0 0 192.0.2.10
	key k. c2VjcmV0
	grant k. *.kms.example.org bound.example.org
	any_address k.
	probe off
}`)
	cases := []struct {
		name   string
		msg    *dns.Msg
		rcode  int
		reason string
	}{
		{"escaped dot matches no *.suffix label", regMsg("example.org.", `evil\.kms.example.org.`, "192.0.2.7", 1688, 0), dns.RcodeRefused, reasonBadName},
		{"space inside a label", regMsg("example.org.", `a\032b.kms.example.org.`, "192.0.2.7", 1688, 0), dns.RcodeRefused, reasonBadName},
		{"NUL inside a label", regMsg("example.org.", `a\000b.kms.example.org.`, "192.0.2.7", 1688, 0), dns.RcodeRefused, reasonBadName},
		{"static member's addresses", regMsg("example.org.", "s1.kms.example.org.", "192.0.2.66", 1688, 0), dns.RcodeRefused, reasonStatic},
		{"static member's name at another port", regMsg("example.org.", "s1.kms.example.org.", "192.0.2.10", 1689, 0), dns.RcodeRefused, reasonStatic},
		{"bound name at another address", regMsg("example.org.", "bound.example.org.", "192.0.2.51", 1688, 0), dns.RcodeRefused, reasonUnapprovedAddr},
		{"bound name at its address", regMsg("example.org.", "bound.example.org.", "192.0.2.50", 1688, 0), dns.RcodeSuccess, reasonOK},
		{"plain name under the grant", regMsg("example.org.", "a.KMS.example.org.", "192.0.2.7", 1688, 0), dns.RcodeSuccess, reasonOK},
	}
	for _, tc := range cases {
		before := counterValue(t, updatesTotal.WithLabelValues(v.server, "example.org.", dns.RcodeToString[tc.rcode], tc.reason))
		m := send(t, v, sign(tc.msg, "k."), "192.0.2.7", true, nil)
		if m.Rcode != tc.rcode {
			t.Errorf("%s: rcode %s, want %s", tc.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
		}
		if after := counterValue(t, updatesTotal.WithLabelValues(v.server, "example.org.", dns.RcodeToString[tc.rcode], tc.reason)); after != before+1 {
			t.Errorf("%s: reason %s counted %v times", tc.name, tc.reason, after-before)
		}
	}
	// The static member keeps its configured address; the pool answers it.
	m := query(t, v, "s1.kms.example.org.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.10" {
		t.Errorf("static member's address changed: %v", m.Answer)
	}
}

// counterValue reads a counter (the tests in a package share the collectors: compare deltas).
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
