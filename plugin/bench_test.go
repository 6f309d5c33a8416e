package vlmcs

import (
	"context"
	"testing"

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
	d.buf = b
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
	w := &discard{buf: make([]byte, 0, 512)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.ServeDNS(ctx, w, r); err != nil {
			b.Fatal(err)
		}
	}
}
