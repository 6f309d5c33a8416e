package kms

import (
	"encoding/binary"
	"fmt"
)

// This file holds a small Rijndael core with a 128-bit block. Unlike
// crypto/aes it accepts any key length of 4..8 words (so the 160-bit key of
// the V4 MAC works) and lets the caller alter the expanded round keys (the
// V6 schedule tweak) before the decryption schedule is derived. Blocks are
// enciphered with the processor's AES instructions on amd64 processors that
// have them (aes_amd64.s; about 3x faster), else with lookup tables.

const (
	blockSize   = 16
	maxKeyWords = 4 * (8 + 6 + 1) // Nk=8: 14 rounds, 15 round keys
)

// rijndael is an expanded Rijndael key: the encryption round keys and the
// decryption round keys of the equivalent inverse cipher, as big-endian
// words for the tables and as bytes in block order for the processor's AES
// instructions (which take any round keys, so the V6 tweak and the 160-bit
// V4 key work there too). It is read-only once built and safe for
// concurrent use.
type rijndael struct {
	rounds int
	enc    [maxKeyWords]uint32
	dec    [maxKeyWords]uint32
	encB   [4 * maxKeyWords]byte
	decB   [4 * maxKeyWords]byte
}

// aesTables are the S-boxes and the combined SubBytes/MixColumns tables.
type aesTables struct {
	sbox, isbox        [256]byte
	te0, te1, te2, te3 [256]uint32
	td0, td1, td2, td3 [256]uint32
	rcon               [16]uint32
}

// tab is computed once at start-up and never written afterwards.
var tab = buildTables()

// gmul multiplies two elements of GF(2^8) modulo x^8+x^4+x^3+x+1.
func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

func buildTables() *aesTables {
	t := new(aesTables)
	// S-box: multiplicative inverse (via powers of the generator 3)
	// followed by the affine transform.
	var exp [255]byte
	var log [256]int
	g := byte(1)
	for i := range exp {
		exp[i] = g
		log[g] = i
		g = gmul(g, 3)
	}
	for x := 0; x < 256; x++ {
		var inv byte
		if x != 0 {
			inv = exp[(255-log[x])%255]
		}
		s := inv
		for i := 1; i <= 4; i++ {
			s ^= inv<<i | inv>>(8-i)
		}
		s ^= 0x63
		t.sbox[x] = s
		t.isbox[s] = byte(x)
	}
	for x := 0; x < 256; x++ {
		s := t.sbox[x]
		w := uint32(gmul(s, 2))<<24 | uint32(s)<<16 | uint32(s)<<8 | uint32(gmul(s, 3))
		t.te0[x], t.te1[x], t.te2[x], t.te3[x] = w, w>>8|w<<24, w>>16|w<<16, w>>24|w<<8
		i := t.isbox[x]
		w = uint32(gmul(i, 14))<<24 | uint32(gmul(i, 9))<<16 | uint32(gmul(i, 13))<<8 | uint32(gmul(i, 11))
		t.td0[x], t.td1[x], t.td2[x], t.td3[x] = w, w>>8|w<<24, w>>16|w<<16, w>>24|w<<8
	}
	r := byte(1)
	for i := range t.rcon {
		t.rcon[i] = uint32(r) << 24
		r = gmul(r, 2)
	}
	return t
}

func subWord(w uint32) uint32 {
	return uint32(tab.sbox[w>>24])<<24 | uint32(tab.sbox[w>>16&0xff])<<16 |
		uint32(tab.sbox[w>>8&0xff])<<8 | uint32(tab.sbox[w&0xff])
}

