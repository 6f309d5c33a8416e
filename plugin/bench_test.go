package vlmcs

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// discard is a ResponseWriter that packs the reply, as the server would, and drops it.
type discard struct {
	test.ResponseWriter
	buf []byte
}

func (d *discard) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(d.buf)
	d.buf = b[:cap(b)] // miekg/dns sizes by len
	return err
}

// BenchmarkServeDNS measures the publish-zone fast path: one SRV query, three members with glue.
func BenchmarkServeDNS(b *testing.B) {
	v := newTest(b, `vlmcs example.org {
	approve *.example.org
	static kms1.example.org 1688 0 0 192.0.2.1
	static kms2.example.org 1688 0 0 192.0.2.2
	static kms3.example.org 1688 0 0 192.0.2.3
	probe off
}`)
	r := new(dns.Msg)
	r.SetQuestion("_VLMCS._TCP.example.org.", dns.TypeSRV)
	w := &discard{buf: make([]byte, 512)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.ServeDNS(ctx, w, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConstantAnswer is the reference: a handler that writes a fixed three-member answer
// (what the "constant plugin" does), packed the same way.
func BenchmarkConstantAnswer(b *testing.B) {
	v := newTest(b, `vlmcs example.org {
	approve *.example.org
	static kms1.example.org 1688 0 0 192.0.2.1
	static kms2.example.org 1688 0 0 192.0.2.2
	static kms3.example.org 1688 0 0 192.0.2.3
	probe off
}`)
	a := v.pools[0].ans.Load()
	r := new(dns.Msg)
	r.SetQuestion("_VLMCS._TCP.example.org.", dns.TypeSRV)
	w := &discard{buf: make([]byte, 512)}
	b.ReportAllocs()
	for b.Loop() {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer, m.Extra = a.srv, a.extra
		if err := w.WriteMsg(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOtherQueries measures what vlmcs adds to a query it passes on (the cost on
// the other queries of its zones): an A query in a publish zone and in a scrub zone, answered
// by a next handler that writes a fixed answer, against that handler called directly.
func BenchmarkOtherQueries(b *testing.B) {
	v := newTest(b, `vlmcs example.org corp.test {
	approve kms1.example.org 192.0.2.0/24
	static kms1.example.org 1688 0 0 192.0.2.1
	scrub corp.test
	probe off
}`)
	ans := test.A("www.example.org. 30 IN A 192.0.2.10")
	next := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{ans}
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	v.Next = next
	for _, qname := range []string{"www.example.org.", "www.corp.test."} {
		r := new(dns.Msg)
		r.SetQuestion(qname, dns.TypeA)
		w := &discard{buf: make([]byte, 512)}
		ctx := context.Background()
		for _, h := range []struct {
			name string
			h    plugin.Handler
		}{{"vlmcs", v}, {"next-only", next}} {
			b.Run(qname+"/"+h.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := h.h.ServeDNS(ctx, w, r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
