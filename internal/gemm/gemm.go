// Package gemm multiplies single-precision row-major matrices (C = A·B) fast enough for a
// frozen VGG16 on a CPU: GoMLX's pure-Go backend multiplies with scalar Go code (about 5
// GFLOP/s per core), which makes VGG16's 15.5 GMAC per image cost seconds.
//
// The algorithm is the usual blocked one (Goto/BLIS): B is packed into panels of kc rows and
// nr-column strips, A into blocks of mc rows and mr-row strips, and a register-tiled
// micro-kernel computes each mr×nr tile of C from one A strip and one B strip kept in cache.
// Edge tiles are computed whole into a zero-padded scratch tile and copied out. There are
// three micro-kernels, the fastest the CPU runs chosen at start-up (x/sys/cpu):
//
//   - avx512 (amd64 assembly, AVX-512F): a 14×32 tile in 28 of the 32 ZMM registers. Twice
//     as many registers, each twice as wide, hold a tile of 448 values instead of AVX2's 96,
//     so a step of k loads 2 B vectors and broadcasts 14 A values for 28 FMAs of 16 lanes
//     (AVX2: 2 and 6 for 12 of 8). On the AMD EPYC (Zen 5) we measured, it does 1.6–1.9× the AVX2 kernel's GFLOP per
//     CPU second on VGG16's shapes, near OpenBLAS's own AVX-512 sgemm (BenchmarkNumPy).
//   - avx2-fma (amd64 assembly, AVX2 and FMA): a 6×16 tile in twelve YMM accumulators
//     (VBROADCASTSS + VFMADD231PS), for x86 CPUs without AVX-512.
//   - go (portable Go): the same 6×16 tiling in plain Go, for other architectures and old
//     CPUs, and as the independent path the assembly is tested against. It is about as slow
//     as GoMLX's own backend (Accelerated reports false).
//
// WORKBOOK_GEMM=avx512|avx2|portable forces one (read once at start-up; a kernel the CPU
// lacks stops the program with an error naming the missing feature), so every path can be
// run and compared on one machine; KernelName reports the one in use.
//
// Mul, MulWorkers and MulPacked split a large product over goroutines (by blocks of whole
// tiles, rows or columns); products under about 2 MFLOP stay on the calling goroutine.
//
// Results are deterministic: every element of C is accumulated in the same order whatever
// the number of goroutines, so the same inputs give the same bits on the same kernel. Other
// kernels round differently (within float32 rounding of the exact product).
package gemm

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/transfer-learning-go/workbook/internal/hugepages"
)

// Register tile and cache blocking of the AVX2 and portable micro-kernels (see microKernel;
// the AVX-512 one has its own). kc bounds the depth of a packed panel (an A strip of mr×kc
// and a B strip of kc×nr stay in L1), mc×kc of packed A fits in L2 and kc×nc of packed B in
// the shared L3.
const (
	mr = 6
	nr = 16
	kc = 256
	mc = 144  // multiple of mr
	nc = 4080 // multiple of nr
)

// minParallelFlops is the work under which Mul stays on the calling goroutine: below it the
// goroutine start and the duplicated packing cost more than a second core gains.
const minParallelFlops = 1 << 21

// Mul computes C = A·B for row-major A (m×k, row stride lda), B (k×n, row stride ldb) and C
// (m×n, row stride ldc), overwriting C, on up to GOMAXPROCS goroutines. It panics if a
// slice is too short for its shape and stride, as an out-of-range index would.
func Mul(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	MulWorkers(runtime.GOMAXPROCS(0), m, n, k, a, lda, b, ldb, c, ldc)
}

// MulWorkers is Mul on at most workers goroutines (1: only the calling one), for callers
// that parallelise at a coarser level themselves. The result does not depend on workers.
func MulWorkers(workers, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkArgs(m, n, k, a, lda, b, ldb, c, ldc)
	if trivial(m, n, k, c, ldc) {
		return
	}
	kern := kernel
	parallel(kern, workers, m, n, k, func(i0, i1, j0, j1 int) {
		mulSerial(kern, i1-i0, j1-j0, k, a[i0*lda:], lda, b[j0:], ldb, c[i0*ldc+j0:], ldc)
	})
}

// trivial handles the products with nothing to multiply (C empty, or k = 0: C = 0).
func trivial(m, n, k int, c []float32, ldc int) bool {
	if m == 0 || n == 0 {
		return true
	}
	if k == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
		return true
	}
	return false
}

