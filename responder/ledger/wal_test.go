package ledger

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

func logActivation(i int, at time.Time) Activation {
	return Activation{Time: at, CMID: testkit.CMID(i), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
		Workstation: "PC", Source: "127.0.0.1:1", Counted: true, Cap: 50}
}

func TestActivationRoundTrip(t *testing.T) {
	a := Activation{
		Time: time.Date(2026, 11, 22, 9, 0, 0, 123, time.UTC), CMID: testkit.CMID(1), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
		SKU: testkit.CMID(2), Workstation: "Рабочая", Source: "[::1]:1688", Result: 0xC004F042, LicenseStatus: 5,
		Protocol: 6, Counted: true, Cap: MaxCap,
	}
	b := encodeActivation(nil, &a)
	got, err := DecodeActivation(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(a.Time) {
		t.Fatalf("time %v, want %v", got.Time, a.Time)
	}
	got.Time = a.Time
	if got != a {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}
	for i := 0; i < len(b); i++ {
		if _, err := DecodeActivation(b[:i]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", i)
		}
	}
	bad := []struct {
		name, field string
		mod         func([]byte)
	}{
		{"version", "version", func(b []byte) { b[0] = 9 }},
		{"zero time", "time", func(b []byte) { copy(b[1:9], make([]byte, 8)) }},
		{"flags", "flags", func(b []byte) { b[activationFixedLen-5] = 0x82 }},
		{"cap", "cap", func(b []byte) { b[activationFixedLen-4], b[activationFixedLen-3] = 0xff, 0xff }},
	}
	for _, tt := range bad {
		c := bytes.Clone(b)
		tt.mod(c)
		_, err := DecodeActivation(c)
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != tt.field {
			t.Errorf("%s: got %v, want a DecodeError in field %q", tt.name, err, tt.field)
		}
	}
}

func TestReadFrames(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var log []byte
	for i := range 3 {
		a := logActivation(i, at)
		log = appendFrame(log, uint64(10+i), encodeActivation(nil, &a))
	}
	frames, off, err := readFrames(log)
	if err != nil || off != len(log) || len(frames) != 3 || frames[2].seq != 12 || frames[1].act.CMID != testkit.CMID(1) {
		t.Fatalf("clean log: %d frames, offset %d/%d, err %v", len(frames), off, len(log), err)
	}
	padded := append(bytes.Clone(log), make([]byte, 1000)...)
	if frames, off, err := readFrames(padded); err != nil || off != len(log) || len(frames) != 3 {
		t.Fatalf("zero-filled tail: %d frames, offset %d, err %v", len(frames), off, err)
	}
	second := len(log) / 3 // all frames have the same size
	tests := []struct {
		name   string
		log    []byte
		frames int
		off    int
		want   string
	}{
		{"torn header", log[:len(log)-len(log)/3+5], 2, 2 * second, "a frame header needs 16"},
		{"torn payload", log[:len(log)-3], 2, 2 * second, "payload bytes"},
		{"bad checksum", func() []byte { b := bytes.Clone(log); b[second+20] ^= 1; return b }(), 1, second, "checksum"},
		{"huge length", func() []byte { b := bytes.Clone(log); b[second] = 0x7f; return b }(), 1, second, "exceeds 1024"},
		{"data after the end marker", append(append(bytes.Clone(log), make([]byte, 40)...), 1), 3, len(log), "after the end marker"},
		{"sequence goes back", func() []byte {
			a := logActivation(9, at)
			return appendFrame(bytes.Clone(log), 11, encodeActivation(nil, &a))
		}(), 3, len(log), "sequence 11 follows 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, off, err := readFrames(tt.log)
			if len(frames) != tt.frames || off != tt.off || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %d frames, offset %d, err %v; want %d, %d, %q", len(frames), off, err, tt.frames, tt.off, tt.want)
			}
		})
	}
}

