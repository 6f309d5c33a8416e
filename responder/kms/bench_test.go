package kms

import (
	"crypto/aes"
	"testing"
)

func benchBlock(b *testing.B, f func(dst, src []byte)) {
	var blk [16]byte
	b.SetBytes(blockSize)
	b.ReportAllocs()
	for b.Loop() {
		f(blk[:], blk[:])
	}
}

func BenchmarkAESEncrypt(b *testing.B)   { benchBlock(b, cipherV5.encrypt) }
func BenchmarkAESDecrypt(b *testing.B)   { benchBlock(b, cipherV5.decrypt) }
func BenchmarkAESEncryptV6(b *testing.B) { benchBlock(b, cipherV6.encrypt) }
func BenchmarkAESDecryptV6(b *testing.B) { benchBlock(b, cipherV6.decrypt) }
func BenchmarkRijndael160Encrypt(b *testing.B) {
	benchBlock(b, cipherV4.encrypt)
}

// BenchmarkCryptoAESEncrypt is the standard library's (hardware) AES, for
// comparison.
func BenchmarkCryptoAESEncrypt(b *testing.B) {
	c, err := aes.NewCipher(keyV5)
	if err != nil {
		b.Fatal(err)
	}
	benchBlock(b, c.Encrypt)
}

func BenchmarkMACV4Request(b *testing.B) {
	msg := make([]byte, RequestBodySize)
	b.SetBytes(RequestBodySize)
	b.ReportAllocs()
	for b.Loop() {
		_ = macV4(msg)
	}
}

func BenchmarkHMACV6(b *testing.B) {
	msg := make([]byte, 216)
	var p [16]byte
	b.ReportAllocs()
	for b.Loop() {
		_ = hmacV6(hmacKeyV6(134398076200000000), &p, msg)
	}
}

// BenchmarkHostRequest measures a host's work per activation: decode and
// verify/decrypt the request, then encode and encrypt the response into a
// reused buffer.
func BenchmarkHostRequest(b *testing.B) {
	for _, tc := range []struct {
		name  string
		major uint16
	}{{"V4", 4}, {"V5", 5}, {"V6", 6}} {
		b.Run(tc.name, func(b *testing.B) {
			_, _, wire := exchangeFor(b, tc.major)
			resp := sampleResponse()
			rnd := detRand(1)
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				in, err := ParseRequest(wire)
				if err != nil {
					b.Fatal(err)
				}
				if buf, err = in.AppendResponse(buf[:0], resp, rnd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClientVerify measures the client's response verification.
func BenchmarkClientVerify(b *testing.B) {
	for _, tc := range []struct {
		name  string
		major uint16
	}{{"V4", 4}, {"V5", 5}, {"V6", 6}} {
		b.Run(tc.name, func(b *testing.B) {
			in, p, _ := exchangeFor(b, tc.major)
			out, err := in.AppendResponse(nil, sampleResponse(), detRand(1))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ParseResponse(out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
