package publish

import (
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

// FuzzUpdateAnswer feeds packed UPDATE answers (what a server, or anyone
// spoofing one over UDP, can send) to the answer checks: a success is
// only ever a NOERROR UPDATE response, signed when the update was; a
// refusal's text stays bounded; never a panic.
func FuzzUpdateAnswer(f *testing.F) {
	for _, seed := range seedAnswers(f) {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			return // miekg/dns rejects it before we see it
		}
		s := &settings{lease: 60}
		if signed {
			s.key = &tsigkey.Key{Name: testKeyName, Algorithm: dns.HmacSHA256, Secret: testSecret}
		}
		rep, err := s.checkAnswer("192.0.2.53:53", "udp", r)
		if err == nil {
			if !r.Response || r.Opcode != dns.OpcodeUpdate || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("accepted %v", r)
			}
			if signed && r.IsTsig() == nil {
				t.Fatal("accepted an unsigned answer to a signed update")
			}
			_ = time.Duration(rep.granted) * time.Second
			return
		}
		var rc *RcodeError
		if errors.As(err, &rc) {
			if rc.Rcode == dns.RcodeSuccess || len(rc.Reason) > maxReason+len("...") {
				t.Fatalf("bad refusal %+v", rc)
			}
			_ = rc.Error()
		}
	})
}

// seedAnswers packs typical answers to an update.
func seedAnswers(tb testing.TB) [][]byte {
	q := new(dns.Msg)
	q.SetUpdate("example.test.")
	pack := func(mod func(r *dns.Msg)) []byte {
		r := new(dns.Msg)
		r.SetReply(q)
		mod(r)
		b, err := r.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	opt := func(o ...dns.EDNS0) *dns.OPT {
		return &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: o}
	}
	tsig := func(errCode uint16) *dns.TSIG {
		return &dns.TSIG{Hdr: dns.RR_Header{Name: testKeyName, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: dns.HmacSHA256, Fudge: 300, TimeSigned: 1790000000, MACSize: 32,
			MAC: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", Error: errCode}
	}
	return [][]byte{
		pack(func(r *dns.Msg) {
			r.Extra = []dns.RR{opt(&dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: 30}), tsig(0)}
		}),
		pack(func(r *dns.Msg) { r.Extra = []dns.RR{opt(&dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: 30, KeyLease: 60})} }),
		pack(func(r *dns.Msg) {
			r.Rcode = dns.RcodeRefused
			r.Extra = []dns.RR{opt(&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeProhibited, ExtraText: "target not approved"})}
		}),
		pack(func(r *dns.Msg) { r.Rcode = dns.RcodeNotAuth; r.Extra = []dns.RR{tsig(dns.RcodeBadTime)} }),
		pack(func(r *dns.Msg) { r.Rcode = dns.RcodeNotZone }),
	}
}