// parallel splits C into up to workers contiguous blocks of whole tiles and calls part for
// each (rows [i0, i1), columns [j0, j1)) on its own goroutine. It splits the larger of m and
// n, so the matrix each goroutine packs in full (B when rows are split, A when columns are)
// is the smaller one. A tile is computed the same way whichever goroutine gets it.
func parallel(kern *microKernel, workers, m, n, k int, part func(i0, i1, j0, j1 int)) {
	mr, nr := kern.mr, kern.nr
	workers = max(workers, 1)
	if 2*m*n*k < minParallelFlops {
		workers = 1
	}
	rowStrips, colStrips := ceilDiv(m, mr), ceilDiv(n, nr)
	splitRows := m >= n
	if splitRows && rowStrips < workers && colStrips >= workers {
		splitRows = false
	} else if !splitRows && colStrips < workers && rowStrips >= workers {
		splitRows = true
	}
	strips := colStrips
	if splitRows {
		strips = rowStrips
	}
	workers = min(workers, strips)
	if workers == 1 {
		part(0, m, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		s0, s1 := w*strips/workers, (w+1)*strips/workers
		if splitRows {
			wg.Go(func() { part(s0*mr, min(s1*mr, m), 0, n) })
		} else {
			wg.Go(func() { part(0, m, s0*nr, min(s1*nr, n)) })
		}
	}
	wg.Wait()
}

// PackedB is a k×n matrix packed once for many products A·B — a layer's weights — so the
// products skip packing it (for a convolution computed in bands of output rows, packing
// the weights at every band costs as much as the multiplications).
type PackedB struct {
	kern  *microKernel // the micro-kernel whose strips the panels hold
	k, n  int
	depth int // rows per panel (the last may have fewer)
	data  []float32
	// offset[jb*panels+pb] is where the panel of column block jb and row block pb starts.
	offset []int
	panels int
}

// PackB packs the row-major k×n matrix b (row stride ldb). It uses about as much memory as
// b itself (the last column strip of each block is padded to the micro-kernel's tile width,
// 16 or 32 columns). It is laid out for the micro-kernel in use, which MulPacked then runs.
func PackB(k, n int, b []float32, ldb int) *PackedB {
	checkArgs(0, n, k, nil, 0, b, ldb, nil, 0)
	kern := kernel
	nc, nr := kern.nc, kern.nr
	p := &PackedB{kern: kern, k: k, n: n}
	if k == 0 || n == 0 {
		return p
	}
	p.depth = blockDepth(kern, k)
	p.panels = ceilDiv(k, p.depth)
	size := 0
	for j0 := 0; j0 < n; j0 += nc {
		nb := min(nc, n-j0)
		for p0 := 0; p0 < k; p0 += p.depth {
			kb := min(p.depth, k-p0)
			p.offset = append(p.offset, size)
			size += ceilDiv(nb, nr) * nr * kb
		}
	}
	p.data = hugepages.Make[float32](size)
	i := 0
	for j0 := 0; j0 < n; j0 += nc {
		nb := min(nc, n-j0)
		for p0 := 0; p0 < k; p0 += p.depth {
			kb := min(p.depth, k-p0)
			packB(kern, p.data[p.offset[i]:], b[p0*ldb+j0:], ldb, kb, nb)
			i++
		}
	}
	return p
}

// Rows is k, the number of rows of the packed matrix.
func (p *PackedB) Rows() int { return p.k }

// Cols is n, the number of columns of the packed matrix.
func (p *PackedB) Cols() int { return p.n }

// MulPacked computes C = A·B for a packed B (k×n), A (m×k, row stride lda) and C (m×n, row
// stride ldc) on at most workers goroutines, with the micro-kernel b was packed for. The
// result has the same bits as Mul's.
func MulPacked(workers, m int, a []float32, lda int, b *PackedB, c []float32, ldc int) {
	MulPackedBias(workers, m, a, lda, b, nil, false, c, ldc)
}

// MulPackedBias is MulPacked followed by C[i][j] += bias[j] (when bias is not nil) and
// max(·, 0) (when relu is set) — a layer's bias and ReLU — applied to each register tile of
// C right after its last product, while the tile is still in L1, instead of in another pass
// over C. The bits are those of MulPacked then the additions.
func MulPackedBias(workers, m int, a []float32, lda int, b *PackedB, bias []float32, relu bool, c []float32, ldc int) {
	n, k := b.n, b.k
	if m < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d", m))
	}
	checkMatrix("A", a, m, k, lda)
	checkMatrix("C", c, m, n, ldc)
	if bias != nil && len(bias) < n {
		panic(fmt.Sprintf("gemm: bias: %d values for %d columns", len(bias), n))
	}
	if trivial(m, n, k, c, ldc) {
		if k == 0 && (bias != nil || relu) {
			ep := epilogue{bias: bias, relu: relu}
			ep.apply(b.kern, m, n, c, ldc, 0)
		}
		return
	}
	var ep *epilogue
	if bias != nil || relu {
		ep = &epilogue{bias: bias, relu: relu}
	}
	parallel(b.kern, workers, m, n, k, func(i0, i1, j0, j1 int) {
		mulPackedSerial(i1-i0, j0, j1, a[i0*lda:], lda, b, c[i0*ldc:], ldc, ep)
	})
}

