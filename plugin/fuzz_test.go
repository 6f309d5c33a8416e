package vlmcs

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// FuzzParse feeds arbitrary Corefile text to the vlmcs parser: it must fail with an error or
// succeed, never panic or hang.
func FuzzParse(f *testing.F) {
	f.Add("vlmcs example.org {\n approve kms1.example.org\n}")
	f.Add(updCorefile)
	f.Add("vlmcs example.org {\n approve 10.0.0.0/8\n static kms1.example.org 1688 1 2 10.0.0.1\n probe 1s 1s 2 2\n lease 1h 1s 2h\n}")
	f.Add("vlmcs example.org {\n approve *.example.org\n grant k. *.example.org\n keyfile /dev/zero\n}")
	f.Add("vlmcs example.org {\n approve *.example.org\n ports 1688 1024-2000 -5 70000 3-1\n probe_rate 10\n member_limit 3 1\n}")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := parse(caddy.NewTestController("dns", in))
		if err == nil && (cfg == nil || len(cfg.zones) == 0) {
			t.Fatalf("parsed without zones: %q", in)
		}
	})
}

// FuzzUpdate feeds packed messages to the UPDATE path (as signed-and-verified, unsigned over
// TCP, and with a failed TSIG check): any message must get exactly one well-formed response.
func FuzzUpdate(f *testing.F) {
	for _, m := range fuzzSeeds() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			return
		}
		r.Opcode = dns.OpcodeUpdate
		v := newTest(t, updCorefile)
		// The directory gives the sender two names, so unsigned updates reach the pool.
		v.Next = dirHandler(map[string][]string{"kms1.example.org.": {"192.0.2.5"}, "kms2.example.org.": {"192.0.2.5", "2001:db8::5"}})
		w := &updWriter{ResponseWriter: test.ResponseWriter{RemoteIP: "192.0.2.5", TCP: mode&1 == 1}}
		if mode&2 == 2 {
			w.tsig = dns.ErrSig
		}
		rec := newRecorder(w)
		if _, err := v.ServeDNS(context.Background(), rec, r); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == nil {
			t.Fatal("no response")
		}
		if _, err := rec.Msg.Pack(); err != nil {
			t.Fatalf("response does not pack: %v", err)
		}
		// The answer built from whatever was accepted must pack too.
		q := new(dns.Msg)
		q.SetQuestion("_vlmcs._tcp.example.org.", dns.TypeSRV)
		rec = newRecorder(&test.ResponseWriter{})
		v.ServeDNS(context.Background(), rec, q)
		if _, err := rec.Msg.Pack(); err != nil {
			t.Fatalf("answer does not pack: %v", err)
		}
	})
}

// fuzzSeeds are the contract's messages and a few hostile variants.
func fuzzSeeds() []*dns.Msg {
	reg := sign(regMsg("example.org.", "kms1.example.org.", "192.0.2.5", 1688, 60), "k.")
	unsigned := regMsg("example.org.", "kms1.example.org.", "192.0.2.5", 1688, 0)
	withdraw := new(dns.Msg)
	withdraw.SetUpdate("example.org.")
	withdraw.Ns = []dns.RR{
		&dns.SRV{Hdr: dns.RR_Header{Name: "_vlmcs._tcp.example.org.", Rrtype: dns.TypeSRV, Class: dns.ClassNONE}, Port: 1688, Target: "kms1.example.org."},
		empty("kms1.example.org.", dns.ClassANY, dns.TypeA, 0),
	}
	pre := regMsg("example.org.", "kms1.example.org.", "192.0.2.5", 1688, 60)
	pre.Answer = []dns.RR{empty("kms1.example.org.", dns.ClassNONE, dns.TypeANY, 0), test.A("kms1.example.org. 0 IN A 192.0.2.5")}
	deleteAll := new(dns.Msg)
	deleteAll.SetUpdate("example.org.")
	deleteAll.Ns = []dns.RR{empty("_vlmcs._tcp.example.org.", dns.ClassANY, dns.TypeANY, 0)}
	return []*dns.Msg{reg, unsigned, withdraw, pre, deleteAll}
}

