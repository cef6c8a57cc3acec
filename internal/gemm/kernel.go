package gemm

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// microKernel is one register-tiled micro-kernel and the cache blocking that suits its tile.
type microKernel struct {
	name   string
	mr, nr int // register tile: mr rows × nr columns of C
	// kc bounds the depth of a packed panel (a B strip of kc×nr stays in L1), mc×kc of packed
	// A fits in L2 and kc×nc of packed B in the shared L3. mc is a multiple of mr, nc of nr.
	kc, mc, nc int
	// tile computes the mr×nr tile C = Aₛ·Bₛ (or C += Aₛ·Bₛ when accumulate is set) from a
	// packed A strip (kb×mr, k-major) and a packed B strip (kb×nr, row by row); C has row
	// stride ldc.
	tile func(kb int, a, b, c []float32, ldc int, accumulate bool)
	// packStrip, if not nil, packs a full strip of A (mr rows, kb columns, row stride lda)
	// k-major into dst, with SIMD shuffles; nil packs in Go.
	packStrip func(dst, a []float32, lda, mr, kb int)
	// addRows, if not nil, is the SIMD form of addRowsGo for whole groups of 8 columns
	// (cols8 of them); nil adds in Go.
	addRows func(rows, cols8 int, dst *float32, ldd int, a *float32, lda int, b *float32, ldb int, relu int)
	// missing names the CPU feature this machine lacks for the kernel ("" when it runs here).
	missing string
}

// maxTile bounds mr×nr over the kernels (the AVX-512 one's 14×32), for edge scratch tiles.
const maxTile = 14 * 32

// envKernel names the environment variable that forces a micro-kernel: avx512, avx2 or
// portable (empty or auto: the fastest this CPU runs). It is read once, at start-up, so every
// path can be run and compared on one machine; a kernel the CPU lacks is refused with a panic
// naming the missing feature, rather than falling back silently.
const envKernel = "WORKBOOK_GEMM"

// kernel is the micro-kernel Mul and PackB use: chosen at start-up (see envKernel), switched
// only by tests.
var kernel = mustChooseKernel(os.Getenv(envKernel))

// kernelName names the micro-kernel chosen at start-up.
var kernelName = kernel.name

// KernelName names the micro-kernel in use: "avx512" (amd64 assembly, AVX-512F), "avx2-fma"
// (amd64 assembly, AVX2 and FMA) or "go" (portable). WORKBOOK_GEMM=avx512|avx2|portable
// forces one.
func KernelName() string { return kernel.name }

// Accelerated reports whether Mul runs a SIMD micro-kernel on this CPU. The portable Go
// kernel (about 4 GFLOP/s per core measured on an AMD EPYC) is no faster than GoMLX's
// pure-Go backend.
func Accelerated() bool { return kernel != kernelGo }

// kernelAliases maps the accepted spellings of WORKBOOK_GEMM to kernel names.
var kernelAliases = map[string]string{
	"avx512": "avx512", "avx512f": "avx512",
	"avx2": "avx2-fma", "avx2-fma": "avx2-fma",
	"portable": "go", "go": "go",
}

// chooseKernel returns the kernel named by a WORKBOOK_GEMM value among choices (fastest
// first): the first one the CPU runs for "" or "auto", else the named one, or an error if the
// name is unknown, the kernel is not built for this architecture or the CPU lacks a feature.
func chooseKernel(value string, choices []*microKernel) (*microKernel, error) {
	value = strings.ToLower(strings.TrimSpace(value))
	if value == "" || value == "auto" {
		for _, k := range choices {
			if k.missing == "" {
				return k, nil
			}
		}
		return nil, fmt.Errorf("gemm: no micro-kernel runs on this CPU")
	}
	name, ok := kernelAliases[value]
	if !ok {
		return nil, fmt.Errorf("gemm: %s=%q: unknown micro-kernel (want avx512, avx2, portable or auto)", envKernel, value)
	}
	for _, k := range choices {
		if k.name != name {
			continue
		}
		if k.missing != "" {
			return nil, fmt.Errorf("gemm: %s=%s: this CPU lacks %s", envKernel, value, k.missing)
		}
		return k, nil
	}
	return nil, fmt.Errorf("gemm: %s=%s: no such micro-kernel on %s", envKernel, value, runtime.GOARCH)
}

func mustChooseKernel(value string) *microKernel {
	k, err := chooseKernel(value, archKernels())
	if err != nil {
		panic(err)
	}
	return k
}

// kernelGo is the portable micro-kernel, a 6×16 tile accumulated in a local array (which the
// compiler keeps in registers only in part; it is the fallback, not the fast path).
var kernelGo = &microKernel{name: "go", mr: mr, nr: nr, kc: kc, mc: mc, nc: nc, tile: tileGo}

func tileGo(kb int, a, b, c []float32, ldc int, accumulate bool) {
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
