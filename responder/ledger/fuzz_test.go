package ledger

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeClient feeds arbitrary bytes to the client-record decoder: it
// must never panic, and whatever it accepts must re-encode to the same bytes.
func FuzzDecodeClient(f *testing.F) {
	c := sampleClient()
	f.Add(encodeClient(&c))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeClient(b)
		if err != nil {
			return
		}
		if again := encodeClient(&got); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but re-encodes to %x", b, again)
		}
	})
}

// FuzzDecodeIdentity does the same for host identities. Group order is
// canonical on encoding, so only decoding the re-encoded form is compared.
func FuzzDecodeIdentity(f *testing.F) {
	id := Identity{EPIDs: map[string]string{"Windows": "03612-00206-556-123456-03-1033-26100.0000-0452026"}, HasHwID: true}
	b, _ := encodeIdentity(&id)
	f.Add(b)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeIdentity(b)
		if err != nil {
			return
		}
		again, err := encodeIdentity(&got)
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode: %v", b, err)
		}
		back, err := DecodeIdentity(again)
		if err != nil || len(back.EPIDs) != len(got.EPIDs) || back.HwID != got.HwID || back.HasHwID != got.HasHwID {
			t.Fatalf("re-encoding changed %+v into %+v (%v)", got, back, err)
		}
	})
}

// FuzzDecodeActivation: the log payload decoder must never panic, and what
// it accepts must re-encode to the same bytes.
func FuzzDecodeActivation(f *testing.F) {
	a := logActivation(1, time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	f.Add(encodeActivation(nil, &a))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeActivation(b)
		if err != nil {
			return
		}
		if again := encodeActivation(nil, &got); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but re-encodes to %x", b, again)
		}
	})
}

// FuzzReadFrames: the log reader must never panic, must stop within the
// input, and every frame it returns must re-frame to the bytes it read.
func FuzzReadFrames(f *testing.F) {
	a := logActivation(1, time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	one := appendFrame(nil, 1, encodeActivation(nil, &a))
	f.Add(one)
	f.Add(append(bytes.Clone(one), one[:20]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, off, err := readFrames(b)
		if off < 0 || off > len(b) || (err == nil && !allZero(b[off:])) {
			t.Fatalf("offset %d of %d (err %v)", off, len(b), err)
		}
		var again []byte
		for _, fr := range frames {
			again = appendFrame(again, fr.seq, encodeActivation(nil, &fr.act))
		}
		if !bytes.Equal(again, b[:off]) {
			t.Fatalf("frames do not re-encode to the %d bytes read", off)
		}
	})
}
