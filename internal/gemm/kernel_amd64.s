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

// Row store: C row at R10 = (accumulate ? C : 0) + the accumulators lo and hi, each w bytes
// wide (32 for YMM, 64 for ZMM); then R10 += ldc bytes.
#define ADDROW(lo, hi, w) \
	VADDPS (R10), lo, lo; \
	VADDPS w(R10), hi, hi; \
	VMOVUPS lo, (R10); \
	VMOVUPS hi, w(R10); \
	ADDQ R8, R10

#define STOREROW(lo, hi, w) \
	VMOVUPS lo, (R10); \
	VMOVUPS hi, w(R10); \
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
	ADDROW(Y4, Y5, 32)
	ADDROW(Y6, Y7, 32)
	ADDROW(Y8, Y9, 32)
	ADDROW(Y10, Y11, 32)
	ADDROW(Y12, Y13, 32)
	ADDROW(Y14, Y15, 32)
	VZEROUPPER
	RET

overwrite:
	STOREROW(Y4, Y5, 32)
	STOREROW(Y6, Y7, 32)
	STOREROW(Y8, Y9, 32)
	STOREROW(Y10, Y11, 32)
	STOREROW(Y12, Y13, 32)
	STOREROW(Y14, Y15, 32)
	VZEROUPPER
	RET

// One k step of the 14×32 tile: two 16-wide loads of the B row, fourteen broadcasts of the A
// column, 28 fused multiply-adds into Z4..Z31 (row r in Z(4+2r), Z(5+2r)).
#define STEP512(ao, bo) \
	VMOVUPS bo(DI), Z0; \
	VMOVUPS bo+64(DI), Z1; \
	VBROADCASTSS ao+0(SI), Z2; \
	VFMADD231PS Z0, Z2, Z4; \
	VFMADD231PS Z1, Z2, Z5; \
	VBROADCASTSS ao+4(SI), Z3; \
	VFMADD231PS Z0, Z3, Z6; \
	VFMADD231PS Z1, Z3, Z7; \
	VBROADCASTSS ao+8(SI), Z2; \
	VFMADD231PS Z0, Z2, Z8; \
	VFMADD231PS Z1, Z2, Z9; \
	VBROADCASTSS ao+12(SI), Z3; \
	VFMADD231PS Z0, Z3, Z10; \
	VFMADD231PS Z1, Z3, Z11; \
	VBROADCASTSS ao+16(SI), Z2; \
	VFMADD231PS Z0, Z2, Z12; \
	VFMADD231PS Z1, Z2, Z13; \
	VBROADCASTSS ao+20(SI), Z3; \
	VFMADD231PS Z0, Z3, Z14; \
	VFMADD231PS Z1, Z3, Z15; \
	VBROADCASTSS ao+24(SI), Z2; \
	VFMADD231PS Z0, Z2, Z16; \
	VFMADD231PS Z1, Z2, Z17; \
	VBROADCASTSS ao+28(SI), Z3; \
	VFMADD231PS Z0, Z3, Z18; \
	VFMADD231PS Z1, Z3, Z19; \
	VBROADCASTSS ao+32(SI), Z2; \
	VFMADD231PS Z0, Z2, Z20; \
	VFMADD231PS Z1, Z2, Z21; \
	VBROADCASTSS ao+36(SI), Z3; \
	VFMADD231PS Z0, Z3, Z22; \
	VFMADD231PS Z1, Z3, Z23; \
	VBROADCASTSS ao+40(SI), Z2; \
	VFMADD231PS Z0, Z2, Z24; \
	VFMADD231PS Z1, Z2, Z25; \
	VBROADCASTSS ao+44(SI), Z3; \
	VFMADD231PS Z0, Z3, Z26; \
	VFMADD231PS Z1, Z3, Z27; \
	VBROADCASTSS ao+48(SI), Z2; \
	VFMADD231PS Z0, Z2, Z28; \
	VFMADD231PS Z1, Z2, Z29; \
	VBROADCASTSS ao+52(SI), Z3; \
	VFMADD231PS Z0, Z3, Z30; \
	VFMADD231PS Z1, Z3, Z31

// func kernel14x32(kb int, a, b, c *float32, ldc int, accumulate int)
TEXT ·kernel14x32(SB), NOSPLIT, $0-48
	MOVQ kb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), R10
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	// Fetch the 14 C rows (two cache lines each) while the k loop runs: they are ldc apart and
	// in no cache after a panel's pass over C.
	MOVQ R10, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)
	ADDQ R8, R11
	PREFETCHT0 (R11)
	PREFETCHT0 64(R11)

	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

	MOVQ CX, R9
	SHRQ $2, R9
	ANDQ $3, CX
	TESTQ R9, R9
	JZ   tail512

loop512:
	STEP512(0, 0)
	STEP512(56, 128)
	STEP512(112, 256)
	STEP512(168, 384)
	ADDQ $224, SI
	ADDQ $512, DI
	DECQ R9
	JNZ  loop512

tail512:
	TESTQ CX, CX
	JZ    store512

loop512x1:
	STEP512(0, 0)
	ADDQ $56, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  loop512x1

store512:
	MOVQ  accumulate+40(FP), AX
	TESTQ AX, AX
	JZ    overwrite512
	ADDROW(Z4, Z5, 64)
	ADDROW(Z6, Z7, 64)
	ADDROW(Z8, Z9, 64)
	ADDROW(Z10, Z11, 64)
	ADDROW(Z12, Z13, 64)
	ADDROW(Z14, Z15, 64)
	ADDROW(Z16, Z17, 64)
	ADDROW(Z18, Z19, 64)
	ADDROW(Z20, Z21, 64)
	ADDROW(Z22, Z23, 64)
	ADDROW(Z24, Z25, 64)
	ADDROW(Z26, Z27, 64)
	ADDROW(Z28, Z29, 64)
	ADDROW(Z30, Z31, 64)
	VZEROUPPER
	RET