// epilogue is what MulPackedBias does to a tile of C once its product is complete.
type epilogue struct {
	bias []float32 // nil: no bias
	relu bool
}

// apply adds the bias (its columns from j0 on) to the rows×cols block of C at c and applies
// the ReLU.
func (ep *epilogue) apply(kern *microKernel, rows, cols int, c []float32, ldc, j0 int) {
	if ep.bias != nil {
		addRows(kern, rows, cols, c, ldc, c, ldc, ep.bias[j0:], 0, ep.relu)
		return
	}
	for r := range rows {
		row := c[r*ldc : r*ldc+cols]
		for j, v := range row {
			if v < 0 {
				row[j] = 0
			}
		}
	}
}

// mulPackedSerial computes columns [j0, j1) (tile-aligned: j0 a multiple of nr) of C = A·B,
// then the epilogue, if any.
func mulPackedSerial(m, j0, j1 int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *epilogue) {
	kern := b.kern
	nc, mc := kern.nc, kern.mc
	buf := getBuffers(kern, false)
	defer bufferPool.Put(buf)
	k := b.k
	for jb := 0; jb*nc < j1; jb++ {
		// The part of column block jb inside [j0, j1).
		lo, hi := max(jb*nc, j0), min((jb+1)*nc, j1, b.n)
		if lo >= hi {
			continue
		}
		for pb := range b.panels {
			p0 := pb * b.depth
			kb := min(b.depth, k-p0)
			panel := b.data[b.offset[jb*b.panels+pb]+(lo-jb*nc)*kb:]
			var last *epilogue
			if pb == b.panels-1 {
				last = ep
			}
			for i0 := 0; i0 < m; i0 += mc {
				mb := min(mc, m-i0)
				packA(kern, buf.a, a[i0*lda+p0:], lda, mb, kb)
				macroKernel(kern, mb, hi-lo, kb, buf.a, panel, c[i0*ldc+lo:], ldc, p0 > 0, last, lo)
			}
		}
	}
}

func checkArgs(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	checkMatrix("A", a, m, k, lda)
	checkMatrix("B", b, k, n, ldb)
	checkMatrix("C", c, m, n, ldc)
}

// checkMatrix panics unless s holds a rows×cols matrix with row stride ld.
func checkMatrix(name string, s []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("gemm: %s: leading dimension %d < %d columns", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("gemm: %s: %d values for %d×%d with stride %d (need %d)", name, len(s), rows, cols, ld, need))
	}
}

// buffers are one goroutine's packing areas.
type buffers struct {
	a []float32 // mc×kc, in mr-row strips
	b []float32 // kc×nc, in nr-column strips; allocated by the first Mul (MulPacked needs none)
}

var bufferPool = sync.Pool{New: func() any { return new(buffers) }}

// getBuffers takes packing areas from the pool, large enough for kern's blocks (and for B
// too when withB is set).
func getBuffers(kern *microKernel, withB bool) *buffers {
	buf := bufferPool.Get().(*buffers)
	if n := kern.mc * kern.kc; len(buf.a) < n {
		buf.a = make([]float32, n)
	}
	if n := kern.kc * kern.nc; withB && len(buf.b) < n {
		buf.b = make([]float32, n)
	}
	return buf
}

// blockDepth splits k into equal panels of at most kern.kc, so no panel is much shallower
// than the others (a shallow panel pays the C load/store for little work).
func blockDepth(kern *microKernel, k int) int {
	panels := ceilDiv(k, kern.kc)
	return ceilDiv(k, panels)
}