// newRijndael expands a 16..32-byte key (a multiple of 4) with the standard
// Rijndael key schedule for a 128-bit block: Nk = len(key)/4 words and
// Nk+6 rounds. A 20-byte key gives 11 rounds.
func newRijndael(key []byte) (*rijndael, error) {
	if len(key) < 16 || len(key) > 32 || len(key)%4 != 0 {
		return nil, fmt.Errorf("kms: rijndael key of %d bytes, want 16, 20, 24, 28 or 32", len(key))
	}
	c := new(rijndael)
	nk := len(key) / 4
	c.rounds = nk + 6
	n := 4 * (c.rounds + 1)
	for i := 0; i < nk; i++ {
		c.enc[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	for i := nk; i < n; i++ {
		t := c.enc[i-1]
		switch {
		case i%nk == 0:
			t = subWord(t<<8|t>>24) ^ tab.rcon[i/nk-1]
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		c.enc[i] = c.enc[i-nk] ^ t
	}
	c.deriveDecryption()
	return c, nil
}

// mustRijndael is newRijndael for the protocol's fixed keys.
func mustRijndael(key []byte) *rijndael {
	c, err := newRijndael(key)
	if err != nil {
		panic(err)
	}
	return c
}

// xorRoundKeyByte XORs v into byte i (0..15) of round key r and rebuilds the
// decryption schedule, so both directions use the altered key.
func (c *rijndael) xorRoundKeyByte(r, i int, v byte) {
	c.enc[4*r+i/4] ^= uint32(v) << (24 - 8*(i%4))
	c.deriveDecryption()
}

// deriveDecryption computes the equivalent inverse cipher's round keys:
// the encryption keys in reverse round order with InvMixColumns applied to
// all but the first and last.
func (c *rijndael) deriveDecryption() {
	n := 4 * (c.rounds + 1)
	for i := 0; i < n; i += 4 {
		ei := n - i - 4
		for j := 0; j < 4; j++ {
			w := c.enc[ei+j]
			if i > 0 && i+4 < n {
				w = tab.td0[tab.sbox[w>>24]] ^ tab.td1[tab.sbox[w>>16&0xff]] ^
					tab.td2[tab.sbox[w>>8&0xff]] ^ tab.td3[tab.sbox[w&0xff]]
			}
			c.dec[i+j] = w
		}
	}
	for i := range n {
		binary.BigEndian.PutUint32(c.encB[4*i:], c.enc[i])
		binary.BigEndian.PutUint32(c.decB[4*i:], c.dec[i])
	}
}

// encrypt enciphers one block; dst and src may overlap entirely. It uses
// the processor's AES instructions where there are some, else the tables.
func (c *rijndael) encrypt(dst, src []byte) {
	_ = src[15]
	_ = dst[15]
	if hasAESNI {
		aesniEncrypt(c.rounds, &c.encB[0], &dst[0], &src[0])
		return
	}
	c.encryptTables(dst, src)
}

// encryptTables is encrypt with the tables.
func (c *rijndael) encryptTables(dst, src []byte) {
	_ = src[15]
	_ = dst[15]
	k := c.enc[:4*(c.rounds+1)]
	s0 := binary.BigEndian.Uint32(src[0:4]) ^ k[0]
	s1 := binary.BigEndian.Uint32(src[4:8]) ^ k[1]
	s2 := binary.BigEndian.Uint32(src[8:12]) ^ k[2]
	s3 := binary.BigEndian.Uint32(src[12:16]) ^ k[3]
	te0, te1, te2, te3 := &tab.te0, &tab.te1, &tab.te2, &tab.te3
	k = k[4:]
	for r := 1; r < c.rounds; r++ {
		rk := k[:4]
		t0 := te0[uint8(s0>>24)] ^ te1[uint8(s1>>16)] ^ te2[uint8(s2>>8)] ^ te3[uint8(s3)] ^ rk[0]
		t1 := te0[uint8(s1>>24)] ^ te1[uint8(s2>>16)] ^ te2[uint8(s3>>8)] ^ te3[uint8(s0)] ^ rk[1]
		t2 := te0[uint8(s2>>24)] ^ te1[uint8(s3>>16)] ^ te2[uint8(s0>>8)] ^ te3[uint8(s1)] ^ rk[2]
		t3 := te0[uint8(s3>>24)] ^ te1[uint8(s0>>16)] ^ te2[uint8(s1>>8)] ^ te3[uint8(s2)] ^ rk[3]
		s0, s1, s2, s3 = t0, t1, t2, t3
		k = k[4:]
	}
	rk := k[:4]
	sb := &tab.sbox
	t0 := uint32(sb[uint8(s0>>24)])<<24 | uint32(sb[uint8(s1>>16)])<<16 | uint32(sb[uint8(s2>>8)])<<8 | uint32(sb[uint8(s3)])
	t1 := uint32(sb[uint8(s1>>24)])<<24 | uint32(sb[uint8(s2>>16)])<<16 | uint32(sb[uint8(s3>>8)])<<8 | uint32(sb[uint8(s0)])
	t2 := uint32(sb[uint8(s2>>24)])<<24 | uint32(sb[uint8(s3>>16)])<<16 | uint32(sb[uint8(s0>>8)])<<8 | uint32(sb[uint8(s1)])
	t3 := uint32(sb[uint8(s3>>24)])<<24 | uint32(sb[uint8(s0>>16)])<<16 | uint32(sb[uint8(s1>>8)])<<8 | uint32(sb[uint8(s2)])
	binary.BigEndian.PutUint32(dst[0:4], t0^rk[0])
	binary.BigEndian.PutUint32(dst[4:8], t1^rk[1])
	binary.BigEndian.PutUint32(dst[8:12], t2^rk[2])
	binary.BigEndian.PutUint32(dst[12:16], t3^rk[3])
}

// decrypt deciphers one block; dst and src may overlap entirely. It uses
// the processor's AES instructions where there are some, else the tables.
func (c *rijndael) decrypt(dst, src []byte) {
	_ = src[15]
	_ = dst[15]
	if hasAESNI {
		aesniDecrypt(c.rounds, &c.decB[0], &dst[0], &src[0])
		return
	}
	c.decryptTables(dst, src)
}

// decryptTables is decrypt with the tables.
func (c *rijndael) decryptTables(dst, src []byte) {
	_ = src[15]
	_ = dst[15]
	k := c.dec[:4*(c.rounds+1)]
	s0 := binary.BigEndian.Uint32(src[0:4]) ^ k[0]
	s1 := binary.BigEndian.Uint32(src[4:8]) ^ k[1]
	s2 := binary.BigEndian.Uint32(src[8:12]) ^ k[2]
	s3 := binary.BigEndian.Uint32(src[12:16]) ^ k[3]
	td0, td1, td2, td3 := &tab.td0, &tab.td1, &tab.td2, &tab.td3
	k = k[4:]
	for r := 1; r < c.rounds; r++ {
		rk := k[:4]
		t0 := td0[uint8(s0>>24)] ^ td1[uint8(s3>>16)] ^ td2[uint8(s2>>8)] ^ td3[uint8(s1)] ^ rk[0]
		t1 := td0[uint8(s1>>24)] ^ td1[uint8(s0>>16)] ^ td2[uint8(s3>>8)] ^ td3[uint8(s2)] ^ rk[1]
		t2 := td0[uint8(s2>>24)] ^ td1[uint8(s1>>16)] ^ td2[uint8(s0>>8)] ^ td3[uint8(s3)] ^ rk[2]
		t3 := td0[uint8(s3>>24)] ^ td1[uint8(s2>>16)] ^ td2[uint8(s1>>8)] ^ td3[uint8(s0)] ^ rk[3]
		s0, s1, s2, s3 = t0, t1, t2, t3
		k = k[4:]
	}
	rk := k[:4]
	ib := &tab.isbox
	t0 := uint32(ib[uint8(s0>>24)])<<24 | uint32(ib[uint8(s3>>16)])<<16 | uint32(ib[uint8(s2>>8)])<<8 | uint32(ib[uint8(s1)])
	t1 := uint32(ib[uint8(s1>>24)])<<24 | uint32(ib[uint8(s0>>16)])<<16 | uint32(ib[uint8(s3>>8)])<<8 | uint32(ib[uint8(s2)])
	t2 := uint32(ib[uint8(s2>>24)])<<24 | uint32(ib[uint8(s1>>16)])<<16 | uint32(ib[uint8(s0>>8)])<<8 | uint32(ib[uint8(s3)])
	t3 := uint32(ib[uint8(s3>>24)])<<24 | uint32(ib[uint8(s2>>16)])<<16 | uint32(ib[uint8(s1>>8)])<<8 | uint32(ib[uint8(s0)])
	binary.BigEndian.PutUint32(dst[0:4], t0^rk[0])
	binary.BigEndian.PutUint32(dst[4:8], t1^rk[1])
	binary.BigEndian.PutUint32(dst[8:12], t2^rk[2])
	binary.BigEndian.PutUint32(dst[12:16], t3^rk[3])
}

// cbcEncrypt encrypts buf (a multiple of 16 bytes) in place in CBC mode.
func (c *rijndael) cbcEncrypt(iv *[16]byte, buf []byte) {
	prev := iv[:]
	for len(buf) >= blockSize {
		b := buf[:blockSize]
		for i := range blockSize {
			b[i] ^= prev[i]
		}
		c.encrypt(b, b)
		prev = b
		buf = buf[blockSize:]
	}
}

// cbcDecrypt decrypts src (a multiple of 16 bytes) into dst in CBC mode;
// dst must be at least as long as src and must not overlap it partially.
func (c *rijndael) cbcDecrypt(iv *[16]byte, dst, src []byte) {
	prev := iv[:]
	for i := 0; i+blockSize <= len(src); i += blockSize {
		c.decrypt(dst[i:i+blockSize], src[i:i+blockSize])
		for j := range blockSize {
			dst[i+j] ^= prev[j]
		}
		prev = src[i : i+blockSize]
	}
}