overwrite512:
	STOREROW(Z4, Z5, 64)
	STOREROW(Z6, Z7, 64)
	STOREROW(Z8, Z9, 64)
	STOREROW(Z10, Z11, 64)
	STOREROW(Z12, Z13, 64)
	STOREROW(Z14, Z15, 64)
	STOREROW(Z16, Z17, 64)
	STOREROW(Z18, Z19, 64)
	STOREROW(Z20, Z21, 64)
	STOREROW(Z22, Z23, 64)
	STOREROW(Z24, Z25, 64)
	STOREROW(Z26, Z27, 64)
	STOREROW(Z28, Z29, 64)
	STOREROW(Z30, Z31, 64)
	VZEROUPPER
	RET

// func packRows(rows, kb4 int, src *float32, lda int, dst *float32, ldd int)
// Transposes rows (4 or 2) rows of A (row stride lda) into k-major order: for each
// p < 4·kb4, the values src[r·lda+p] (r < rows) go to dst[p·ldd : p·ldd+rows]. Each step
// moves a 4×4 block with VUNPCK{L,H}PS then VUNPCK{L,H}PD, or a 2×4 block with
// VUNPCK{L,H}PS and 8-byte stores.
TEXT ·packRows(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), AX
	MOVQ kb4+8(FP), CX
	MOVQ src+16(FP), SI
	MOVQ lda+24(FP), R8
	MOVQ dst+32(FP), DI
	MOVQ ldd+40(FP), R9
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ (R8)(R8*2), R10 // 3·lda bytes
	LEAQ (R9)(R9*2), R11 // 3·ldd bytes
	TESTQ CX, CX
	JZ    donerows
	CMPQ  AX, $2
	JEQ   loop2rows

loop4rows:
	VMOVUPS (SI), X0
	VMOVUPS (SI)(R8*1), X1
	VMOVUPS (SI)(R8*2), X2
	VMOVUPS (SI)(R10*1), X3
	VUNPCKLPS X1, X0, X4 // r0p0 r1p0 r0p1 r1p1
	VUNPCKHPS X1, X0, X5 // r0p2 r1p2 r0p3 r1p3
	VUNPCKLPS X3, X2, X6 // r2p0 r3p0 r2p1 r3p1
	VUNPCKHPS X3, X2, X7 // r2p2 r3p2 r2p3 r3p3
	VUNPCKLPD X6, X4, X0 // p0
	VUNPCKHPD X6, X4, X1 // p1
	VUNPCKLPD X7, X5, X2 // p2
	VUNPCKHPD X7, X5, X3 // p3
	VMOVUPS X0, (DI)
	VMOVUPS X1, (DI)(R9*1)
	VMOVUPS X2, (DI)(R9*2)
	VMOVUPS X3, (DI)(R11*1)
	ADDQ $16, SI
	LEAQ (DI)(R9*4), DI
	DECQ CX
	JNZ  loop4rows
	RET

loop2rows:
	VMOVUPS (SI), X0
	VMOVUPS (SI)(R8*1), X1
	VUNPCKLPS X1, X0, X4 // r0p0 r1p0 r0p1 r1p1
	VUNPCKHPS X1, X0, X5 // r0p2 r1p2 r0p3 r1p3
	VMOVLPS X4, (DI)
	VMOVHPS X4, (DI)(R9*1)
	VMOVLPS X5, (DI)(R9*2)
	VMOVHPS X5, (DI)(R11*1)
	ADDQ $16, SI
	LEAQ (DI)(R9*4), DI
	DECQ CX
	JNZ  loop2rows

donerows:
	RET

// func addRowsAVX(rows, cols8 int, dst *float32, ldd int, a *float32, lda int, b *float32, ldb int, relu int)
// For r < rows and j < 8·cols8: dst[r·ldd+j] = a[r·lda+j] + b[r·ldb+j], then max(·, 0) when
// relu is set (a NaN stays NaN: VMAXPS returns its second source, the sum, on a NaN). Strides
// are in elements; ldb = 0 adds one row (a bias) to every row. AVX (VEX 256-bit).
TEXT ·addRowsAVX(SB), NOSPLIT, $0-72
	MOVQ rows+0(FP), AX
	MOVQ cols8+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), R8
	MOVQ a+32(FP), SI
	MOVQ lda+40(FP), R9
	MOVQ b+48(FP), DX
	MOVQ ldb+56(FP), R10
	MOVQ relu+64(FP), R11
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	VXORPS Y15, Y15, Y15
	TESTQ AX, AX
	JZ    addrowsdone
	TESTQ BX, BX
	JZ    addrowsdone

addrowsrow:
	MOVQ BX, CX
	XORQ R12, R12 // byte offset in the row
	TESTQ R11, R11
	JNZ   addrowsrelu

addrowsplain:
	VMOVUPS (SI)(R12*1), Y0
	VADDPS  (DX)(R12*1), Y0, Y0
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ    $32, R12
	DECQ    CX
	JNZ     addrowsplain
	JMP     addrowsnext

addrowsrelu:
	VMOVUPS (SI)(R12*1), Y0
	VADDPS  (DX)(R12*1), Y0, Y0
	VMAXPS  Y0, Y15, Y0
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ    $32, R12
	DECQ    CX
	JNZ     addrowsrelu

addrowsnext:
	ADDQ R8, DI
	ADDQ R9, SI
	ADDQ R10, DX
	DECQ AX
	JNZ  addrowsrow

addrowsdone:
	VZEROUPPER
	RET
