package ledger

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// decodeJudge is the record check spelled with DecodeClient: what
// timedRecordOK must agree with.
func decodeJudge(k, v []byte) bool {
	if len(k) != 40 {
		return false
	}
	c, err := DecodeClient(v)
	return err == nil && recordMatchesKey(&c, k)
}

// keyFor is the record key v's own fields name (zeros where v is short).
func keyFor(v []byte) []byte {
	k := make([]byte, 40)
	if len(v) >= clientOffLastSeen+8 {
		binary.BigEndian.PutUint64(k, binary.BigEndian.Uint64(v[clientOffLastSeen:])^(1<<63))
		copy(k[8:], v[clientOffCMID:clientOffApp+16])
	}
	return k
}

func TestCheckTimedRecord(t *testing.T) {
	c := sampleClient()
	good := encodeClient(&c)
	edit := func(f func(v []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	zeroFirst := sampleClient()
	zeroFirst.FirstSeen = time.Time{}
	epoch := sampleClient()
	epoch.FirstSeen, epoch.LastSeen = time.Unix(0, 0), time.Unix(0, 0)
	before1970 := sampleClient()
	before1970.FirstSeen, before1970.LastSeen = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		k, v []byte
		want string // "" for a good record, else part of the error
	}{
		{"good", keyFor(good), good, ""},
		{"zero first seen", nil, encodeClient(&zeroFirst), ""},
		{"the epoch", nil, encodeClient(&epoch), ""},
		{"before 1970", nil, encodeClient(&before1970), ""},
		{"short key", keyFor(good)[:39], good, "key has 39 bytes, want 40"},
		{"other client's key", edit(func(v []byte) []byte { k := keyFor(v); k[10] ^= 1; return k }), good, "does not match its key"},
		{"other time's key", edit(func(v []byte) []byte { k := keyFor(v); k[7] ^= 1; return k }), good, "does not match its key"},
		{"version", nil, edit(func(v []byte) []byte { v[0] = 2; return v }), "unsupported format version 2"},
		{"empty", keyFor(nil), nil, "truncated"},
		{"truncated", nil, good[:len(good)-1], "truncated"},
		{"no source", nil, good[:clientOffStrings+1+int(good[clientOffStrings])], "source length at offset"},
		{"trailing byte", nil, append(append([]byte(nil), good...), 0), "1 unexpected trailing bytes"},
		{"bad UTF-8", nil, edit(func(v []byte) []byte { v[clientOffStrings+1] = 0xff; return v }), "workstation at offset 95: not valid UTF-8"},
		{"bad UTF-8 source", nil, edit(func(v []byte) []byte { v[len(v)-1] = 0xc3; return v }), "source at offset"},
		{"last before first", nil, edit(func(v []byte) []byte {
			copy(v[clientOffLastSeen:], v[clientOffFirstSeen:clientOffFirstSeen+8])
			v[clientOffFirstSeen+7]++
			return v
		}), "is before first seen"},
		{"last seen zero", nil, edit(func(v []byte) []byte { clear(v[clientOffLastSeen : clientOffLastSeen+8]); return v }), "is before first seen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.k
			if k == nil {
				k = keyFor(tc.v)
			}
			if got, want := timedRecordOK(k, tc.v), decodeJudge(k, tc.v); got != want || got != (tc.want == "") {
				t.Fatalf("timedRecordOK = %v, DecodeClient's judgement %v, want %v", got, want, tc.want == "")
			}
			err := checkTimedRecord(k, tc.v)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("checkTimedRecord: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("checkTimedRecord = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzTimedRecordOK holds the in-place record check Open and Check run to
// DecodeClient's verdict: for any bytes and any key (usually the one the
// bytes name, sometimes changed or cut), the two must agree.
func FuzzTimedRecordOK(f *testing.F) {
	c := sampleClient()
	good := encodeClient(&c)
	f.Add(good, uint8(0), false)
	f.Add(good, uint8(13), false)
	f.Add(good, uint8(39), true)
	f.Add([]byte{1}, uint8(0), false)
	f.Fuzz(func(t *testing.T, v []byte, flip uint8, cut bool) {
		k := keyFor(v)
		if flip != 0 {
			k[int(flip)%40] ^= flip
		}
		if cut {
			k = k[:int(flip)%40]
		}
		if got, want := timedRecordOK(k, v), decodeJudge(k, v); got != want {
			t.Fatalf("timedRecordOK(%x, %x) = %v, DecodeClient's judgement %v", k, v, got, want)
		}
		if err := checkTimedRecord(k, v); (err == nil) != decodeJudge(k, v) {
			t.Fatalf("checkTimedRecord(%x, %x) = %v", k, v, err)
		}
	})
}

// TestRecordCheckAllocs: judging a good record at Open allocates nothing,
// and decoding one allocates only its two strings (no field names built
// for errors that do not happen).
func TestRecordCheckAllocs(t *testing.T) {
	c := sampleClient()
	v := encodeClient(&c)
	k := keyFor(v)
	if n := testing.AllocsPerRun(100, func() {
		if err := checkTimedRecord(k, v); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("checkTimedRecord allocates %v times per record, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := DecodeClient(v); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("DecodeClient allocates %v times per record, want at most 2 (its strings)", n)
	}
}
