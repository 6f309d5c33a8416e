package vlmcs

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"
)

const ownCorefile = `vlmcs example.org {
	approve *.example.org 192.0.2.0/24
	unsigned 192.0.2.0/24
	key k. c2VjcmV0
	grant k. *.example.org
	any_address k.
	probe off
}`

// ownDirectory: victim is 192.0.2.2, attacker 192.0.2.1, fileserver (no KMS host) 192.0.2.3.
var ownDirectory = map[string][]string{
	"victim.example.org.":     {"192.0.2.2"},
	"attacker.example.org.":   {"192.0.2.1"},
	"fileserver.example.org.": {"192.0.2.3"},
}

func srvRR(class uint16, target string) dns.RR {
	return &dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: class, Ttl: map[uint16]uint32{dns.ClassINET: 60}[class]}, Port: 1688, Target: target}
}

func aRR(class uint16, name, ip string) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: class, Ttl: map[uint16]uint32{dns.ClassINET: 60}[class]}, A: net.ParseIP(ip)}
}

func updateOf(rrs ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate("example.org.")
	m.Ns = rrs
	return m
}

// TestUnsignedOwnsOnlyItsDirectoryName: an unsigned update may touch only names the next
// plugin resolves to the sender, never what a key registered; nothing in the update itself
// proves ownership.
func TestUnsignedOwnsOnlyItsDirectoryName(t *testing.T) {
	v := newTest(t, ownCorefile)
	v.Next = dirHandler(ownDirectory)
	steps := []struct {
		name   string
		m      *dns.Msg
		key    string
		src    string
		rcode  int
		reason string
	}{
		{"genuine SRV-only registration", updateOf(srvRR(dns.ClassINET, "victim.example.org.")), "", "192.0.2.2", dns.RcodeSuccess, reasonOK},
		{"address at the victim's name", updateOf(aRR(dns.ClassINET, "victim.example.org.", "192.0.2.1")), "", "192.0.2.1", dns.RcodeRefused, reasonForeignTarget},
		{"victim's SRV with the attacker's address", updateOf(aRR(dns.ClassINET, "victim.example.org.", "192.0.2.1"), srvRR(dns.ClassINET, "victim.example.org.")), "", "192.0.2.1", dns.RcodeRefused, reasonForeignTarget},
		{"victim's withdraw", updateOf(srvRR(dns.ClassNONE, "victim.example.org.")), "", "192.0.2.1", dns.RcodeRefused, reasonForeignTarget},
		{"victim's address delete", updateOf(empty("victim.example.org.", dns.ClassANY, dns.TypeA, 0)), "", "192.0.2.1", dns.RcodeRefused, reasonForeignTarget},
		{"a name the directory lacks, address in the update", updateOf(aRR(dns.ClassINET, "new.example.org.", "192.0.2.1"), srvRR(dns.ClassINET, "new.example.org.")), "", "192.0.2.1", dns.RcodeRefused, reasonForeignTarget},
		{"genuine SRV-only refresh", updateOf(srvRR(dns.ClassINET, "victim.example.org.")), "", "192.0.2.2", dns.RcodeSuccess, reasonOK},
		{"attacker's own name", updateOf(srvRR(dns.ClassINET, "attacker.example.org.")), "", "192.0.2.1", dns.RcodeSuccess, reasonOK},
		{"key registers fileserver", regMsg("example.org.", "fileserver.example.org.", "192.0.2.9", 1688, 0), "k.", "192.0.2.9", dns.RcodeSuccess, reasonOK},
		{"fileserver's own address withdraws the key's member", updateOf(srvRR(dns.ClassNONE, "fileserver.example.org.")), "", "192.0.2.3", dns.RcodeRefused, reasonSigned},
		{"fileserver's own address replaces the key's addresses", updateOf(empty("fileserver.example.org.", dns.ClassANY, dns.TypeA, 0), aRR(dns.ClassINET, "fileserver.example.org.", "192.0.2.3")), "", "192.0.2.3", dns.RcodeRefused, reasonSigned},
		{"genuine withdraw", updateOf(srvRR(dns.ClassNONE, "victim.example.org.")), "", "192.0.2.2", dns.RcodeSuccess, reasonOK},
	}
	for _, s := range steps {
		m := s.m
		if s.key != "" {
			m = sign(m, s.key)
		}
		before := counterValue(t, updatesTotal.WithLabelValues(v.server, "example.org.", dns.RcodeToString[s.rcode], s.reason))
		if r := send(t, v, m, s.src, true, nil); r.Rcode != s.rcode {
			t.Errorf("%s: %s, want %s", s.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[s.rcode])
		}
		if after := counterValue(t, updatesTotal.WithLabelValues(v.server, "example.org.", dns.RcodeToString[s.rcode], s.reason)); after != before+1 {
			t.Errorf("%s: reason %s not counted", s.name, s.reason)
		}
	}
	got := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV))
	if len(got) != 2 || !got["attacker.example.org.:1688"] || !got["fileserver.example.org.:1688"] {
		t.Errorf("members: %v, want attacker and fileserver", got)
	}
}

