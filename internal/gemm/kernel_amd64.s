#include "textflag.h"

// One k step of the 6×16 tile: two 8-wide loads of the B row, six broadcasts of the A
// column, twelve fused multiply-adds into Y4..Y15 (row r in Y(4+2r), Y(5+2r)).
#define STEP(ao, bo) \
	VMOVUPS bo(DI), Y0; \
	VMOVUPS bo+32(DI), Y1; \
	VBROADCASTSS ao(SI), Y2; \
	VFMADD231PS Y0, Y2, Y4; \
	VFMADD231PS Y1, Y2, Y5; \
	VBROADCASTSS ao+4(SI), Y3; \
	VFMADD231PS Y0, Y3, Y6; \
	VFMADD231PS Y1, Y3, Y7; \
	VBROADCASTSS ao+8(SI), Y2; \
	VFMADD231PS Y0, Y2, Y8; \
	VFMADD231PS Y1, Y2, Y9; \
	VBROADCASTSS ao+12(SI), Y3; \
	VFMADD231PS Y0, Y3, Y10; \
	VFMADD231PS Y1, Y3, Y11; \
	VBROADCASTSS ao+16(SI), Y2; \
	VFMADD231PS Y0, Y2, Y12; \
	VFMADD231PS Y1, Y2, Y13; \
	VBROADCASTSS ao+20(SI), Y3; \
	VFMADD231PS Y0, Y3, Y14; \
	VFMADD231PS Y1, Y3, Y15

// Row store: C row at R10 = (accumulate ? C : 0) + accumulators; then R10 += ldc bytes.
#define ADDROW(lo, hi) \
	VADDPS (R10), lo, lo; \
	VADDPS 32(R10), hi, hi; \
	VMOVUPS lo, (R10); \
	VMOVUPS hi, 32(R10); \
	ADDQ R8, R10

#define STOREROW(lo, hi) \
	VMOVUPS lo, (R10); \
	VMOVUPS hi, 32(R10); \
	ADDQ R8, R10

// func kernel6x16(kb int, a, b, c *float32, ldc int, accumulate int)
TEXT ·kernel6x16(SB), NOSPLIT, $0-48
	MOVQ kb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), R10
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	MOVQ CX, R9
	SHRQ $2, R9
	ANDQ $3, CX
	TESTQ R9, R9
	JZ   tail

loop4:
	STEP(0, 0)
	STEP(24, 64)
	STEP(48, 128)
	STEP(72, 192)
	ADDQ $96, SI
	ADDQ $256, DI
	DECQ R9
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

loop1:
	STEP(0, 0)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop1

store:
	MOVQ  accumulate+40(FP), AX
	TESTQ AX, AX
	JZ    overwrite
	ADDROW(Y4, Y5)
	ADDROW(Y6, Y7)
	ADDROW(Y8, Y9)
	ADDROW(Y10, Y11)
	ADDROW(Y12, Y13)
	ADDROW(Y14, Y15)
	VZEROUPPER
	RET

overwrite:
	STOREROW(Y4, Y5)
	STOREROW(Y6, Y7)
	STOREROW(Y8, Y9)
	STOREROW(Y10, Y11)
	STOREROW(Y12, Y13)
	STOREROW(Y14, Y15)
	VZEROUPPER
	RET
