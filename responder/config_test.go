package main

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/publish"
)

func fakeFile(content string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if name != "kms.yaml" {
			return nil, os.ErrNotExist
		}
		return []byte(content), nil
	}
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		file    string
		wantErr string // substring; "" means success
	}{
		{"no group", nil, "", "no host key group configured: run `kms-responder catalog`"},
		{"flags ok", []string{"--group", "windows-server-2025", "--listen", "127.0.0.1:1688"}, "", ""},
		{"bad listen", []string{"--group", "g", "--listen", "127.0.0.1"}, "", "--listen: \"127.0.0.1\" is not ADDRESS:PORT"},
		{"interval low", []string{"--group", "g", "--activation-interval", "14"}, "", "--activation-interval: 14 minutes is outside 15-43200"},
		{"unknown flag", []string{"--bogus"}, "", "flag provided but not defined: -bogus"},
		{"stray arg", []string{"--group", "g", "extra"}, "", `unexpected argument "extra"`},
		{"file unknown key", []string{"--config", "kms.yaml"}, "groups: [g]\nlisten: ['127.0.0.1:1688']\nbogus: 1\n", "kms.yaml:3: bogus: unknown setting"},
		{"file bad value line", []string{"--config", "kms.yaml"}, "groups: [g]\n\nrenewal_interval: 99999\n", "kms.yaml:3: renewal_interval: 99999 minutes is outside 15-43200"},
		{"file nested line", []string{"--config", "kms.yaml"}, "groups: [g]\nregister:\n  servers: ['127.0.0.1:53']\n  port: 0\n  zone: example.test\n  target: kms1.example.test\n", "kms.yaml:4: register.port: 0 is not a port"},
		{"gss-tsig from the file", []string{"--config", "kms.yaml"}, "groups: [g]\nregister:\n  servers: ['127.0.0.1:53']\n  zone: corp.example\n  target: kms1\n  gss_tsig: true\n  krb5_keytab: /etc/k.keytab\n  krb5_principal: kms1-svc@CORP.EXAMPLE\n", ""},
		{"gss-tsig without a keytab", []string{"--group", "g", "--dns-server", "127.0.0.1:53", "--zone", "corp.example", "--target", "kms1", "--gss-tsig"}, "", "give --krb5-keytab and --krb5-principal"},
		{"gss-tsig and a TSIG key", []string{"--group", "g", "--dns-server", "127.0.0.1:53", "--zone", "corp.example", "--target", "kms1", "--gss-tsig", "--krb5-keytab", "k", "--krb5-principal", "p", "--tsig-key-file", "f"}, "", "a TSIG key or --gss-tsig, not both"},
		{"keytab without gss-tsig", []string{"--group", "g", "--dns-server", "127.0.0.1:53", "--zone", "corp.example", "--target", "kms1", "--krb5-keytab", "k"}, "", "go with --gss-tsig"},
		{"AD next to CoreDNS", []string{"--group", "g", "--dns-server", "127.0.0.1:53", "--zone", "kms.corp.example", "--target", "kms1", "--gss-tsig", "--krb5-keytab", "k", "--krb5-principal", "p", "--tsig-key-file", "f", "--ad-dns-server", "10.1.0.10:53", "--ad-zone", "corp.example"}, "", ""},
		{"AD server without its zone", []string{"--group", "g", "--dns-server", "127.0.0.1:53", "--zone", "corp.example", "--target", "kms1", "--gss-tsig", "--krb5-keytab", "k", "--krb5-principal", "p", "--ad-dns-server", "10.1.0.10:53"}, "", "--ad-dns-server and --ad-zone go together"},
		{"AD server without gss-tsig", []string{"--group", "g", "--dns-server", "127.0.0.1:53", "--zone", "corp.example", "--target", "kms1", "--ad-dns-server", "10.1.0.10:53", "--ad-zone", "corp.example"}, "", "go with --gss-tsig"},
		{"gss key misspelt", []string{"--config", "kms.yaml"}, "groups: [g]\nregister:\n  krb5_principl: x\n", `register.krb5_principl: unknown setting; did you mean "krb5_principal"?`},
		{"file bad duration", []string{"--config", "kms.yaml"}, "groups: [g]\nidle_timeout: soon\n", "kms.yaml:2: idle_timeout: \"soon\" is not a duration"},
		{"single value for a list", []string{"--config", "kms.yaml"}, "groups: g\nlisten: 127.0.0.1:1688\nactivation_interval: 2h\nrenewal_interval: 1440\n", ""},
		{"interval as a duration too short", []string{"--config", "kms.yaml"}, "groups: g\nactivation_interval: 5m\n", "kms.yaml:2: activation_interval: 5 minutes is outside 15-43200"},
		{"interval not minutes", []string{"--config", "kms.yaml"}, "groups: g\nactivation_interval: 90s\n", "kms.yaml:2: activation_interval: 90s is not a whole number of minutes"},
		{"interval flag as duration", []string{"--group", "g", "--renewal-interval", "7d"}, "", "flag -renewal-interval: \"7d\" is neither minutes (120) nor a duration (2h)"},
		{"file type error", []string{"--config", "kms.yaml"}, "groups: [g]\nmax_connections: [1]\n", "kms.yaml:2: max_connections: want a whole number, got a list"},
		{"file syntax", []string{"--config", "kms.yaml"}, "groups: [g\n", "kms.yaml:1: did not find expected"},
		{"missing file", []string{"--config", "nope.yaml"}, "", "config: file does not exist"},
		// serve reads HwID as the host does (it once refused the 0x prefix the host accepts).
		{"hwid 0x", []string{"--group", "windows-server-2025", "--hwid", "0x3A1C049600B60076"}, "", ""},
		{"max refusals over the ledger's limit", []string{"--group", "g", "--max-refusal-records", "10000001"}, "", "--max-refusal-records: 10000001 is outside 1-10000000"},
		{"bad hwid", []string{"--group", "g", "--hwid", "xyz"}, "", "--hwid: HwID \"xyz\" is not 16 hex digits"},
		{"bad client net", []string{"--group", "g", "--allow-client", "10.0.0.0/33"}, "", "is not a network"},
		{"registration needs zone", []string{"--group", "g", "--dns-server", "127.0.0.1:53"}, "", "--zone: registration needs the zone"},
		{"retention short", []string{"--group", "g", "--retention", "24h"}, "", "shorter than the 30-day counting window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServeConfig(tc.args, fakeFile(tc.file))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not a usage error", err)
			}
		})
	}
}