// TestUnsignedNameBound: the names one unsigned update touches are bounded (each is looked
// up through the next plugin) by member_limit's PER_SENDER.
func TestUnsignedNameBound(t *testing.T) {
	v := newTest(t, ownCorefile)
	lookups := 0
	dir := dirHandler(ownDirectory)
	v.Next = countingHandler(&lookups, dir)
	var rrs []dns.RR
	for i := range 1024 {
		rrs = append(rrs, aRR(dns.ClassINET, fmt.Sprintf("h%d.example.org.", i), "192.0.2.1"))
	}
	if r := send(t, v, updateOf(rrs...), "192.0.2.1", true, nil); r.Rcode != dns.RcodeRefused {
		t.Errorf("1024 names unsigned: %s", dns.RcodeToString[r.Rcode])
	}
	if lookups != 0 {
		t.Errorf("%d lookups for a refused update, want none", lookups)
	}
}

// TestHostAnswersYieldToNext: vlmcs answers A for a key-registered name only when the next
// plugin does not have it, and never for addresses registered unsigned; configured names are
// always its own.
func TestHostAnswersYieldToNext(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve *.example.org 192.0.2.0/24 bound.example.org=192.0.2.50
	static s1.example.org 1688 0 0 192.0.2.10
	unsigned 192.0.2.0/24
	key k. c2VjcmV0
	grant k. *.example.org
	any_address k.
	probe off
}`)
	v.Next = dirHandler(map[string][]string{
		"fileserver.example.org.": {"192.0.2.3"},
		"win.example.org.":        {"192.0.2.4"},
		"s1.example.org.":         {"192.0.2.99"},
		"bound.example.org.":      {"192.0.2.98"},
	})
	for _, r := range []struct{ name, ip string }{{"fileserver.example.org.", "192.0.2.9"}, {"kms1.example.org.", "192.0.2.8"}, {"bound.example.org.", "192.0.2.50"}} {
		if m := send(t, v, sign(regMsg("example.org.", r.name, r.ip, 1688, 0), "k."), r.ip, true, nil); m.Rcode != dns.RcodeSuccess {
			t.Fatalf("register %s: %s", r.name, dns.RcodeToString[m.Rcode])
		}
	}
	win := regMsg("example.org.", "win.example.org.", "192.0.2.4", 1688, 0)
	if m := send(t, v, win, "192.0.2.4", true, nil); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("unsigned win: %s", dns.RcodeToString[m.Rcode])
	}
	for _, tc := range []struct {
		name string
		want string
	}{
		{"fileserver.example.org.", "192.0.2.3"}, // the directory's, not the key's 192.0.2.9
		{"kms1.example.org.", "192.0.2.8"},       // vlmcs's own: the directory has no such name
		{"win.example.org.", "192.0.2.4"},        // registered unsigned: the directory answers
		{"s1.example.org.", "192.0.2.10"},        // static: the configuration's
		{"bound.example.org.", "192.0.2.50"},     // approve NAME=ADDRESS: the configuration's
	} {
		m := query(t, v, tc.name, dns.TypeA)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != tc.want {
			t.Errorf("%s A: %v, want %s", tc.name, m.Answer, tc.want)
		}
	}
}

// TestLimitsCoverAddressNames: member_limit bounds the names with addresses a key or an
// unsigned sender holds, as it bounds their members.
func TestLimitsCoverAddressNames(t *testing.T) {
	v := newTest(t, ownCorefile)
	v.cfg.membersPerKey = 3
	names := func(from, to int) *dns.Msg {
		var rrs []dns.RR
		for i := from; i < to; i++ {
			rrs = append(rrs, aRR(dns.ClassINET, fmt.Sprintf("h%d.example.org.", i), "192.0.2.7"))
		}
		return updateOf(rrs...)
	}
	for _, s := range []struct {
		from, to int
		rcode    int
	}{{0, 4, dns.RcodeRefused}, {0, 3, dns.RcodeSuccess}, {0, 3, dns.RcodeSuccess}, {3, 4, dns.RcodeRefused}} {
		if r := send(t, v, sign(names(s.from, s.to), "k."), "192.0.2.7", true, nil); r.Rcode != s.rcode {
			t.Errorf("names h%d..h%d: %s, want %s", s.from, s.to-1, dns.RcodeToString[r.Rcode], dns.RcodeToString[s.rcode])
		}
	}
	p := v.pools[0]
	if len(p.hosts) != 3 {
		t.Errorf("%d names with addresses, want 3", len(p.hosts))
	}
}

// TestReloadDropsOrphans: a configuration without a key's grant, or without the unsigned
// network of a sender, drops what they registered; the rest stays.
func TestReloadDropsOrphans(t *testing.T) {
	v := newTest(t, ownCorefile)
	v.Next = dirHandler(ownDirectory)
	if m := send(t, v, sign(regMsg("example.org.", "kms1.example.org.", "192.0.2.8", 1688, 0), "k."), "192.0.2.8", true, nil); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("kms1: %s", dns.RcodeToString[m.Rcode])
	}
	if m := send(t, v, updateOf(srvRR(dns.ClassINET, "victim.example.org.")), "192.0.2.2", true, nil); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("victim: %s", dns.RcodeToString[m.Rcode])
	}
	reload := func(corefile string) {
		t.Helper()
		cfg, err := parse(caddy.NewTestController("dns", corefile))
		if err != nil {
			t.Fatal(err)
		}
		v.pools[0].configure(cfg, time.Now())
	}
	reload(ownCorefile) // the same configuration keeps both
	if got := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)); len(got) != 2 {
		t.Fatalf("after an unchanged reload: %v", got)
	}
	reload(`vlmcs example.org {
	approve *.example.org 192.0.2.0/24
	unsigned 192.0.2.0/24
	key k. c2VjcmV0
	grant k. kms2.example.org
	probe off
}`)
	got := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV))
	if len(got) != 1 || !got["victim.example.org.:1688"] {
		t.Errorf("after the grant went: %v, want victim alone", got)
	}
	if _, ok := v.pools[0].hosts["kms1.example.org."]; ok {
		t.Error("kms1's addresses kept after its key's grant went")
	}
	reload(`vlmcs example.org {
	approve *.example.org 192.0.2.0/24
	unsigned 198.51.100.0/24
	probe off
}`)
	if got := srvTargets(query(t, v, "_vlmcs._tcp.example.org.", dns.TypeSRV)); len(got) != 0 {
		t.Errorf("after the unsigned network went: %v, want none", got)
	}
}

// TestKeyBoundToAlgorithm: a verified signature under another algorithm than the key's is
// NOTAUTH BADKEY.
func TestKeyBoundToAlgorithm(t *testing.T) {
	v := newTest(t, `vlmcs example.org {
	approve kms1.example.org 127.0.0.0/8
	key k. c2VjcmV0 hmac-sha512
	grant k. kms1.example.org
	probe off
}`)
	for _, tc := range []struct {
		alg   string
		rcode int
		err   uint16
	}{{dns.HmacSHA256, dns.RcodeNotAuth, dns.RcodeBadKey}, {dns.HmacSHA1, dns.RcodeNotAuth, dns.RcodeBadKey}, {dns.HmacSHA512, dns.RcodeSuccess, 0}} {
		m := regMsg("example.org.", "kms1.example.org.", "127.0.0.1", 1688, 0)
		m.SetTsig("k.", tc.alg, 300, time.Now().Unix())
		b, _, err := dns.TsigGenerate(m, "c2VjcmV0", "", false)
		if err != nil {
			t.Fatal(err)
		}
		signed := new(dns.Msg)
		if err := signed.Unpack(b); err != nil {
			t.Fatal(err)
		}
		r := send(t, v, signed, "127.0.0.1", true, nil) // the MAC verified (same secret)
		if r.Rcode != tc.rcode || r.IsTsig() == nil || r.IsTsig().Error != tc.err {
			t.Errorf("%s: %s %v, want %s TSIG error %d", tc.alg, dns.RcodeToString[r.Rcode], r.IsTsig(), dns.RcodeToString[tc.rcode], tc.err)
		}
	}
}
