package audit

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		allow   []uint16
		deny    []uint16
		wantErr bool
	}{
		{nil, []uint16{1688}, []uint16{1687, 1689, 80}, false},
		{[]string{"1688", "2000-2010"}, []uint16{1688, 2000, 2005, 2010}, []uint16{1999, 2011}, false},
		{[]string{"0"}, nil, nil, true},
		{[]string{"10-1"}, nil, nil, true},
		{[]string{"65536"}, nil, nil, true},
		{[]string{"x"}, nil, nil, true},
	} {
		p, err := ParsePorts(tc.args)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePorts(%q): %v", tc.args, err)
			continue
		}
		for _, a := range tc.allow {
			if !p.Allows(a) {
				t.Errorf("%q does not allow %d", tc.args, a)
			}
		}
		for _, d := range tc.deny {
			if p.Allows(d) {
				t.Errorf("%q allows %d", tc.args, d)
			}
		}
	}
	if !(Ports{}).Allows(DefaultPort) || (Ports{}).Allows(1689) {
		t.Error("the zero Ports is not the default rule")
	}
}

func TestNotProbed(t *testing.T) {
	def := Ports{}
	for _, tc := range []struct {
		addr  string
		port  uint16
		local bool
		want  string // substring, "" for probed
	}{
		{"10.1.0.5", 1688, false, ""},
		{"10.1.0.5", 1689, false, "outside the ports rule (1688)"},
		{"127.0.0.1", 1688, false, "loopback"},
		{"127.0.0.1", 1688, true, ""},
		{"::1", 1688, false, "loopback"},
		{"::ffff:127.0.0.1", 1688, false, "loopback"},
		{"169.254.1.1", 1688, false, "link-local"},
		{"fe80::1", 1688, true, ""},
		{"224.0.0.1", 1688, true, "multicast"},
		{"ff02::1", 1688, true, "multicast"},
		{"0.0.0.0", 1688, true, "unspecified"},
		{"255.255.255.255", 1688, true, "broadcast"},
	} {
		got := notProbed(netip.MustParseAddr(tc.addr), tc.port, def, tc.local)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s:%d local=%v: %q, want %q", tc.addr, tc.port, tc.local, got, tc.want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	env, err := ParseEnvFile("env", []byte("# comment\n; also\n\nKMSDNS_DNS_PORT=53\nexport KMSDNS_AD_DNS=\"10.1.0.10:53 10.1.0.11:53\"\nQ='a b'\nC=v # note\nE=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"KMSDNS_DNS_PORT": "53", "KMSDNS_AD_DNS": "10.1.0.10:53 10.1.0.11:53", "Q": "a b", "C": "v", "E": ""}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, err := ParseEnvFile("env", []byte("OK=1\n1BAD=2\n")); err == nil || !strings.Contains(err.Error(), "env:2") {
		t.Errorf("bad name: %v, want env:2", err)
	}
	got := string(Substitute([]byte("bind {$KMSDNS_DNS_ADDR}:{%KMSDNS_DNS_PORT%} {$UNSET_KMSDNS_X}"), map[string]string{"KMSDNS_DNS_ADDR": "10.1.0.53", "KMSDNS_DNS_PORT": "53"}))
	if got != "bind 10.1.0.53:53 " {
		t.Errorf("Substitute = %q", got)
	}
}
