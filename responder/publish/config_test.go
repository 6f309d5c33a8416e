package publish

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

func TestNewValidates(t *testing.T) {
	ok := func() Config {
		return Config{
			Servers: []string{"127.0.0.1:53"},
			Zone:    "example.test",
			Target:  "kms1.example.test",
			Key:     &tsigkey.Key{Name: "k", Algorithm: "hmac-sha256", Secret: testSecret},
		}
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "ok", mod: func(*Config) {}},
		{name: "no servers", mod: func(c *Config) { c.Servers = nil }, wantErr: "no DNS server"},
		{name: "empty server", mod: func(c *Config) { c.Servers = []string{""} }, wantErr: `server "": empty address`},
		{name: "bad port", mod: func(c *Config) { c.Servers = []string{"127.0.0.1:0"} }, wantErr: `port "0" is not 1-65535`},
		{name: "port range", mod: func(c *Config) { c.Servers = []string{"ns:70000"} }, wantErr: `port "70000" is not 1-65535`},
		{name: "duplicate", mod: func(c *Config) { c.Servers = []string{"127.0.0.1", "127.0.0.1:53"} }, wantErr: `server "127.0.0.1:53" is listed twice`},
		{name: "bad bracket", mod: func(c *Config) { c.Servers = []string{"[::1"} }, wantErr: `server "[::1"`},
		{name: "no zone", mod: func(c *Config) { c.Zone = "" }, wantErr: "zone is empty"},
		{name: "root zone", mod: func(c *Config) { c.Zone = "." }, wantErr: "zone must not be the root"},
		{name: "bad zone", mod: func(c *Config) { c.Zone = "a..b" }, wantErr: `zone "a..b" is not a valid domain name`},
		{name: "space", mod: func(c *Config) { c.Target = "kms 1.example.test" }, wantErr: "white space"},
		{name: "target outside", mod: func(c *Config) { c.Target = "kms1.example.org" }, wantErr: "target kms1.example.org. is not inside zone example.test."},
		{name: "target suffix trick", mod: func(c *Config) { c.Target = "kms1.badexample.test" }, wantErr: "is not inside zone"},
		{name: "target apex", mod: func(c *Config) { c.Target = "EXAMPLE.test." }, wantErr: "is the zone apex"},
		{name: "target in service", mod: func(c *Config) { c.Target = "x._vlmcs._tcp.example.test" }, wantErr: "is inside _vlmcs._tcp.example.test."},
		{name: "zero addr", mod: func(c *Config) { c.Addresses = []netip.Addr{{}} }, wantErr: "invalid (zero) address"},
		{name: "wildcard", mod: func(c *Config) { c.Addresses = []netip.Addr{netip.MustParseAddr("::")} }, wantErr: "address :: is unspecified"},
		{name: "mapped wildcard", mod: func(c *Config) { c.Addresses = []netip.Addr{netip.MustParseAddr("::ffff:0.0.0.0")} }, wantErr: "unspecified"},
		{name: "multicast", mod: func(c *Config) { c.Addresses = []netip.Addr{netip.MustParseAddr("224.0.0.1")} }, wantErr: "multicast"},
		{name: "zone id", mod: func(c *Config) { c.Addresses = []netip.Addr{netip.MustParseAddr("fe80::1%eth0")} }, wantErr: "has a zone"},
		{name: "dup addr", mod: func(c *Config) {
			c.Addresses = []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("::ffff:10.0.0.1")}
		}, wantErr: "address 10.0.0.1 is listed twice"},
		{name: "source wildcard", mod: func(c *Config) { c.Source = netip.MustParseAddr("0.0.0.0") }, wantErr: "source address 0.0.0.0 is not a unicast"},
		{name: "ttl", mod: func(c *Config) { c.TTL = 1 << 31 }, wantErr: "TTL 2147483648 exceeds"},
		{name: "short lease", mod: func(c *Config) { c.Lease = 500 * time.Millisecond }, wantErr: "shorter than one second"},
		{name: "fractional lease", mod: func(c *Config) { c.Lease = 1500 * time.Millisecond }, wantErr: "not a whole number of seconds"},
		{name: "huge lease", mod: func(c *Config) { c.Lease = (1 << 32) * time.Second }, wantErr: "exceeds 2^32-1 seconds"},
		{name: "bad key", mod: func(c *Config) { c.Key.Secret = "short" }, wantErr: "secret is not base64"},
		{name: "bad alg", mod: func(c *Config) { c.Key.Algorithm = "md5" }, wantErr: "unknown TSIG algorithm (want hmac-sha1"},
		{name: "negative timeout", mod: func(c *Config) { c.Timeout = -1 }, wantErr: "timeout -1ns is negative"},
		{name: "backoff order", mod: func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }, wantErr: "maximum backoff 1s is below the minimum 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mod(&c)
			_, err := New(c)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := Config{
		Servers:   []string{"::1", "ns.example.test", "[::1]:5353"},
		Zone:      "Example.Test",
		Target:    "kms1.example.test",
		Addresses: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.1")},
	}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"[::1]:53", "ns.example.test:53", "[::1]:5353"}; strings.Join(s.servers, ",") != strings.Join(want, ",") {
		t.Errorf("servers %q, want %q", s.servers, want)
	}
	if s.zone != "example.test." || s.target != "kms1.example.test." || s.service != "_vlmcs._tcp.example.test." {
		t.Errorf("names %q %q %q", s.zone, s.target, s.service)
	}
	if s.port != DefaultPort || s.ttl != DefaultTTL || s.lease != uint32(DefaultLease/time.Second) ||
		s.timeout != DefaultTimeout || s.minBackoff != DefaultMinBackoff || s.maxBackoff != DefaultMaxBackoff {
		t.Errorf("defaults not applied: %+v", s)
	}
	if s.key != nil || s.log == nil || s.clock == nil {
		t.Errorf("key %v, logger %v, clock %v", s.key, s.log, s.clock)
	}
	if len(s.addrs) != 1 || !s.addrs[0].Is4() {
		t.Errorf("mapped address not unmapped: %v", s.addrs)
	}
}

func TestBackoffAndRefreshBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	wantCap := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, c := range wantCap {
		c *= time.Millisecond
		if got := backoff(i+1, lo, hi, 0); got != c/2 {
			t.Errorf("backoff(%d, r=0) = %v, want %v", i+1, got, c/2)
		}
		if got := backoff(i+1, lo, hi, 0.999999); got > c || got < c*99/100 {
			t.Errorf("backoff(%d, r~1) = %v, want just under %v", i+1, got, c)
		}
	}
	if got := backoff(1000, lo, hi, 0.5); got != 750*time.Millisecond {
		t.Errorf("backoff(1000) = %v, want the capped 750ms", got)
	}
	if got := refreshDelay(100*time.Second, 0); got != 50*time.Second {
		t.Errorf("refreshDelay(r=0) = %v", got)
	}
	if got := refreshDelay(100*time.Second, 0.999999); got < 40*time.Second || got > 41*time.Second {
		t.Errorf("refreshDelay(r~1) = %v", got)
	}
}
