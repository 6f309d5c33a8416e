//go:build !amd64 || purego

package kms

// hasAESNI is false where there is no assembly for the AES instructions:
// the tables do all the work.
const hasAESNI = false

func aesniEncrypt(rounds int, xk, dst, src *byte) { panic("kms: no AES instructions") }
func aesniDecrypt(rounds int, xk, dst, src *byte) { panic("kms: no AES instructions") }
