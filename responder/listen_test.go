package main

import (
	"strings"
	"testing"
)

func TestServeConfigListenAndLedger(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		file       string
		wantErr    string
		wantListen []string
		wantLedger bool
	}{
		{"defaults", []string{"--group", "g"}, "", "", nil, true},
		{"wildcard flag", []string{"--group", "g", "--listen", ":16888", "--listen", "[::1]:1688"}, "", "", []string{":16888", "[::1]:1688"}, true},
		{"wildcard file", []string{"--config", "kms.yaml"}, "groups: [g]\nlisten: [':1688']\n", "", []string{":1688"}, true},
		{"port zero", []string{"--group", "g", "--listen", ":0"}, "", `--listen: ":0" is not ADDRESS:PORT or :PORT`, nil, true},
		{"no port", []string{"--group", "g", "--listen", ":"}, "", `--listen: ":" is not ADDRESS:PORT or :PORT`, nil, true},
		{"ledger off flag", []string{"--group", "g", "--ledger=false"}, "", "", nil, false},
		{"ledger off file", []string{"--config", "kms.yaml"}, "groups: [g]\nledger: false\n", "", nil, false},
		{"ledger flag over file", []string{"--config", "kms.yaml", "--ledger=true"}, "groups: [g]\nledger: false\n", "", nil, true},
		{"ledger not a bool", []string{"--config", "kms.yaml"}, "groups: [g]\nledger: perhaps\n", "kms.yaml:2: ledger: want true or false, got \"perhaps\"", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServeConfig(tc.args, fakeFile(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.Listen, " ") != strings.Join(tc.wantListen, " ") || c.Ledger != tc.wantLedger {
				t.Errorf("listen %q ledger %t, want %q and %t", c.Listen, c.Ledger, tc.wantListen, tc.wantLedger)
			}
		})
	}
}
