package publish

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

// BenchmarkRegisterMessage measures building, signing and packing one
// register/refresh update, the per-refresh cost on the responder.
func BenchmarkRegisterMessage(b *testing.B) {
	s, err := Config{
		Servers:   []string{"127.0.0.1:53"},
		Zone:      "example.test",
		Target:    "kms1.example.test",
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
		Key:       &tsigkey.Key{Name: testKeyName, Algorithm: "hmac-sha256", Secret: testSecret},
	}.validate()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := s.registerMsg()
		if _, _, err := dns.TsigGenerate(m, s.key.Secret, "", false); err != nil {
			b.Fatal(err)
		}
	}
}