// FuzzServeDNS feeds arbitrary messages to the whole handler: a publish zone with members and a
// scrub zone whose upstream answers with approved and rogue records. Every message gets a reply
// that packs, and no rogue target survives in a scrubbed answer.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name string
		qt   uint16
	}{{"_vlmcs._tcp.example.org.", dns.TypeSRV}, {"_VLMCS._TCP.AD.example.org.", dns.TypeSRV}, {"_vlmcs._tcp.example.org.", dns.TypeANY}, {"www.example.org.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qt)
		m.SetEdns0(512, true)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil || len(r.Question) == 0 {
			return
		}
		v := newTest(t, `vlmcs example.org ad.example.org {
	approve *.example.org
	static kms1.example.org 1688 0 0 192.0.2.1
	scrub ad.example.org
	probe off
}`)
		v.Next = upstream([]dns.RR{
			test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 1688 kms1.ad.example.org."),
			test.SRV("_vlmcs._tcp.ad.example.org. 600 IN SRV 0 0 1688 rogue.example.net."),
		}, []dns.RR{test.A("rogue.example.net. 600 IN A 192.0.2.66")})
		rec := newRecorder(&updWriter{ResponseWriter: test.ResponseWriter{RemoteIP: "192.0.2.5"}})
		if _, err := v.ServeDNS(context.Background(), rec, r); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == nil {
			return // an rcode the server writes itself
		}
		if _, err := rec.Msg.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
		if r.Opcode == dns.OpcodeQuery && len(r.Question) == 1 && strings.EqualFold(r.Question[0].Name, "_vlmcs._tcp.ad.example.org.") {
			for _, rr := range append(rec.Msg.Answer, rec.Msg.Extra...) {
				if s, ok := rr.(*dns.SRV); ok && s.Target == "rogue.example.net." {
					t.Fatalf("rogue target in the reply to %v", r.Question)
				}
			}
		}
	})
}

