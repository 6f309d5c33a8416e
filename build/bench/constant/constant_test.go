package constant

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

func TestParse(t *testing.T) {
	tests := []struct {
		input   string
		wantErr string
	}{
		{"constant _vlmcs._tcp.example.test 30 {\n srv 0 0 1688 kms1.example.test 127.0.0.2\n}", ""},
		{"constant _vlmcs._tcp.example.test 30", "at least one srv"},
		{"constant _vlmcs._tcp.example.test", "Wrong argument count"},
		{"constant n 2147483648 {\n srv 0 0 1688 t 127.0.0.2\n}", "TTL"},
		{"constant n 30 {\n srv 0 0 65536 t 127.0.0.2\n}", "srv field 3"},
		{"constant n 30 {\n srv 0 0 1688 t ::1\n}", "IPv4"},
		{"constant n 30 {\n srv 0 0 1688 t\n}", "Wrong argument count"},
		{"constant n 30 {\n a t 127.0.0.2\n}", "unknown property"},
	}
	for _, tc := range tests {
		_, err := parse(caddy.NewTestController("dns", tc.input))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.input, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tc.input, err, tc.wantErr)
		}
	}
}

func TestServeDNS(t *testing.T) {
	c, err := parse(caddy.NewTestController("dns", "constant _vlmcs._tcp.example.test 30 {\n srv 1 2 1688 kms1.example.test 127.0.0.2\n}"))
	if err != nil {
		t.Fatal(err)
	}
	c.Next = test.ErrorHandler()
	tests := []struct {
		name  string
		qtype uint16
		rd    bool
		code  int // the rcode ServeDNS returns; ErrorHandler answers SERVFAIL
	}{
		{"_vlmcs._tcp.example.test.", dns.TypeSRV, true, dns.RcodeSuccess},
		{"_vlmcs._tcp.example.test.", dns.TypeSRV, false, dns.RcodeSuccess},
		{"_vlmcs._tcp.example.test.", dns.TypeA, true, dns.RcodeServerFailure},
		{"other.example.test.", dns.TypeSRV, true, dns.RcodeServerFailure},
	}
	for _, tc := range tests {
		r := new(dns.Msg)
		r.SetQuestion(tc.name, tc.qtype)
		r.Id, r.RecursionDesired = 0xbeef, tc.rd
		rec := &capture{}
		code, _ := c.ServeDNS(context.Background(), rec, r)
		if code != tc.code {
			t.Errorf("%s %d: rcode %d, want %d", tc.name, tc.qtype, code, tc.code)
			continue
		}
		if code != dns.RcodeSuccess {
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(rec.wire); err != nil {
			t.Fatalf("%s: unpacking what was written: %v", tc.name, err)
		}
		if m.Id != 0xbeef || !m.Response || !m.Authoritative || m.RecursionDesired != tc.rd {
			t.Fatalf("header of %v wrong", m)
		}
		if len(m.Answer) != 1 || len(m.Extra) != 1 {
			t.Fatalf("answer %v extra %v, want one SRV and one A", m.Answer, m.Extra)
		}
		srv, ok := m.Answer[0].(*dns.SRV)
		if !ok || srv.Priority != 1 || srv.Weight != 2 || srv.Port != 1688 || srv.Target != "kms1.example.test." || srv.Hdr.Ttl != 30 {
			t.Errorf("answer %v", m.Answer[0])
		}
		if a, ok := m.Extra[0].(*dns.A); !ok || a.A.String() != "127.0.0.2" || a.Hdr.Name != "kms1.example.test." {
			t.Errorf("glue %v", m.Extra[0])
		}
	}
}

// capture keeps the bytes the handler writes (the plugin writes wire, not a *dns.Msg).
type capture struct {
	test.ResponseWriter
	wire []byte
}

func (c *capture) Write(b []byte) (int, error) {
	c.wire = append([]byte(nil), b...)
	return len(b), nil
}
