package ledger

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestScanSegment classifies bad spots in a log segment: a crash can tear
// only the last batch of the last segment; everything else is damage.
func TestScanSegment(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	// Six frames in three batches of two: 1-2, 3-4, 5-6.
	var log []byte
	var offs []int
	for i := range 6 {
		offs = append(offs, len(log))
		a := logActivation(i, at)
		log = appendFrame(log, uint64(1+i), encodeLogActivation(nil, &a, i%2 == 1))
	}
	end := len(log)
	pad := func(b []byte) []byte { return append(b, make([]byte, preallocChunk-len(b))...) }
	tests := []struct {
		name   string
		log    []byte
		last   bool
		frames int
		want   string // "" for a tolerated tear or a clean segment
	}{
		{"clean", pad(bytes.Clone(log)), true, 6, ""},
		{"last batch torn at its end", pad(bytes.Clone(log[:end-10])), true, 5, ""},
		{"last batch with a hole, its tail written", func() []byte {
			b := pad(bytes.Clone(log))
			clear(b[offs[4] : offs[4]+20])
			return b
		}(), true, 4, ""},
		{"bit flip with a whole batch after it", func() []byte {
			b := pad(bytes.Clone(log))
			b[offs[2]+30] ^= 1
			return b
		}(), true, 2, "whole batches (through sequence 4)"},
		{"zeroed range with batches after it", func() []byte {
			b := pad(bytes.Clone(log))
			clear(b[offs[1]:offs[3]])
			return b
		}(), true, 1, "whole batches"},
		{"torn tail in a sealed segment", pad(bytes.Clone(log[:end-10])), false, 5, "sealed log segment"},
		{"cut inside a frame", bytes.Clone(log[:end-10]), true, 5, "truncated"},
		{"sequence gap", func() []byte {
			b := bytes.Clone(log[:offs[5]])
			a := logActivation(9, at)
			return pad(appendFrame(b, 9, encodeLogActivation(nil, &a, true)))
		}(), true, 5, "sequence 9 follows 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scanSegment(segment{start: 1, path: "wal-test"}, tt.log, tt.last)
			if len(sc.frames) != tt.frames {
				t.Errorf("%d frames read, want %d", len(sc.frames), tt.frames)
			}
			switch {
			case tt.want == "" && sc.damage != nil:
				t.Errorf("refused: %v", sc.damage)
			case tt.want != "" && (sc.damage == nil || !strings.Contains(sc.damage.Error(), tt.want)):
				t.Errorf("damage %v, want one saying %q", sc.damage, tt.want)
			}
		})
	}
	if sc := scanSegment(segment{start: 7, path: "wal-test"}, pad(bytes.Clone(log)), true); sc.damage == nil || !strings.Contains(sc.damage.Error(), "named for sequence 7") {
		t.Errorf("misnamed segment: %v", sc.damage)
	}
}

// TestCleanTextControl: stored text never carries control characters.
func TestCleanTextControl(t *testing.T) {
	for in, want := range map[string]string{
		"PC-1":                   "PC-1",
		"PC\n2026-12-04 fake=1":  "PC\uFFFD2026-12-04 fake=1",
		"a\x1b[31mred":           "a\uFFFD[31mred",
		"tab\there\u2028x\u0085": "tab\uFFFDhere\uFFFDx\uFFFD",
		"ünïcode ok":             "ünïcode ok",
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanText(strings.Repeat("\n", 200)); len(got) > MaxTextLen {
		t.Errorf("cleaned text is %d bytes, limit %d", len(got), MaxTextLen)
	}
}

// TestCountSetRevert: Revert takes back exactly what AddWithUndo did.
func TestCountSetRevert(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	c := NewCountSet()
	c.RaiseCap(3)
	for i := range 3 {
		c.Add(testkit.CMID(i), at.Add(time.Duration(i)*time.Minute))
	}
	before := c.Entries()
	// A new client at the cap evicts the oldest; Revert brings it back.
	isNew, u := c.AddWithUndo(testkit.CMID(9), at.Add(time.Hour))
	if !isNew || c.Len() != 3 {
		t.Fatalf("add at cap: new %v, len %d", isNew, c.Len())
	}
	c.Revert(u)
	if got := c.Entries(); len(got) != 3 || got[0] != before[0] || got[2] != before[2] {
		t.Fatalf("after revert %v, want %v", got, before)
	}
	// A known client gets its former time back.
	_, u = c.AddWithUndo(testkit.CMID(0), at.Add(2*time.Hour))
	c.Revert(u)
	if got := c.Entries(); got[0] != before[0] {
		t.Fatalf("known client after revert %v, want %v", got, before)
	}
}

// TestMissingSeqs: a quarantine reports exactly the sequence numbers it
// could not read.
func TestMissingSeqs(t *testing.T) {
	fr := func(seqs ...uint64) []frame {
		var out []frame
		for _, s := range seqs {
			out = append(out, frame{seq: s})
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		start  uint64
		frames []frame
		end    uint64
		want   string
	}{
		{"one hole, sealed segment", 1, fr(1, 2, 4, 5), 6, "3"},
		{"holes and a missing tail, sealed", 10, fr(12, 13, 17), 20, "10-11, 14-16, 18-19"},
		{"nothing missing", 1, fr(1, 2, 3), 4, "none"},
		{"newest segment", 1, fr(1, 3), 0, "2, any from 4 on that the damage hid at the end of the newest segment"},
		{"no frame read", 5, nil, 9, "5-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := missingSeqs(tt.start, tt.frames, tt.end); got != tt.want {
				t.Errorf("missingSeqs = %q, want %q", got, tt.want)
			}
		})
	}
}
