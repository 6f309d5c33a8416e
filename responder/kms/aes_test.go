package kms

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRijndaelFIPS197 checks the example vectors of FIPS-197 appendices B
// and C (AES-128, -192, -256) in both directions.
func TestRijndaelFIPS197(t *testing.T) {
	tests := []struct {
		name, key, plain, cipher string
	}{
		{"B", "2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734", "3925841d02dc09fbdc118597196a0b32"},
		{"C.1", "000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff", "69c4e0d86a7b0430d8cdb78070b4c55a"},
		{"C.2", "000102030405060708090a0b0c0d0e0f1011121314151617", "00112233445566778899aabbccddeeff", "dda97ca4864cdfe06eaf70a0ec0d7191"},
		{"C.3", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "00112233445566778899aabbccddeeff", "8ea2b7ca516745bfeafc49904b496089"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newRijndael(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			pt, ct := unhex(t, tc.plain), unhex(t, tc.cipher)
			got := make([]byte, 16)
			c.encrypt(got, pt)
			if !bytes.Equal(got, ct) {
				t.Errorf("encrypt = %x, want %x", got, ct)
			}
			c.decrypt(got, ct)
			if !bytes.Equal(got, pt) {
				t.Errorf("decrypt = %x, want %x", got, pt)
			}
		})
	}
}

// TestRijndaelKeyScheduleFIPS197 checks the last round key of the FIPS-197
// appendix A.1 key expansion.
func TestRijndaelKeyScheduleFIPS197(t *testing.T) {
	c, err := newRijndael(unhex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	if err != nil {
		t.Fatal(err)
	}
	want := [4]uint32{0xd014f9a8, 0xc9ee2589, 0xe13f0cc8, 0xb6630ca6}
	if got := [4]uint32(c.enc[40:44]); got != want {
		t.Errorf("w[40..43] = %08x, want %08x", got, want)
	}
}

// TestRijndaelMatchesCryptoAES compares the core with crypto/aes on random
// keys and blocks for every AES key size.
func TestRijndaelMatchesCryptoAES(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	for _, kl := range []int{16, 24, 32} {
		for range 50 {
			key := make([]byte, kl)
			fill(key)
			ours, err := newRijndael(key)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := aes.NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				var in, a, b [16]byte
				fill(in[:])
				ours.encrypt(a[:], in[:])
				ref.Encrypt(b[:], in[:])
				if a != b {
					t.Fatalf("key %x block %x: encrypt %x, crypto/aes %x", key, in, a, b)
				}
				ours.decrypt(a[:], in[:])
				ref.Decrypt(b[:], in[:])
				if a != b {
					t.Fatalf("key %x block %x: decrypt %x, crypto/aes %x", key, in, a, b)
				}
			}
		}
	}
}

// TestRijndaelRoundTrip checks that decryption inverts encryption for the
// ciphers crypto/aes cannot model: Nk=5 (V4) and the tweaked V6 schedule,
// and that the tweak changes the cipher.
func TestRijndaelRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	plainV6 := mustRijndael(keyV6)
	for _, tc := range []struct {
		name string
		c    *rijndael
	}{{"V4-Nk5", cipherV4}, {"V5", cipherV5}, {"V6", cipherV6}} {
		if want := map[string]int{"V4-Nk5": 11, "V5": 10, "V6": 10}[tc.name]; tc.c.rounds != want {
			t.Errorf("%s: %d rounds, want %d", tc.name, tc.c.rounds, want)
		}
		for range 200 {
			var in, ct, back [16]byte
			for i := range in {
				in[i] = byte(rng.Uint32())
			}
			tc.c.encrypt(ct[:], in[:])
			tc.c.decrypt(back[:], ct[:])
			if back != in {
				t.Fatalf("%s: decrypt(encrypt(%x)) = %x", tc.name, in, back)
			}
		}
	}
	var zero, a, b [16]byte
	cipherV6.encrypt(a[:], zero[:])
	plainV6.encrypt(b[:], zero[:])
	if a == b {
		t.Error("the V6 tweak does not change the cipher")
	}
	// Round keys 4, 6 and 8 differ in byte 0 only, by the tweak bytes.
	for r, v := range map[int]uint32{4: 0x73, 6: 0x09, 8: 0xE4} {
		if d := cipherV6.enc[4*r] ^ plainV6.enc[4*r]; d != v<<24 {
			t.Errorf("round key %d word 0 differs by %08x, want %08x", r, d, v<<24)
		}
	}
}

