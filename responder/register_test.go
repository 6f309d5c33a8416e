package main

import (
	"strings"
	"testing"
)

func TestTargetIn(t *testing.T) {
	tests := []struct {
		target, zone string
		zones        int
		want         string
		wantErr      string
	}{
		{"kms1", "example.test", 1, "kms1.example.test.", ""},
		{"kms1", "corp.example.", 2, "kms1.corp.example.", ""},
		{"kms1.example.test", "example.test", 1, "kms1.example.test.", ""},
		{"kms1.example.test.", "example.test", 1, "kms1.example.test.", ""},
		{"kms1.example.test", "example.test", 2, "", "host label"},
	}
	for _, tc := range tests {
		got, err := targetIn(tc.target, tc.zone, tc.zones)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("targetIn(%q, %q, %d) err = %v, want %q", tc.target, tc.zone, tc.zones, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("targetIn(%q, %q, %d) = %q, %v; want %q", tc.target, tc.zone, tc.zones, got, err, tc.want)
		}
	}
}

func TestRegistrationZones(t *testing.T) {
	file := "groups: [g]\nregister:\n  servers: ['127.0.0.1:53', '127.0.0.2:53']\n  zone: [a.test, b.test]\n  target: kms1\n  addresses: [127.0.0.5]\n"
	c, err := parseServeConfig([]string{"--config", "kms.yaml"}, fakeFile(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(tsigKeyEnv, "hmac-sha256:kms1-key:"+strings.Repeat("QUJD", 8))
	rc, err := c.registerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Zones) != 2 || rc.Zones[0].Target != "kms1.a.test." || rc.Zones[1].Target != "kms1.b.test." {
		t.Fatalf("zones = %+v", rc.Zones)
	}
	if len(rc.Publish.Servers) != 2 || rc.Publish.Key == nil || len(rc.Publish.Addresses) != 1 {
		t.Fatalf("publish settings = %+v", rc.Publish)
	}
	// A full name cannot sit in two zones.
	_, err = parseServeConfig([]string{"--config", "kms.yaml", "--target", "kms1.a.test"}, fakeFile(file))
	if err == nil || !strings.Contains(err.Error(), "host label") {
		t.Fatalf("err = %v, want the host-label rule", err)
	}
}

func TestTSIGKeyNotAFlag(t *testing.T) {
	// The secret must never be a command-line value (ps shows it).
	_, err := parseServeConfig([]string{"--group", "g", "--tsig-key", "hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
		t.Fatalf("err = %v, want --tsig-key to be unknown", err)
	}
}
