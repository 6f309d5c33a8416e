package kms

import (
	"strings"
	"testing"
)

// TestHRESULTTable checks the one table of names: every code the project
// reports has a name, a metric label and a meaning, and the DNS response
// codes follow Windows' HRESULT_FROM_WIN32(9000 + rcode).
func TestHRESULTTable(t *testing.T) {
	for h, info := range hresults {
		if info.name == "" || info.label == "" || info.meaning == "" {
			t.Errorf("0x%08X: incomplete entry %+v", uint32(h), info)
		}
		if !strings.Contains(h.Error(), info.name) {
			t.Errorf("0x%08X: Error() %q lacks the name", uint32(h), h.Error())
		}
	}
	for rcode, h := range map[uint32]HRESULT{1: ErrDNSFormatError, 2: ErrDNSServerFailure, 3: ErrDNSNameNotExist, 4: ErrDNSNotImplemented, 5: ErrDNSRefused} {
		if uint32(h) != 0x80070000|(9000+rcode) {
			t.Errorf("rcode %d: 0x%08X, want HRESULT_FROM_WIN32(%d)", rcode, uint32(h), 9000+rcode)
		}
	}
	if got := HRESULT(0x80004005).Label(); got != "error" {
		t.Errorf("unknown code label %q, want error", got)
	}
	if got := OK.Error(); got != "0x00000000 (S_OK)" {
		t.Errorf("OK.Error() = %q", got)
	}
}
