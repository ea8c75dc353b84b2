//go:build amd64 && !purego

#include "textflag.h"

// func interleave2SSE2(dst, a, b []byte)
TEXT ·interleave2SSE2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), CX
	MOVQ b_base+48(FP), DX
	SHRQ $4, CX
	JZ   done2

loop2:
	MOVOU     (SI), X0
	MOVOU     (DX), X1
	MOVO      X0, X2
	PUNPCKLBW X1, X0 // a0 b0 a1 b1 ... a7 b7
	PUNPCKHBW X1, X2 // a8 b8 ... a15 b15
	MOVOU     X0, (DI)
	MOVOU     X2, 16(DI)
	ADDQ      $16, SI
	ADDQ      $16, DX
	ADDQ      $32, DI
	DECQ      CX
	JNZ       loop2

done2:
	RET

// func interleave4SSE2(dst, a, b, c, d []byte)
TEXT ·interleave4SSE2(SB), NOSPLIT, $0-120
	MOVQ dst_base+0(FP), DI
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), CX
	MOVQ b_base+48(FP), DX
	MOVQ c_base+72(FP), R8
	MOVQ d_base+96(FP), R9
	SHRQ $4, CX
	JZ   done4

loop4:
	MOVOU     (SI), X0
	MOVOU     (DX), X1
	MOVOU     (R8), X2
	MOVOU     (R9), X3
	MOVO      X0, X4
	PUNPCKLBW X1, X0 // a0 b0 ... a7 b7
	PUNPCKHBW X1, X4 // a8 b8 ... a15 b15
	MOVO      X2, X5
	PUNPCKLBW X3, X2 // c0 d0 ... c7 d7
	PUNPCKHBW X3, X5 // c8 d8 ... c15 d15
	MOVO      X0, X6
	PUNPCKLWL X2, X0 // elements 0-3
	PUNPCKHWL X2, X6 // elements 4-7
	MOVO      X4, X7
	PUNPCKLWL X5, X4 // elements 8-11
	PUNPCKHWL X5, X7 // elements 12-15
	MOVOU     X0, (DI)
	MOVOU     X6, 16(DI)
	MOVOU     X4, 32(DI)
	MOVOU     X7, 48(DI)
	ADDQ      $16, SI
	ADDQ      $16, DX
	ADDQ      $16, R8
	ADDQ      $16, R9
	ADDQ      $64, DI
	DECQ      CX
	JNZ       loop4

done4:
	RET
