package kms

import (
	"fmt"
	"strconv"
	"strings"
)

// EPID is the parsed form of a KMS host's extended product ID, the string a
// host returns in every response:
//
//	PPPPP-GGGGG-KKK-KKKKKK-CC-LCID-BUILD.0000-DDDYYYY
//
// platform ID (5 digits), host key group ID (5 digits), key ID (9 digits
// split 3+6), licence channel (2 digits, 03 = volume), locale ID and host
// build (decimal), then the day of the year (3 digits) and year (4 digits)
// of the host key's activation.
type EPID struct {
	Platform  int
	Group     int
	KeyID     int64
	Channel   int
	LCID      int
	Build     int
	DayOfYear int
	Year      int
}

// ChannelVolume is the licence channel of KMS host keys.
const ChannelVolume = 3

// maxEPIDLen bounds what ParseEPID reads; real ePIDs are about 49
// characters and the protocol carries at most 64.
const maxEPIDLen = 64

// String formats e in the canonical ePID layout.
func (e EPID) String() string {
	return fmt.Sprintf("%05d-%05d-%03d-%06d-%02d-%d-%d.0000-%03d%04d",
		e.Platform, e.Group, e.KeyID/1000000, e.KeyID%1000000, e.Channel, e.LCID, e.Build, e.DayOfYear, e.Year)
}

// ParseEPID parses an ePID in the layout described at EPID, rejecting
// anything else with an error naming the offending part.
func ParseEPID(s string) (EPID, error) {
	if len(s) > maxEPIDLen {
		return EPID{}, fmt.Errorf("ePID is %d bytes long, limit %d", len(s), maxEPIDLen)
	}
	parts := strings.Split(s, "-")
	if len(parts) != 8 {
		return EPID{}, fmt.Errorf("ePID %q has %d dash-separated parts, want 8 (PPPPP-GGGGG-KKK-KKKKKK-03-LCID-BUILD.0000-DDDYYYY)", s, len(parts))
	}
	build, ok := strings.CutSuffix(parts[6], ".0000")
	if !ok {
		return EPID{}, fmt.Errorf("ePID %q: part 7 %q does not end in .0000", s, parts[6])
	}
	if len(parts[7]) != 7 {
		return EPID{}, fmt.Errorf("ePID %q: activation date %q must have 7 digits (DDDYYYY)", s, parts[7])
	}
	fields := []struct {
		name     string
		text     string
		min, max int // number of digits
	}{
		{"platform ID", parts[0], 5, 5},
		{"group ID", parts[1], 5, 5},
		{"key ID (first part)", parts[2], 3, 3},
		{"key ID (second part)", parts[3], 6, 6},
		{"licence channel", parts[4], 2, 2},
		{"LCID", parts[5], 1, 5},
		{"build", build, 1, 6},
		{"activation day", parts[7][:3], 3, 3},
		{"activation year", parts[7][3:], 4, 4},
	}
	var v [9]int64
	for i, f := range fields {
		if len(f.text) < f.min || len(f.text) > f.max {
			if f.min == f.max {
				return EPID{}, fmt.Errorf("ePID %q: %s %q must have %d digits", s, f.name, f.text, f.min)
			}
			return EPID{}, fmt.Errorf("ePID %q: %s %q must have %d to %d digits", s, f.name, f.text, f.min, f.max)
		}
		for j := 0; j < len(f.text); j++ {
			if f.text[j] < '0' || f.text[j] > '9' {
				return EPID{}, fmt.Errorf("ePID %q: %s %q is not all digits", s, f.name, f.text)
			}
		}
		n, err := strconv.ParseInt(f.text, 10, 64)
		if err != nil { // unreachable with at most 6 digits; kept for safety
			return EPID{}, fmt.Errorf("ePID %q: %s %q: %v", s, f.name, f.text, err)
		}
		v[i] = n
	}
	e := EPID{
		Platform:  int(v[0]),
		Group:     int(v[1]),
		KeyID:     v[2]*1000000 + v[3],
		Channel:   int(v[4]),
		LCID:      int(v[5]),
		Build:     int(v[6]),
		DayOfYear: int(v[7]),
		Year:      int(v[8]),
	}
	leap := e.Year%4 == 0 && (e.Year%100 != 0 || e.Year%400 == 0)
	switch {
	case e.DayOfYear < 1 || e.DayOfYear > 366 || e.DayOfYear == 366 && !leap:
		return EPID{}, fmt.Errorf("ePID %q: activation day %03d is not a day of the year %04d", s, e.DayOfYear, e.Year)
	case e.LCID < 1 || e.LCID > 0xFFFF:
		return EPID{}, fmt.Errorf("ePID %q: LCID %d out of range 1..65535", s, e.LCID)
	case e.Build == 0:
		return EPID{}, fmt.Errorf("ePID %q: host build 0", s)
	}
	if e.String() != s {
		// Leading zeros in LCID or build would not survive formatting.
		return EPID{}, fmt.Errorf("ePID %q is not in canonical form (want %q)", s, e.String())
	}
	return e, nil
}
