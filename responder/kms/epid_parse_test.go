package kms

import (
	"strings"
	"testing"
)

func TestParseEPID(t *testing.T) {
	good := "03612-04919-000-123456-03-1033-26100.0000-0452026"
	e, err := ParseEPID(good)
	if err != nil {
		t.Fatal(err)
	}
	want := EPID{Platform: 3612, Group: 4919, KeyID: 123456, Channel: 3, LCID: 1033, Build: 26100, DayOfYear: 45, Year: 2026}
	if e != want {
		t.Fatalf("parsed %+v, want %+v", e, want)
	}
	if e.String() != good {
		t.Fatalf("String() = %q", e.String())
	}
	tests := []struct{ in, want string }{
		{"", "has 1 dash-separated parts"},
		{strings.Repeat("1", 65), "limit 64"},
		{"03612-04919-000-123456-03-1033-26100-0452026", "does not end in .0000"},
		{"3612-04919-000-123456-03-1033-26100.0000-0452026", "platform ID \"3612\" must have 5 digits"},
		{"03612-0491x-000-123456-03-1033-26100.0000-0452026", "group ID \"0491x\" is not all digits"},
		{"03612-04919-0000-23456-03-1033-26100.0000-0452026", "key ID (first part)"},
		{"03612-04919-000-123456-3-1033-26100.0000-0452026", "licence channel"},
		{"03612-04919-000-123456-03--26100.0000-0452026", "LCID \"\" must have 1 to 5 digits"},
		{"03612-04919-000-123456-03-1033-.0000-0452026", "build"},
		{"03612-04919-000-123456-03-1033-26100.0000-045202", "must have 7 digits"},
		{"03612-04919-000-123456-03-1033-26100.0000-3672026", "not a day of the year"},
		{"03612-04919-000-123456-03-1033-26100.0000-0002026", "not a day of the year"},
		{"03612-04919-000-123456-03-01033-26100.0000-0452026", "not in canonical form"},
		{"03612-04919-000-123456-03-1033-+2610.0000-0452026", "not all digits"},
		{"03612-04919-000-123456-03-1033-26100.0000-0452026-", "has 9 dash-separated parts"},
	}
	for _, tt := range tests {
		_, err := ParseEPID(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseEPID(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

// FuzzParseEPID checks that the parser never panics and that what it
// accepts formats back to the same text.
func FuzzParseEPID(f *testing.F) {
	f.Add("03612-04919-000-123456-03-1033-26100.0000-0452026")
	f.Add("55041-00206-271-123456-03-1031-7601.0000-3652011")
	f.Add("")
	f.Add("-------")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEPID(s)
		if err != nil {
			return
		}
		if e.String() != s {
			t.Fatalf("accepted %q but formats it as %q", s, e.String())
		}
	})
}
