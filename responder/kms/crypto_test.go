package kms

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// TestMACV4Padding checks the V4 MAC against an explicit CBC-MAC: 0x80 and
// zero fill, an extra block when the message is aligned, no CMAC subkeys.
func TestMACV4Padding(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 32, 144, 236} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*7 + n)
		}
		padded := append(append([]byte(nil), msg...), 0x80)
		for len(padded)%16 != 0 {
			padded = append(padded, 0)
		}
		var st [16]byte
		for i := 0; i < len(padded); i += 16 {
			for j := range st {
				st[j] ^= padded[i+j]
			}
			cipherV4.encrypt(st[:], st[:])
		}
		if got := macV4(msg); got != st {
			t.Errorf("len %d: macV4 = %x, want %x", n, got, st)
		}
	}
}

func TestHMACV6MatchesCryptoHMAC(t *testing.T) {
	key := hmacKeyV6(134398076200000000)
	var prefix [16]byte
	copy(prefix[:], "prefix-prefix-16")
	for _, n := range []int{0, 1, 63, 64, 200, maxHMACMessage - 16, maxHMACMessage, 1000} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		m := hmac.New(sha256.New, key[:])
		m.Write(prefix[:])
		m.Write(msg)
		want := m.Sum(nil)[16:32]
		if got := hmacV6(key, &prefix, msg); !bytes.Equal(got[:], want) {
			t.Errorf("len %d: hmacV6 = %x, want %x", n, got, want)
		}
	}
}

func TestHMACKeyV6(t *testing.T) {
	// Two times in the same slot share a key; the next slot differs.
	const ft uint64 = 134398076200000000
	slotStart := ft / timeC1 * timeC1
	if hmacKeyV6(slotStart) != hmacKeyV6(slotStart+timeC1-1) {
		t.Error("times in one slot give different keys")
	}
	if hmacKeyV6(slotStart) == hmacKeyV6(slotStart+timeC1) {
		t.Error("adjacent slots give the same key")
	}
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], ft/0x22816889BD*0x208CBAB5ED+0x3156CD5AC628477A)
	h := sha256.Sum256(le[:])
	if got := hmacKeyV6(ft); !bytes.Equal(got[:], h[16:]) {
		t.Errorf("hmacKeyV6 = %x, want %x", got, h[16:])
	}
}

func TestPKCS7(t *testing.T) {
	for n := 0; n <= 33; n++ {
		buf := appendPKCS7(bytes.Repeat([]byte{0xAA}, n+3), 3)
		if (len(buf)-3)%16 != 0 || len(buf)-3-n < 1 || len(buf)-3-n > 16 {
			t.Fatalf("n=%d: padded to %d", n, len(buf)-3)
		}
		if got := pkcs7Len(buf[3:]); got != n {
			t.Errorf("n=%d: pkcs7Len = %d", n, got)
		}
	}
	bad := [][]byte{
		nil,
		make([]byte, 15),
		make([]byte, 16),               // pad byte 0
		append(make([]byte, 15), 17),   // pad > 16
		append(make([]byte, 14), 3, 2), // wrong pad value? last 2 -> byte before must be 2
		append(bytes.Repeat([]byte{4}, 12), 4, 4, 5, 4), // mismatch inside the pad
	}
	for i, b := range bad {
		if got := pkcs7Len(b); got != -1 {
			t.Errorf("case %d (%x): pkcs7Len = %d, want -1", i, b, got)
		}
	}
}
