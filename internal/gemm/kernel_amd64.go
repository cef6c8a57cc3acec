package gemm

import "golang.org/x/sys/cpu"

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kernel = kernelAVX2
		kernelName = "avx2-fma"
	}
}

// kernel6x16 is the AVX2+FMA micro-kernel (kernel_amd64.s): C[0:6, 0:16] (row stride ldc
// elements) = (accumulate ? C : 0) + Σₚ a[p*6+r]·b[p*16+x] over p < kb (kb ≥ 1).
//
//go:noescape
func kernel6x16(kb int, a, b, c *float32, ldc int, accumulate int)

func kernelAVX2(kb int, a, b, c []float32, ldc int, accumulate bool) {
	// The assembly trusts its pointers: check the extents here.
	_ = a[kb*mr-1]
	_ = b[kb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	acc := 0
	if accumulate {
		acc = 1
	}
	kernel6x16(kb, &a[0], &b[0], &c[0], ldc, acc)
}
