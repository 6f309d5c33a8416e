//go:build amd64 && !purego

#include "textflag.h"

// func aesniEncrypt(rounds int, xk, dst, src *byte)
TEXT ·aesniEncrypt(SB), NOSPLIT, $0-32
	MOVQ rounds+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ dst+16(FP), DX
	MOVQ src+24(FP), BX
	MOVUPS 0(BX), X0
	MOVUPS 0(AX), X1
	PXOR X1, X0
	ADDQ $16, AX
	DECQ CX
enc:
	MOVUPS 0(AX), X1
	AESENC X1, X0
	ADDQ $16, AX
	DECQ CX
	JNZ enc
	MOVUPS 0(AX), X1
	AESENCLAST X1, X0
	MOVUPS X0, 0(DX)
	RET

// func aesniDecrypt(rounds int, xk, dst, src *byte)
TEXT ·aesniDecrypt(SB), NOSPLIT, $0-32
	MOVQ rounds+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ dst+16(FP), DX
	MOVQ src+24(FP), BX
	MOVUPS 0(BX), X0
	MOVUPS 0(AX), X1
	PXOR X1, X0
	ADDQ $16, AX
	DECQ CX
dec:
	MOVUPS 0(AX), X1
	AESDEC X1, X0
	ADDQ $16, AX
	DECQ CX
	JNZ dec
	MOVUPS 0(AX), X1
	AESDECLAST X1, X0
	MOVUPS X0, 0(DX)
	RET
