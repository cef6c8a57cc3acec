package gemm

import "fmt"

// Add sets dst = a + b element by element, then max(·, 0) when relu is set: a residual
// connection and the ReLU after it, in one pass over memory with the SIMD micro-kernel's
// vector instructions (in Go with the portable kernel). The sums are exact float32
// additions, the same bits whichever path computes them. It panics unless the three
// slices have the same length.
func Add(dst, a, b []float32, relu bool) {
	if len(a) != len(dst) || len(b) != len(dst) {
		panic(fmt.Sprintf("gemm: Add: lengths %d, %d and %d differ", len(dst), len(a), len(b)))
	}
	addRows(kernel, 1, len(dst), dst, 0, a, 0, b, 0, relu)
}

// addRows sets dst[r·ldd+j] = a[r·lda+j] + b[r·ldb+j] (then max(·, 0) when relu is set) for
// r < rows and j < cols; ldb = 0 adds the row b (a bias) to every row. The caller checks the
// extents. A NaN stays NaN through the ReLU.
func addRows(kern *microKernel, rows, cols int, dst []float32, ldd int, a []float32, lda int, b []float32, ldb int, relu bool) {
	if rows == 0 || cols == 0 {
		return
	}
	done := 0
	if kern.addRows != nil && cols >= 8 {
		done = cols &^ 7
		kern.addRows(rows, done/8, &dst[0], ldd, &a[0], lda, &b[0], ldb, boolInt(relu))
	}
	if done == cols {
		return
	}
	for r := range rows {
		d := dst[r*ldd+done : r*ldd+cols]
		x, y := a[r*lda+done:r*lda+cols], b[r*ldb+done:r*ldb+cols]
		for j := range d {
			v := x[j] + y[j]
			if relu && v < 0 {
				v = 0
			}
			d[j] = v
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