// FuzzScrubAnswer feeds arbitrary upstream answers (aliases, DNAMEs, SRV and address records
// at any owner, in every section) to a scrub zone whose `approve` has a network rule, and
// answers the look-ups of glue-less targets from the same records. An even message ID asks the
// zone's `_vlmcs._tcp` name: the reply packs, holds no unapproved SRV target, no address of a
// kept target outside the approved network, and never hands out an alias for the question
// name. An odd one asks another name, which vlmcs passes on: the reply holds no record at a
// `_vlmcs._tcp` name of the zones and no DNAME that covers one.
func FuzzScrubAnswer(f *testing.F) {
	seeds := [][]string{
		{"_vlmcs._tcp.ad.example.org. 60 IN CNAME x.ad.example.org.", "x.ad.example.org. 60 IN SRV 0 0 1688 rogue.example.net."},
		{"_tcp.ad.example.org. 60 IN DNAME evil.example.net.", "_vlmcs.evil.example.net. 60 IN SRV 0 0 1688 kms1.ad.example.org."},
		{"_vlmcs._tcp.ad.example.org. 60 IN CNAME a.ad.example.org.", "a.ad.example.org. 60 IN CNAME _vlmcs._tcp.ad.example.org."},
		{`_vlmcs._tcp.ad.example.org. 60 IN SRV 0 0 1688 kms1\.ad.example.org.`},
		{"_vlmcs._tcp.ad.example.org. 60 IN SRV 0 0 1688 kms1.ad.example.org.", "kms1.ad.example.org. 60 IN CNAME evil.example.net.", "evil.example.net. 60 IN A 6.6.6.6"},
		{"lure.ad.example.org. 60 IN CNAME _vlmcs._tcp.ad.example.org.", "_vlmcs._tcp.ad.example.org. 60 IN SRV 0 0 1688 rogue.example.net."},
		{"_tcp.sub.ad.example.org. 60 IN DNAME attacker.test.", "kms1.ad.example.org. 60 IN A 192.0.2.1"},
	}
	for i, s := range seeds {
		for id := range 2 {
			m := new(dns.Msg)
			m.SetQuestion("_vlmcs._tcp.ad.example.org.", dns.TypeSRV)
			m.Id = uint16(id)
			for j, l := range s {
				rr, err := dns.NewRR(l)
				if err != nil {
					f.Fatal(err)
				}
				switch (i + j) % 3 { // spread the records over the sections
				case 0:
					m.Answer = append(m.Answer, rr)
				case 1:
					m.Ns = append(m.Ns, rr)
				default:
					m.Extra = append(m.Extra, rr)
				}
			}
			b, err := m.Pack()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	v := newTest(f, `vlmcs example.org ad.example.org {
	approve kms1.ad.example.org 192.0.2.0/24
	scrub ad.example.org
	probe off
}`)
	approved := netip.MustParsePrefix("192.0.2.0/24")
	f.Fuzz(func(t *testing.T, data []byte) {
		up := new(dns.Msg)
		if err := up.Unpack(data); err != nil {
			return
		}
		var all []dns.RR
		all = append(append(append(all, up.Answer...), up.Ns...), up.Extra...)
		next := upstreamSections(up.Answer, up.Ns, up.Extra)
		hosts := upstreamHosts(nil, nil, all)
		v.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			if qt := r.Question[0].Qtype; qt == dns.TypeA || qt == dns.TypeAAAA {
				return hosts.ServeDNS(ctx, w, r)
			}
			return next.ServeDNS(ctx, w, r)
		})
		passOn := up.Id&1 == 1
		r := new(dns.Msg)
		r.SetQuestion("_vlmcs._tcp.ad.example.org.", dns.TypeSRV)
		if passOn {
			r.SetQuestion("lure.ad.example.org.", dns.TypeSRV)
		}
		rec := newRecorder(&updWriter{ResponseWriter: test.ResponseWriter{RemoteIP: "192.0.2.5"}})
		if _, err := v.ServeDNS(context.Background(), rec, r); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == nil {
			t.Fatal("no reply")
		}
		if _, err := rec.Msg.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
		for _, sec := range [][]dns.RR{rec.Msg.Answer, rec.Msg.Ns, rec.Msg.Extra} {
			for _, rr := range sec {
				if d, ok := rr.(*dns.DNAME); ok && v.relatedZone(d.Hdr.Name) != "" {
					t.Fatalf("DNAME %v handed out", d)
				}
				if passOn {
					if v.srvZone(rr.Header().Name) != "" {
						t.Fatalf("record %v at a _vlmcs._tcp name in a passed-on answer", rr)
					}
					continue
				}
				if s, ok := rr.(*dns.SRV); ok && !strings.EqualFold(s.Target, "kms1.ad.example.org.") {
					t.Fatalf("unapproved target %s in the reply", s.Target)
				}
				if ip, ok := rrAddr(rr); ok && dnsname.Equal(rr.Header().Name, "kms1.ad.example.org.") && hasType(rec.Msg.Answer, dns.TypeSRV) && !approved.Contains(ip.Unmap()) {
					t.Fatalf("unapproved address %v of a kept target in the reply", rr)
				}
			}
		}
		if passOn {
			return
		}
		for _, rr := range rec.Msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, r.Question[0].Name) {
				t.Fatalf("alias %v handed out", c)
			}
			if d, ok := rr.(*dns.DNAME); ok && dnsname.Below(d.Hdr.Name, r.Question[0].Name) {
				t.Fatalf("DNAME %v over the question handed out", d)
			}
		}
	})
}

// FuzzReplayFile: the replay file parser never panics and returns only well-formed,
// unexpired entries.
func FuzzReplayFile(f *testing.F) {
	f.Add([]byte("2000 k1. abcd\n1 k2. ef\n"))
	f.Add([]byte("2000 k1. abcd"))
	f.Add([]byte("x y z\n"))
	now := time.Unix(1000, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseReplayFile("fuzz", data, now)
		if err != nil {
			return
		}
		for _, e := range got {
			if !e.expires.After(now) || !strings.HasPrefix(e.id, e.key+"/") {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
