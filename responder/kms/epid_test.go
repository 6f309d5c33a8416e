package kms

import "testing"

func TestParseEPIDRanges(t *testing.T) {
	good := []string{
		"03612-00206-555-926461-03-1088-14393.0000-0172022",
		"55041-00096-199-799188-03-1033-7601.0000-3652010",
		"06401-00206-271-395032-03-1033-9600.0000-3662024", // day 366 of a leap year
		"03612-04919-123-456789-03-1-26100.0000-0012025",
	}
	for _, s := range good {
		if _, err := ParseEPID(s); err != nil {
			t.Errorf("ParseEPID(%q): %v", s, err)
		}
	}
	bad := []string{
		"",
		"03612-00206-555-926461-03-1088-14393.0000-017202",   // short year
		"03612-00206-555-926461-03-1088-14393.0000-01720221", // trailing
		"0361-00206-555-926461-03-1088-14393.0000-0172022",   // short platform
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
		if _, err := ParseEPID(s); err == nil {
			t.Errorf("ParseEPID(%q) accepted", s)
		}
	}
}

// A retail channel parses (audit reports it); it is not ChannelVolume.
func TestParseEPIDRetailChannel(t *testing.T) {
	e, err := ParseEPID("03612-00206-555-926461-02-1088-14393.0000-0172022")
	if err != nil {
		t.Fatal(err)
	}
	if e.Channel == ChannelVolume {
		t.Fatalf("channel 02 parsed as volume")
	}
}
