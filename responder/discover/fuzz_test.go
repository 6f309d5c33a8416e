package discover

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/responder/kms"
)

// FuzzLookupResponse feeds packed DNS replies to the SRV reply handling:
// every reply either yields targets within the limits, each with a name,
// valid addresses and a place in Order's output, or is rejected with an
// error; never a panic.
func FuzzLookupResponse(f *testing.F) {
	q := newQuery("_VLMCS._TCP.example.test.", dns.TypeSRV)
	for _, seed := range seedReplies(f, q) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			return // miekg/dns rejects it before we see it
		}
		r.Id = q.Id // let the fuzzer past the ID check
		targets, err := parseSRVReply(q, r)
		if err != nil {
			var le *LookupError
			if errors.As(err, &le) && le.Code == kms.OK {
				t.Fatalf("LookupError without a code: %v", err)
			}
			if len(targets) != 0 {
				t.Fatalf("error %v with %d targets", err, len(targets))
			}
			return
		}
		if len(targets) == 0 || len(targets) > maxTargets {
			t.Fatalf("%d targets", len(targets))
		}
		for _, tg := range targets {
			if tg.Name == "" || tg.Name == "." || len(tg.Addrs) > maxAddrs {
				t.Fatalf("bad target %+v", tg)
			}
			for _, a := range tg.Addrs {
				if !a.IsValid() || a.IsUnspecified() || a.Is4In6() {
					t.Fatalf("bad address %v in %+v", a, tg)
				}
			}
		}
		ordered := Order(targets, rand.New(rand.NewPCG(1, 2)))
		if len(ordered) != len(targets) {
			t.Fatalf("Order lost targets: %d of %d", len(ordered), len(targets))
		}
		for i := 1; i < len(ordered); i++ {
			if ordered[i-1].Priority > ordered[i].Priority {
				t.Fatalf("Order out of priority order: %+v", ordered)
			}
		}
	})
}

// seedReplies packs typical replies to q: glue, no glue, NXDOMAIN, NODATA,
// a "." target, a CNAME, truncation.
func seedReplies(tb testing.TB, q *dns.Msg) [][]byte {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	build := func(mod func(r *dns.Msg)) []byte {
		r := new(dns.Msg)
		r.SetReply(q)
		mod(r)
		b, err := r.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	return [][]byte{
		build(func(r *dns.Msg) {
			r.Answer = []dns.RR{rr("_VLMCS._TCP.example.test. 30 IN SRV 0 50 1688 kms1.example.test."),
				rr("_VLMCS._TCP.example.test. 30 IN SRV 1 0 1688 kms2.example.test.")}
			r.Extra = []dns.RR{rr("kms1.example.test. 30 IN A 192.0.2.1"), rr("kms1.example.test. 30 IN AAAA 2001:db8::1")}
		}),
		build(func(r *dns.Msg) { r.Rcode = dns.RcodeNameError }),
		build(func(r *dns.Msg) {
			r.Ns = []dns.RR{rr("example.test. 30 IN SOA ns.example.test. h.example.test. 1 2 3 4 5")}
		}),
		build(func(r *dns.Msg) { r.Answer = []dns.RR{rr("_VLMCS._TCP.example.test. 30 IN SRV 0 0 0 .")} }),
		build(func(r *dns.Msg) {
			r.Answer = []dns.RR{rr("_VLMCS._TCP.example.test. 30 IN CNAME _kms.example.test."),
				rr("_kms.example.test. 30 IN SRV 0 0 1688 kms1.example.test.")}
		}),
		build(func(r *dns.Msg) { r.Truncated = true }),
	}
}

// BenchmarkParseSRVReply measures unpacking and checking a two-target
// reply with glue.
func BenchmarkParseSRVReply(b *testing.B) {
	q := newQuery("_VLMCS._TCP.example.test.", dns.TypeSRV)
	data := seedReplies(b, q)[0]
	b.ReportAllocs()
	for b.Loop() {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			b.Fatal(err)
		}
		r.Id = q.Id
		if _, err := parseSRVReply(q, r); err != nil {
			b.Fatal(err)
		}
	}
}
