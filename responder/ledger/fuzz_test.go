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
)

// FuzzDecodeClient feeds arbitrary bytes to the client-record decoder: it
// must never panic, and whatever it accepts must re-encode to the same bytes
// (or, when its text holds control characters, which the encoder replaces,
// to a record without them).
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
		again := encodeClient(&got)
		if clean(got.Workstation, got.Source) {
			if !bytes.Equal(again, b) {
				t.Fatalf("accepted %x but re-encodes to %x", b, again)
			}
			return
		}
		if back, err := DecodeClient(again); err != nil || !clean(back.Workstation, back.Source) {
			t.Fatalf("re-encoding %q/%q gave %q/%q (%v)", got.Workstation, got.Source, back.Workstation, back.Source, err)
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
		if err != nil || !clean(got.Workstation, got.Source) {
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
			if !clean(fr.act.Workstation, fr.act.Source) {
				return
			}
			again = appendFrame(again, fr.seq, encodeLogActivation(nil, &fr.act, fr.batchEnd))
		}
		if !bytes.Equal(again, b[:off]) {
			t.Fatalf("frames do not re-encode to the %d bytes read", off)
		}
	})
}

// clean reports whether every string is what cleanText leaves unchanged.
func clean(ss ...string) bool {
	for _, s := range ss {
		if cleanText(s) != s {
			return false
		}
	}
	return true
}

// FuzzRecoverLog writes arbitrary bytes as the last log segment beside a
// store and opens it: Open must never panic, must refuse (with a
// *DamageError) or recover, and a recovered ledger must accept and keep a
// new activation.
func FuzzRecoverLog(f *testing.F) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var log []byte
	for i := range 4 {
		a := logActivation(i, at)
		log = appendFrame(log, uint64(1+i), encodeLogActivation(nil, &a, i%2 == 1))
	}
	f.Add(log)
	f.Add(append(bytes.Clone(log), make([]byte, 64)...))
	flipped := bytes.Clone(log)
	flipped[40] ^= 4
	f.Add(flipped)
	f.Add(log[:len(log)-9])
	f.Add([]byte{})
	// A segment with its synced mark (here: up to 2), whole and with its
	// tail zeroed.
	marked := append(appendMark(appendMark(nil, 0), 2), log...)
	f.Add(marked)
	f.Add(append(marked[:markLen+60:markLen+60], make([]byte, 200)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		dir := t.TempDir()
		l, err := Open(dir, Options{Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, q := range []bool{false, true} {
			l, err := Open(dir, Options{Clock: func() time.Time { return at }, Quarantine: q})
			if err != nil {
				var d *DamageError
				if !errors.As(err, &d) && !strings.Contains(err.Error(), "segment") {
					t.Fatalf("quarantine=%v: %v", q, err)
				}
				continue
			}
			a := logActivation(1000, at)
			if err := l.Record(context.Background(), a); err != nil {
				t.Fatalf("record after recovery: %v", err)
			}
			if _, ok, err := l.Client(a.CMID, a.App); !ok || err != nil {
				t.Fatalf("new activation not kept (%v)", err)
			}
			l.Close()
			return
		}
	})
}

// FuzzCheckStoreFile truncates a valid store anywhere, or overwrites bytes
// anywhere in it, and opens it: Open must not panic or fault (bbolt's open
// walks the tree in a goroutine that panics on damage, so checkStoreFile
// must catch first what that walk trips over); it either refuses with an
// error or opens a store that answers reads.
func FuzzCheckStoreFile(f *testing.F) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	seed := f.TempDir()
	l, err := Open(seed, Options{Clock: func() time.Time { return at }})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 20 {
		l.Record(context.Background(), logActivation(i, at))
	}
	l.Close()
	store, err := os.ReadFile(filepath.Join(seed, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{0})       // meta page 0
	f.Add(uint32(4096), []byte{0xff}) // meta page 1
	f.Add(uint32(40), []byte{1, 2, 3, 4})
	f.Add(uint32(3*4096+20), []byte{0xff, 0xff}) // a tree page's elements
	f.Add(uint32(4*4096+8), []byte{0x10})        // a page's type
	f.Add(uint32(len(store)-4096), []byte{})     // truncation (empty edit: cut)
	f.Fuzz(func(t *testing.T, off uint32, edit []byte) {
		b := bytes.Clone(store)
		if len(edit) == 0 {
			b = b[:int(off)%(len(b)+1)]
		} else {
			copy(b[int(off)%len(b):], edit)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{Clock: func() time.Time { return at }})
		if err != nil {
			return
		}
		defer l.Close()
		l.Counts()
		l.Clients(func(Client) bool { return true })
	})
}

// FuzzUnseal: a stored value's checksum check never panics, and accepts
// exactly what seal produced for that key.
func FuzzUnseal(f *testing.F) {
	f.Add([]byte("key"), seal([]byte("key"), []byte("value")))
	f.Add([]byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, key, sv []byte) {
		v, err := unseal("fuzz", key, sv)
		if err != nil {
			return
		}
		if !bytes.Equal(seal(key, v), sv) {
			t.Fatalf("unseal accepted %x for key %x, which seal does not produce", sv, key)
		}
	})
}
