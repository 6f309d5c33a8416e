package kms

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// Protocol keys (public constants shared by every KMS client and host).
var (
	keyV4 = []byte{0x05, 0x3D, 0x83, 0x07, 0xF9, 0xE5, 0xF0, 0x88, 0xEB, 0x5E,
		0xA6, 0x68, 0x6C, 0xF0, 0x37, 0xC7, 0xE4, 0xEF, 0xD2, 0xD6}
	keyV5 = []byte{0xCD, 0x7E, 0x79, 0x6F, 0x2A, 0xB2, 0x5D, 0xCB,
		0x55, 0xFF, 0xC8, 0xEF, 0x83, 0x64, 0xC4, 0x70}
	keyV6 = []byte{0xA9, 0x4A, 0x41, 0x95, 0xE2, 0x01, 0x43, 0x2D,
		0x9B, 0xCB, 0x46, 0x04, 0x05, 0xD8, 0x4A, 0x21}
)

// The expanded ciphers are built once at start-up and only read afterwards.
var (
	cipherV4 = mustRijndael(keyV4)
	cipherV5 = mustRijndael(keyV5)
	cipherV6 = newV6Cipher()
)

// newV6Cipher expands the V6 key and applies the V6 schedule tweak: byte 0
// of round keys 4, 6 and 8 is XORed with 0x73, 0x09 and 0xE4.
func newV6Cipher() *rijndael {
	c := mustRijndael(keyV6)
	c.xorRoundKeyByte(4, 0, 0x73)
	c.xorRoundKeyByte(6, 0, 0x09)
	c.xorRoundKeyByte(8, 0, 0xE4)
	return c
}

// cipherFor returns the CBC cipher of protocol major version 5 or 6.
func cipherFor(major uint16) *rijndael {
	if major == 6 {
		return cipherV6
	}
	return cipherV5
}

// macV4 computes the V4 message authentication code of msg: a CBC-MAC with
// a zero IV under the 160-bit V4 key, over msg followed by 0x80 and zero
// fill to a multiple of 16 (the 0x80 block is added even when msg is
// aligned). It returns the last cipher block.
func macV4(msg []byte) [16]byte {
	var st [16]byte
	for len(msg) >= blockSize {
		for i := range blockSize {
			st[i] ^= msg[i]
		}
		cipherV4.encrypt(st[:], st[:])
		msg = msg[blockSize:]
	}
	for i, b := range msg {
		st[i] ^= b
	}
	st[len(msg)] ^= 0x80
	cipherV4.encrypt(st[:], st[:])
	return st
}

// Constants of the V6 HMAC key derivation.
const (
	timeC1 = 0x00000022816889BD
	timeC2 = 0x000000208CBAB5ED
	timeC3 = 0x3156CD5AC628477A
)

// hmacKeyV6 derives the 16-byte V6 HMAC key from a FILETIME: the time slot
// (t/C1)*C2 + C3 (wrapping), little-endian, hashed with SHA-256; the key is
// the hash's second half.
func hmacKeyV6(filetime uint64) [16]byte {
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], filetime/timeC1*timeC2+timeC3)
	h := sha256.Sum256(le[:])
	return [16]byte(h[16:32])
}

// maxHMACMessage bounds the V6 HMAC input: D(IV_resp) + the largest
// RESPONSE + RandomXoredIVs + Hash + HwId + XoredIVs.
const maxHMACMessage = 16 + maxResponseBody + 16 + 32 + 8 + 16

// hmacV6 computes HMAC-SHA256(key, prefix || msg) and returns bytes 16..31
// of it. Inputs up to maxHMACMessage bytes (every valid response) are
// hashed from stack buffers without allocating.
func hmacV6(key [16]byte, prefix *[16]byte, msg []byte) [16]byte {
	const b = 64 // SHA-256 block size
	if len(msg) > maxHMACMessage-len(prefix) {
		// Copies keep the arguments on the caller's stack.
		m := hmac.New(sha256.New, bytes.Clone(key[:]))
		m.Write(append(bytes.Clone(prefix[:]), msg...))
		return [16]byte(m.Sum(nil)[16:32])
	}
	var inner [b + maxHMACMessage]byte
	for i := range b {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		inner[i] = k ^ 0x36
	}
	copy(inner[b:], prefix[:])
	n := copy(inner[b+len(prefix):], msg)
	ih := sha256.Sum256(inner[:b+len(prefix)+n])
	var outer [b + sha256.Size]byte
	for i := range b {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		outer[i] = k ^ 0x5c
	}
	copy(outer[b:], ih[:])
	oh := sha256.Sum256(outer[:])
	return [16]byte(oh[16:32])
}

// appendPKCS7 pads buf[from:] to a multiple of 16 with 1..16 bytes of
// PKCS#7.
func appendPKCS7(buf []byte, from int) []byte {
	p := blockSize - (len(buf)-from)%blockSize
	for range p {
		buf = append(buf, byte(p))
	}
	return buf
}

// pkcs7Len checks the PKCS#7 padding at the end of plain and returns the
// length of the unpadded data, or -1 when the padding is malformed.
func pkcs7Len(plain []byte) int {
	if len(plain) == 0 || len(plain)%blockSize != 0 {
		return -1
	}
	p := int(plain[len(plain)-1])
	if p < 1 || p > blockSize {
		return -1
	}
	for _, b := range plain[len(plain)-p:] {
		if int(b) != p {
			return -1
		}
	}
	return len(plain) - p
}
