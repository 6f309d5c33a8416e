package kms

import (
	"math"
	"time"
)

// FILETIME is a count of 100-nanosecond intervals since 1601-01-01 UTC.
const (
	filetimeEpochOffset = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	filetimeTicks       = 10_000_000  // ticks per second
)

// TimeToFileTime converts t to a Windows FILETIME, clamping times before 1601 to
// 0 and times beyond the year 60056 to the largest FILETIME.
func TimeToFileTime(t time.Time) uint64 {
	sec := t.Unix()
	if sec < -filetimeEpochOffset {
		return 0
	}
	s := uint64(sec + filetimeEpochOffset)
	if s > (math.MaxUint64-filetimeTicks)/filetimeTicks {
		return math.MaxUint64
	}
	return s*filetimeTicks + uint64(t.Nanosecond()/100)
}

// FileTimeToTime converts a Windows FILETIME to a UTC time.Time.
func FileTimeToTime(ft uint64) time.Time {
	sec := int64(ft/filetimeTicks) - filetimeEpochOffset
	nsec := int64(ft%filetimeTicks) * 100
	return time.Unix(sec, nsec).UTC()
}
