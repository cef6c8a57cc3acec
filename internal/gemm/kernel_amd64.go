package gemm

import "golang.org/x/sys/cpu"

// archKernels lists the amd64 micro-kernels, fastest first.
func archKernels() []*microKernel { return []*microKernel{kernelAVX512, kernelAVX2, kernelGo} }

// lacks returns feature if the CPU lacks it (has is false), else "". x/sys/cpu's flags also
// check that the OS saves the wider registers.
func lacks(has bool, feature string) string {
	if has {
		return ""
	}
	return feature
}

// kernelAVX512 is a 14×32 tile in 28 ZMM accumulators (Z4..Z31), two ZMM for the B row and
// two for broadcasts of A: the 32 registers of AVX-512 hold twice the tile of AVX2's 16, so
// each FMA needs half the loads. 14 rows divide VGG16's image widths (224, 112, 56, 28, 14),
// so the convolutions' bands have no edge strips. kc and mc were picked by BenchmarkMul's
// shapes on an AMD EPYC (Zen 5): a 32 KiB B strip in L1, a 336 KiB A block in L2; 192 to
// 384 deep and 84 to 336 rows were all within the noise of each other.
var kernelAVX512 = &microKernel{
	name: "avx512", mr: 14, nr: 32, kc: 256, mc: 14 * 24, nc: 32 * 128,
	tile: tileAVX512, packStrip: packStripSIMD, addRows: addRowsAVX, missing: lacks(cpu.X86.HasAVX512F, "AVX-512F"),
}

// kernelAVX2 is the 6×16 tile in twelve YMM accumulators (VBROADCASTSS + VFMADD231PS), for
// CPUs with AVX2 and FMA but without AVX-512.
var kernelAVX2 = &microKernel{
	name: "avx2-fma", mr: mr, nr: nr, kc: kc, mc: mc, nc: nc,
	tile: tileAVX2, packStrip: packStripSIMD, addRows: addRowsAVX, missing: lacks(cpu.X86.HasAVX2 && cpu.X86.HasFMA, "AVX2 and FMA"),
}

// kernel6x16 is the AVX2+FMA micro-kernel (kernel_amd64.s): C[0:6, 0:16] (row stride ldc
// elements) = (accumulate ? C : 0) + Σₚ a[p*6+r]·b[p*16+x] over p < kb (kb ≥ 1).
//
//go:noescape
func kernel6x16(kb int, a, b, c *float32, ldc int, accumulate int)

// kernel14x32 is the AVX-512F micro-kernel (kernel_amd64.s): C[0:14, 0:32] (row stride ldc
// elements) = (accumulate ? C : 0) + Σₚ a[p*14+r]·b[p*32+x] over p < kb (kb ≥ 1).
//
//go:noescape
func kernel14x32(kb int, a, b, c *float32, ldc int, accumulate int)

func tileAVX2(kb int, a, b, c []float32, ldc int, accumulate bool) {
	// The assembly trusts its pointers: check the extents here.
	_ = a[kb*mr-1]
	_ = b[kb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernel6x16(kb, &a[0], &b[0], &c[0], ldc, boolInt(accumulate))
}

func tileAVX512(kb int, a, b, c []float32, ldc int, accumulate bool) {
	const mr, nr = 14, 32
	_ = a[kb*mr-1]
	_ = b[kb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernel14x32(kb, &a[0], &b[0], &c[0], ldc, boolInt(accumulate))
}

// packRows (kernel_amd64.s) transposes rows (4 or 2) rows of A, 4·kb4 columns, into
// k-major order with stride ldd: dst[p·ldd+r] = src[r·lda+p]. AVX (VEX-encoded SSE
// shuffles).
//
//go:noescape
func packRows(rows, kb4 int, src *float32, lda int, dst *float32, ldd int)

// packStripSIMD packs a full strip of mr rows (mr even) of kb columns: dst[p·mr+r] =
// a[r·lda+p]. The scalar Go loop packs a strip about 5 times slower, as much time as the
// AVX-512 kernel's multiplications take when B has 64 columns (VGG16's first block).
func packStripSIMD(dst, a []float32, lda, mr, kb int) {
	_ = dst[mr*kb-1]
	_ = a[(mr-1)*lda+kb-1]
	kb4 := kb / 4
	if kb4 > 0 {
		r := 0
		for ; r+4 <= mr; r += 4 {
			packRows(4, kb4, &a[r*lda], lda, &dst[r], mr)
		}
		if r < mr {
			packRows(2, kb4, &a[r*lda], lda, &dst[r], mr)
		}
	}
	for r := range mr {
		for p := 4 * kb4; p < kb; p++ {
			dst[p*mr+r] = a[r*lda+p]
		}
	}
}

// addRowsAVX (kernel_amd64.s): dst[r·ldd+j] = a[r·lda+j] + b[r·ldb+j] for r < rows, j <
// 8·cols8, then max(·, 0) when relu is 1. AVX, which every CPU with AVX2 has.
//
//go:noescape
func addRowsAVX(rows, cols8 int, dst *float32, ldd int, a *float32, lda int, b *float32, ldb int, relu int)
