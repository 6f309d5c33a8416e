package serve

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/kmsdns/kmsdns/responder/publish"
)

// TestRegistrationStatus: /status has one entry per zone and server.
func TestRegistrationStatus(t *testing.T) {
	rc := RegisterConfig{
		Publish: publish.Config{Servers: []string{"127.0.0.1:53", "127.0.0.2:53"}, Port: 1688, TTL: 60,
			Lease: publish.DefaultLease, Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.5")}},
		Zones: []Zone{{"a.test", "kms1.a.test."}, {"b.test", "kms1.b.test."}},
	}
	reg, err := newRegistration(rc, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.zones) != 2 || reg.zones[0].target != "kms1.a.test." || reg.zones[1].target != "kms1.b.test." {
		t.Fatalf("zones = %+v", reg.zones)
	}
	if st := reg.status(); len(st) != 4 {
		t.Fatalf("status has %d entries, want 4 (2 zones × 2 servers)", len(st))
	}
}