// mulSerial is the blocked product on the calling goroutine.
func mulSerial(kern *microKernel, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	nc, mc := kern.nc, kern.mc
	buf := getBuffers(kern, true)
	defer bufferPool.Put(buf)
	depth := blockDepth(kern, k)
	for j0 := 0; j0 < n; j0 += nc {
		nb := min(nc, n-j0)
		for p0 := 0; p0 < k; p0 += depth {
			kb := min(depth, k-p0)
			packB(kern, buf.b, b[p0*ldb+j0:], ldb, kb, nb)
			for i0 := 0; i0 < m; i0 += mc {
				mb := min(mc, m-i0)
				packA(kern, buf.a, a[i0*lda+p0:], lda, mb, kb)
				macroKernel(kern, mb, nb, kb, buf.a, buf.b, c[i0*ldc+j0:], ldc, p0 > 0, nil, 0)
			}
		}
	}
}

// macroKernel multiplies a packed mb×kb block of A by a packed kb×nb panel of B into C
// (adding to C when accumulate is set), then applies ep (if not nil; C's first column is
// column j0 of the whole product) to each tile. Full tiles go straight to C; edge tiles go
// through a zero-padded scratch tile, so the kernel always computes mr×nr.
func macroKernel(kern *microKernel, mb, nb, kb int, pa, pb []float32, c []float32, ldc int, accumulate bool, ep *epilogue, j0 int) {
	mr, nr, kernel := kern.mr, kern.nr, kern.tile
	var tile [maxTile]float32
	for j := 0; j < nb; j += nr {
		bs := pb[j*kb : j*kb+nr*kb]
		cols := min(nr, nb-j)
		for i := 0; i < mb; i += mr {
			as := pa[i*kb : i*kb+mr*kb]
			rows := min(mr, mb-i)
			if rows == mr && cols == nr {
				kernel(kb, as, bs, c[i*ldc+j:], ldc, accumulate)
			} else {
				kernel(kb, as, bs, tile[:], nr, false)
				for r := range rows {
					dst := c[(i+r)*ldc+j : (i+r)*ldc+j+cols]
					src := tile[r*nr : r*nr+cols]
					if accumulate {
						for x, v := range src {
							dst[x] += v
						}
					} else {
						copy(dst, src)
					}
				}
			}
			if ep != nil {
				ep.apply(kern, rows, cols, c[i*ldc+j:], ldc, j0+j)
			}
		}
	}
}

// packA copies an mb×kb block of A into mr-row strips, each stored k-major (the mr values of
// one column of the strip are adjacent), zero-padding the last strip to mr rows.
func packA(kern *microKernel, dst, a []float32, lda, mb, kb int) {
	mr := kern.mr
	for i := 0; i < mb; i += mr {
		s := dst[i*kb : i*kb+mr*kb]
		rows := min(mr, mb-i)
		if rows == mr && kern.packStrip != nil {
			kern.packStrip(s, a[i*lda:], lda, mr, kb)
			continue
		}
		if rows == 6 && mr == 6 {
			r0 := a[i*lda : i*lda+kb]
			r1 := a[(i+1)*lda : (i+1)*lda+kb]
			r2 := a[(i+2)*lda : (i+2)*lda+kb]
			r3 := a[(i+3)*lda : (i+3)*lda+kb]
			r4 := a[(i+4)*lda : (i+4)*lda+kb]
			r5 := a[(i+5)*lda : (i+5)*lda+kb]
			for p := range kb {
				d := (*[6]float32)(s[p*6 : p*6+6])
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		if rows < mr {
			clear(s)
		}
		for r := range rows {
			row := a[(i+r)*lda : (i+r)*lda+kb]
			for p, v := range row {
				s[p*mr+r] = v
			}
		}
	}
}

// packB copies a kb×nb panel of B into nr-column strips, each stored row by row,
// zero-padding the last strip to nr columns.
func packB(kern *microKernel, dst, b []float32, ldb, kb, nb int) {
	nr := kern.nr
	for j := 0; j < nb; j += nr {
		s := dst[j*kb : j*kb+nr*kb]
		cols := min(nr, nb-j)
		if cols == nr {
			for p := range kb {
				copy(s[p*nr:p*nr+nr], b[p*ldb+j:p*ldb+j+nr])
			}
			continue
		}
		clear(s)
		for p := range kb {
			copy(s[p*nr:p*nr+cols], b[p*ldb+j:p*ldb+j+cols])
		}
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