func TestNewRijndaelKeyLength(t *testing.T) {
	for _, n := range []int{0, 8, 15, 17, 36} {
		if _, err := newRijndael(make([]byte, n)); err == nil {
			t.Errorf("newRijndael(%d bytes) succeeded", n)
		}
	}
}

// TestCBCMatchesDefinition checks CBC against explicit chaining.
func TestCBCMatchesDefinition(t *testing.T) {
	iv := [16]byte{1, 2, 3}
	plain := bytes.Repeat([]byte("0123456789abcdef"), 3)
	plain[20] = 'x'
	buf := append([]byte(nil), plain...)
	cipherV6.cbcEncrypt(&iv, buf)
	prev := iv
	for i := 0; i < len(plain); i += 16 {
		var x [16]byte
		for j := range x {
			x[j] = plain[i+j] ^ prev[j]
		}
		cipherV6.encrypt(x[:], x[:])
		if !bytes.Equal(x[:], buf[i:i+16]) {
			t.Fatalf("block %d = %x, want %x", i/16, buf[i:i+16], x)
		}
		prev = x
	}
	back := make([]byte, len(buf))
	cipherV6.cbcDecrypt(&iv, back, buf)
	if !bytes.Equal(back, plain) {
		t.Fatalf("cbcDecrypt = %q", back)
	}
}

// TestSBox checks S-box entries from FIPS-197 figure 7 and that the
// inverse S-box inverts it.
func TestSBox(t *testing.T) {
	for in, want := range map[byte]byte{0x00: 0x63, 0x01: 0x7c, 0x53: 0xed, 0xff: 0x16, 0x9a: 0xb8} {
		if got := tab.sbox[in]; got != want {
			t.Errorf("sbox[%#02x] = %#02x, want %#02x", in, got, want)
		}
	}
	for x := range 256 {
		if tab.isbox[tab.sbox[x]] != byte(x) {
			t.Fatalf("isbox does not invert sbox at %#02x", x)
		}
	}
}

// TestRijndaelInstructionsMatchTables: where the processor's AES
// instructions are used, they encrypt and decrypt every block as the tables
// do under each protocol key (the 160-bit V4 key, V5, and V6 with its
// schedule tweak) and the FIPS-197 key sizes, in place and not.
func TestRijndaelInstructionsMatchTables(t *testing.T) {
	if !hasAESNI {
		t.Skip("no AES instructions on this processor or build: the tables do all the work")
	}
	ciphers := map[string]*rijndael{"V4": cipherV4, "V5": cipherV5, "V6": cipherV6}
	for _, n := range []int{16, 24, 28, 32} {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte(i*7 + n)
		}
		c, err := newRijndael(key)
		if err != nil {
			t.Fatal(err)
		}
		ciphers[fmt.Sprintf("%d-byte key", n)] = c
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, c := range ciphers {
		for i := range 2000 {
			var src, want, got [16]byte
			for j := range src {
				src[j] = byte(rng.Uint32())
			}
			c.encryptTables(want[:], src[:])
			c.encrypt(got[:], src[:])
			if got != want {
				t.Fatalf("%s block %d: encrypt(%x) = %x, tables %x", name, i, src, got, want)
			}
			c.decrypt(got[:], got[:])
			if got != src {
				t.Fatalf("%s block %d: in-place decrypt of %x = %x, want %x", name, i, want, got, src)
			}
			c.decryptTables(want[:], src[:])
			c.decrypt(got[:], src[:])
			if got != want {
				t.Fatalf("%s block %d: decrypt(%x) = %x, tables %x", name, i, src, got, want)
			}
		}
	}
}
