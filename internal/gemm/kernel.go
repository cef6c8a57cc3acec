package gemm

// kernel computes the mr×nr tile C = Aₛ·Bₛ (or C += Aₛ·Bₛ when accumulate is set) from a
// packed A strip (kb×mr, k-major) and a packed B strip (kb×nr, row by row); C has row stride
// ldc. It is the assembly kernel where the CPU supports it (see kernel_amd64.go).
var kernel = kernelGo

// kernelName says which micro-kernel Mul uses, for benchmarks and reports.
var kernelName = "go"

// KernelName names the micro-kernel this CPU runs: "avx2-fma" (amd64 assembly) or "go"
// (portable).
func KernelName() string { return kernelName }

// Accelerated reports whether Mul runs a SIMD micro-kernel on this CPU. The portable Go
// kernel (about 4 GFLOP/s per core measured on an AMD EPYC) is no faster than GoMLX's
// pure-Go backend.
func Accelerated() bool { return kernelName != "go" }

// kernelGo is the portable micro-kernel: the tile is accumulated in a local array (which the
// compiler keeps in registers only in part; it is the fallback, not the fast path).
func kernelGo(kb int, a, b, c []float32, ldc int, accumulate bool) {
	var t [mr * nr]float32
	a = a[:kb*mr]
	b = b[:kb*nr]
	for p := range kb {
		bp := (*[nr]float32)(b[p*nr : p*nr+nr])
		ap := (*[mr]float32)(a[p*mr : p*mr+mr])
		for r := range mr {
			av := ap[r]
			tr := (*[nr]float32)(t[r*nr : r*nr+nr])
			for x := range nr {
				tr[x] += av * bp[x]
			}
		}
	}
	for r := range mr {
		dst := (*[nr]float32)(c[r*ldc : r*ldc+nr])
		src := (*[nr]float32)(t[r*nr : r*nr+nr])
		if accumulate {
			for x := range nr {
				dst[x] += src[x]
			}
		} else {
			*dst = *src
		}
	}
}
