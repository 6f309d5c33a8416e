//go:build amd64 && !purego

package kms

import "golang.org/x/sys/cpu"

// hasAESNI reports whether the processor has the AES-NI instructions. It
// is set once at start-up and only read afterwards.
var hasAESNI = cpu.X86.HasAES

// aesniEncrypt enciphers the block at src into dst with rounds rounds of
// AESENC under the round keys at xk (rounds+1 keys of 16 bytes, in block
// byte order). dst and src may be the same block.
//
//go:noescape
func aesniEncrypt(rounds int, xk, dst, src *byte)

// aesniDecrypt deciphers the block at src into dst with AESDEC under the
// equivalent inverse cipher's round keys at xk.
//
//go:noescape
func aesniDecrypt(rounds int, xk, dst, src *byte)