// TestRecoverFromLog builds a log by hand, as a crash would leave it
// (acknowledged frames the store never saw, then a torn frame), and checks
// that Open applies the frames, ignores the torn tail, deletes the old
// segment and continues the sequence.
func TestRecoverFromLog(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	// A store that has applied nothing yet.
	l := openTest(t, dir, clock, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean close applies everything and removes the log.
	segs, err := listSegments(heldDir(t, dir))
	if err != nil || len(segs) != 0 {
		t.Fatalf("segments after a clean close: %v %v", segs, err)
	}
	segs = []segment{{start: 1, path: filepath.Join(dir, segmentName(1))}}
	var log []byte
	for i := range 5 {
		a := logActivation(i, clock.Now())
		log = appendFrame(log, uint64(1+i), encodeActivation(nil, &a))
	}
	a := logActivation(99, clock.Now())
	torn := appendFrame(nil, 6, encodeActivation(nil, &a))
	log = append(log, torn[:len(torn)-7]...)
	// Segments are zero-filled ahead of the frames, in whole chunks.
	log = append(log, make([]byte, preallocChunk-len(log))...)
	if err := os.WriteFile(segs[0].path, log, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, clock, Options{})
	for i := range 5 {
		if _, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows); !ok || err != nil {
			t.Fatalf("logged client %d not recovered (%v)", i, err)
		}
	}
	if _, ok, _ := l.Client(testkit.CMID(99), testkit.AppWindows); ok {
		t.Fatal("the torn frame was applied")
	}
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 5 || w.Cap != 50 {
		t.Fatalf("recovered count %+v", w)
	}
	if _, err := os.Stat(segs[0].path); !os.IsNotExist(err) {
		t.Fatalf("applied segment still there: %v", err)
	}
	if err := l.Record(context.Background(), logActivation(7, clock.Now())); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening replays nothing twice: request counts stay at one.
	l = openTest(t, dir, clock, Options{})
	c, ok, err := l.Client(testkit.CMID(3), testkit.AppWindows)
	if !ok || err != nil || c.Requests != 1 {
		t.Fatalf("client 3 after two reopens: %+v %v %v", c, ok, err)
	}
	if s := l.Stats(); s.Clients != 6 {
		t.Fatalf("%d clients, want 6", s.Clients)
	}
	names, _ := filepath.Glob(filepath.Join(dir, walPrefix+"*"))
	if len(names) != 1 {
		t.Fatalf("log segments %v, want exactly one", names)
	}
}

func TestSegmentRotation(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{segmentSize: 2048})
	ctx := context.Background()
	maxSegs := 0
	for i := range 60 {
		if err := l.Record(ctx, logActivation(i, clock.Now())); err != nil {
			t.Fatal(err)
		}
		names, _ := filepath.Glob(filepath.Join(dir, walPrefix+"*"))
		maxSegs = max(maxSegs, len(names))
	}
	if maxSegs < 2 {
		t.Fatalf("never more than %d segment with 2 KiB segments", maxSegs)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, walPrefix+"*"))
	if len(names) != 1 {
		t.Fatalf("segments after applying everything: %v, want only the current one", names)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, clock, Options{})
	if s := l.Stats(); s.Clients != 60 {
		t.Fatalf("%d clients after reopen, want 60", s.Clients)
	}
}

// A frame with a good checksum whose payload this build cannot decode (a
// newer format) must stop Open: the frames after it were acknowledged.
func TestRecoverRefusesUndecodableFrame(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := []segment{{start: 1, path: filepath.Join(dir, segmentName(1))}}
	a := logActivation(1, clock.Now())
	payload := encodeActivation(nil, &a)
	payload[0] = activationVersion + 1
	log := appendFrame(nil, 1, payload)
	b := logActivation(2, clock.Now())
	log = appendFrame(log, 2, encodeActivation(nil, &b))
	if err := os.WriteFile(segs[0].path, log, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{Clock: clock.Now})
	var d *DamageError
	if !errors.As(err, &d) || d.Offset != 0 || !strings.Contains(err.Error(), "unsupported format version 2") || !strings.Contains(err.Error(), "from sequence 1 on") {
		t.Fatalf("Open: %v", err)
	}
}
