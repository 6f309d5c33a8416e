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