func TestServeConfigFlagsOverrideFile(t *testing.T) {
	file := "groups: [office-ltsc-2024]\nlisten: ['127.0.0.1:1688']\nidle_timeout: 5s\nregister:\n  servers: ['127.0.0.1:53']\n  zone: example.test\n  target: kms1.example.test\n"
	c, err := parseServeConfig([]string{"--config", "kms.yaml", "--listen", "127.0.0.2:1688", "--idle-timeout", "7s"}, fakeFile(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 1 || c.Listen[0] != "127.0.0.2:1688" {
		t.Errorf("listen = %v, want the flag's value only", c.Listen)
	}
	if time.Duration(c.IdleTimeout) != 7*time.Second {
		t.Errorf("idle timeout = %v, want 7s", c.IdleTimeout)
	}
	if len(c.Groups) != 1 || c.Groups[0] != "office-ltsc-2024" {
		t.Errorf("groups = %v, want the file's", c.Groups)
	}
	if len(c.Register.Zones) != 1 || c.Register.Zones[0] != "example.test" || c.Register.Port != 1688 {
		t.Errorf("register = %+v", c.Register)
	}
}

func TestServeHelp(t *testing.T) {
	_, err := parseServeConfig([]string{"-h"}, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
}

func FuzzServeConfigYAML(f *testing.F) {
	f.Add("groups: [g]\nlisten: ['127.0.0.1:1688']\n")
	f.Add("register:\n  servers: ['127.0.0.1:53']\n  lease: 10m\n")
	f.Add("groups: g\nactivation_interval: 2h\nregister: 1\n")
	f.Add("- a\n- b\n")
	f.Add("epid: {g: 03612-00206-555-926461-03-1033-26100.0000-0012025}\n")
	f.Fuzz(func(t *testing.T, content string) {
		if len(content) > 1<<16 {
			return
		}
		// Must never panic; errors must name the file.
		_, err := parseServeConfig([]string{"--config", "kms.yaml"}, fakeFile(content))
		if err != nil && !strings.Contains(err.Error(), "kms.yaml") && !strings.Contains(err.Error(), "--") {
			t.Fatalf("error does not say where: %v", err)
		}
	})
}

// serve's defaults are the packages' own: a setting left out of the
// config behaves as the package documents (the lease was 10m in serve
// but 2m in publish).
func TestServeDefaultsArePackageDefaults(t *testing.T) {
	c := defaultServeConfig()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"activation interval", int(c.ActivationInterval), host.DefaultActivationInterval},
		{"renewal interval", int(c.RenewalInterval), host.DefaultRenewalInterval},
		{"lcid", c.LCID, host.DefaultLCID},
		{"max connections", c.MaxConnections, dcerpc.DefaultMaxConns},
		{"per address", c.MaxConnsPerAddress, dcerpc.DefaultMaxConnsPerAddr},
		{"first pdu", time.Duration(c.FirstPDUTimeout), dcerpc.DefaultFirstPDUTimeout},
		{"idle", time.Duration(c.IdleTimeout), dcerpc.DefaultIdleTimeout},
		{"body", time.Duration(c.BodyTimeout), dcerpc.DefaultBodyTimeout},
		{"io", time.Duration(c.IOTimeout), dcerpc.DefaultIOTimeout},
		{"retention", time.Duration(c.Retention), ledger.DefaultRetention},
		{"refusals", c.MaxRefusalRecords, ledger.DefaultMaxRefusals},
		{"port", c.Register.Port, publish.DefaultPort},
		{"ttl", c.Register.TTL, publish.DefaultTTL},
		{"lease", time.Duration(c.Register.Lease), publish.DefaultLease},
		{"lease documented", time.Duration(c.Register.Lease), 10 * time.Minute},
		{"kms port", publish.DefaultPort, 1688},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: serve default %v, package default %v", tc.name, tc.got, tc.want)
		}
	}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "no host key group") {
		t.Errorf("defaults validate with %v, want only the missing group", err)
	}
}
