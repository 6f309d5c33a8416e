package kms

import (
	"math"
	"testing"
	"time"
)

func TestFileTime(t *testing.T) {
	tests := []struct {
		t  time.Time
		ft uint64
	}{
		{time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Unix(0, 0), 116444736000000000},
		// The transcripts' client time.
		{time.Date(2026, 11, 22, 7, 53, 40, 0, time.UTC), 134398076200000000},
		{time.Date(2026, 11, 22, 7, 53, 40, 1234567, time.UTC), 134398076200012345},
	}
	for _, tc := range tests {
		if got := TimeToFileTime(tc.t); got != tc.ft {
			t.Errorf("TimeToFileTime(%v) = %d, want %d", tc.t, got, tc.ft)
		}
		back := FileTimeToTime(tc.ft)
		if !back.Equal(tc.t.Truncate(100)) || back.Location() != time.UTC {
			t.Errorf("FileTimeToTime(%d) = %v, want %v", tc.ft, back, tc.t)
		}
	}
	if got := TimeToFileTime(time.Date(1600, 12, 31, 0, 0, 0, 0, time.UTC)); got != 0 {
		t.Errorf("before 1601: %d, want 0", got)
	}
	if got := TimeToFileTime(time.Date(70000, 1, 1, 0, 0, 0, 0, time.UTC)); got != math.MaxUint64 {
		t.Errorf("year 70000: %d, want MaxUint64", got)
	}
	if got := TimeToFileTime(FileTimeToTime(math.MaxUint64)); got != math.MaxUint64 {
		t.Errorf("MaxUint64 round trip: %d", got)
	}
	var r Request
	now := time.Now()
	r.SetTime(now)
	if !r.Time().Equal(now.Truncate(100)) {
		t.Errorf("SetTime/Time: %v vs %v", r.Time(), now)
	}
}

func TestValidateEPID(t *testing.T) {
	good := []string{
		"03612-00206-555-926461-03-1088-14393.0000-0172022",
		"55041-00096-199-799188-03-1033-7601.0000-3652010",
		"06401-00206-271-395032-03-1033-9600.0000-3662024", // day 366 of a leap year
		"03612-04919-123-456789-03-1-26100.0000-0012025",
	}
	for _, s := range good {
		if err := ValidateEPID(s); err != nil {
			t.Errorf("ValidateEPID(%q): %v", s, err)
		}
	}
	bad := []string{
		"",
		"03612-00206-555-926461-03-1088-14393.0000-017202",   // short year
		"03612-00206-555-926461-03-1088-14393.0000-01720221", // trailing
		"0361-00206-555-926461-03-1088-14393.0000-0172022",   // short platform
		"03612-00206-555-926461-02-1088-14393.0000-0172022",  // retail channel
		"03612-00206-555-926461-03-0-14393.0000-0172022",     // LCID 0
		"03612-00206-555-926461-03-99999-14393.0000-0172022", // LCID > 65535
		"03612-00206-555-926461-03-1088-0.0000-0172022",      // build 0
		"03612-00206-555-926461-03-1088-14393.0001-0172022",  // suffix
		"03612-00206-555-926461-03-1088-14393.0000-0002022",  // day 0
		"03612-00206-555-926461-03-1088-14393.0000-3662023",  // day 366, common year
		"03612-00206-555-926461-03-1088-14393.0000-3672024",  // day 367
		"03612-00206-555-92646a-03-1088-14393.0000-0172022",  // letter
		"03612-00206-555-926461-03-1088-14393.0000-0172022\x00",
	}
	for _, s := range bad {
		if err := ValidateEPID(s); err == nil {
			t.Errorf("ValidateEPID(%q) accepted", s)
		}
	}
}

func TestDecodeUTF16(t *testing.T) {
	tests := []struct {
		in   []uint16
		want string
	}{
		{[]uint16{'a', 'b', 0, 'c'}, "ab"},
		{[]uint16{0xD835, 0xDD18, 'x'}, "𝔘x"},
		{[]uint16{0xD835, 'x'}, "\uFFFDx"}, // unpaired high surrogate
		{[]uint16{0xDD18}, "\uFFFD"},        // lone low surrogate
		{[]uint16{'a', 0xD835}, "a\uFFFD"},  // high surrogate at the end
		{nil, ""},
	}
	for _, tc := range tests {
		var b []byte
		for _, u := range tc.in {
			b = appendU16(b, u)
		}
		if got := decodeUTF16(b); got != tc.want {
			t.Errorf("decodeUTF16(%x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
