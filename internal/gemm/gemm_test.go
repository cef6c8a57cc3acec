package gemm

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// The oracle is the textbook triple loop in float64; a float32 product of depth k may differ
// from it by the rounding of k additions, so each element's bound scales with k and with
// Σₚ|a_ip·b_pj| (the standard forward error bound of a dot product, with a factor 2 spare).

// kernels runs f once per micro-kernel this machine has: the portable one always, the
// assembly one where the CPU supports it.
func kernels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	names := []string{"go"}
	if kernelName != "go" {
		names = append(names, kernelName)
	} else {
		t.Logf("no assembly micro-kernel on this CPU (%s); testing the portable one only", runtime.GOARCH)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if name == "go" {
				saved := kernel
				kernel = kernelGo
				t.Cleanup(func() { kernel = saved })
			}
			f(t)
		})
	}
}

type matrix struct {
	rows, cols, ld int
	data           []float32
}

// randomMatrix fills a rows×cols matrix with row stride ld ≥ cols; the padding between rows
// holds NaN, so reading it would show.
func randomMatrix(rng *rand.Rand, rows, cols, ld int) matrix {
	data := make([]float32, max(rows*ld, 1))
	for i := range data {
		data[i] = float32(math.NaN())
	}
	for i := range rows {
		for j := range cols {
			data[i*ld+j] = float32(rng.NormFloat64())
		}
	}
	return matrix{rows, cols, ld, data}
}

// checkProduct compares c (m×n, stride ldc) with the float64 product of a and b, and checks
// that the padding of c was left alone.
func checkProduct(t *testing.T, a, b matrix, c []float32, ldc int, pad float32) {
	t.Helper()
	m, k, n := a.rows, a.cols, b.cols
	const u = 1.0 / (1 << 24) // float32 unit roundoff
	bad := 0
	for i := range m {
		for j := range n {
			var sum, mag float64
			for p := range k {
				x := float64(a.data[i*a.ld+p]) * float64(b.data[p*b.ld+j])
				sum += x
				mag += math.Abs(x)
			}
			got := float64(c[i*ldc+j])
			tol := 2*float64(k+2)*u*mag + 1e-30
			if d := math.Abs(got - sum); !(d <= tol) {
				if bad++; bad <= 5 {
					t.Errorf("m=%d n=%d k=%d: C[%d,%d] = %g, want %g (|diff| %.3g > %.3g)", m, n, k, i, j, got, sum, d, tol)
				}
			}
		}
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			if c[i*ldc+j] != pad {
				t.Fatalf("m=%d n=%d k=%d: padding C[%d,%d] overwritten with %g", m, n, k, i, j, c[i*ldc+j])
			}
		}
	}
}

func TestMulShapes(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		sizes := []int{1, 5, 17, 33, 100, 257}
		for _, m := range sizes {
			for _, n := range sizes {
				for _, k := range sizes {
					// Strides: tight for some, padded (odd amounts) for others.
					lda, ldb, ldc := k, n, n
					if (m+n+k)%2 == 1 {
						lda, ldb, ldc = k+3, n+7, n+1
					}
					a := randomMatrix(rng, m, k, lda)
					b := randomMatrix(rng, k, n, ldb)
					const pad = -7.5
					c := make([]float32, m*ldc)
					for i := range c {
						c[i] = pad
					}
					Mul(m, n, k, a.data, lda, b.data, ldb, c, ldc)
					checkProduct(t, a, b, c, ldc, pad)
				}
			}
		}
	})
}

// TestMulBlocks crosses every blocking boundary: k over several kc panels (and not a
// multiple of them), m over several mc blocks, n over an nc panel, and both parallel splits.
func TestMulBlocks(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, s := range [][3]int{
			{300, 40, 600},    // rows split, three k panels
			{7, nc + 37, 300}, // columns split, two n panels
			{mc*2 + 5, 2*nr + 3, kc + 1},
			{32, 600, 1000}, // a dense layer's shape: few rows, deep
		} {
			m, n, k := s[0], s[1], s[2]
			a := randomMatrix(rng, m, k, k+1)
			b := randomMatrix(rng, k, n, n)
			c := make([]float32, m*(n+2))
			Mul(m, n, k, a.data, a.ld, b.data, b.ld, c, n+2)
			checkProduct(t, a, b, c, n+2, 0)
		}
	})
}

// TestMulOverwrites checks that C's old contents never leak into the result, including k = 0
// (C = 0) and empty shapes.
func TestMulOverwrites(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, s := range [][3]int{{13, 21, 600}, {4, 3, 0}, {0, 5, 3}, {5, 0, 3}} {
			m, n, k := s[0], s[1], s[2]
			a := randomMatrix(rng, m, k, max(k, 1))
			b := randomMatrix(rng, k, n, max(n, 1))
			c := make([]float32, m*n)
			for i := range c {
				c[i] = float32(math.NaN())
			}
			Mul(m, n, k, a.data, a.ld, b.data, b.ld, c, max(n, 1))
			checkProduct(t, a, b, c, max(n, 1), 0)
		}
	})
}

// TestMulWorkersDeterministic: the split over goroutines changes which goroutine computes a
// tile, never how, so every worker count gives the same bits.
func TestMulWorkersDeterministic(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, s := range [][3]int{{301, 70, 530}, {20, 700, 300}} {
			m, n, k := s[0], s[1], s[2]
			a := randomMatrix(rng, m, k, k)
			b := randomMatrix(rng, k, n, n)
			var want []float32
			for _, w := range []int{1, 2, 3, 8} {
				c := make([]float32, m*n)
				MulWorkers(w, m, n, k, a.data, k, b.data, n, c, n)
				if want == nil {
					want = c
				} else if !slices.Equal(c, want) {
					t.Errorf("m=%d n=%d k=%d: %d workers give other bits than 1", m, n, k, w)
				}
			}
		}
	})
}

// TestMulPacked: a product with B packed beforehand has the same bits as Mul's, for every
// worker count, on edge shapes and across the nc column blocks.
func TestMulPacked(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, s := range [][3]int{{1, 1, 1}, {5, 17, 33}, {100, 257, 600}, {13, nc + 40, 300}, {300, 2*nc + 3, 20}, {4, 3, 0}} {
			m, n, k := s[0], s[1], s[2]
			a := randomMatrix(rng, m, k, k+2)
			b := randomMatrix(rng, k, n, n+5)
			want := make([]float32, m*n)
			MulWorkers(1, m, n, k, a.data, a.ld, b.data, b.ld, want, n)
			checkProduct(t, a, b, want, n, 0)
			pb := PackB(k, n, b.data, b.ld)
			if pb.Rows() != k || pb.Cols() != n {
				t.Fatalf("PackB: %d×%d, want %d×%d", pb.Rows(), pb.Cols(), k, n)
			}
			for _, w := range []int{1, 2, 3} {
				c := make([]float32, m*(n+1))
				for i := range c {
					c[i] = float32(math.NaN())
				}
				MulPacked(w, m, a.data, a.ld, pb, c, n+1)
				for i := range m {
					if !slices.Equal(c[i*(n+1):i*(n+1)+n], want[i*n:(i+1)*n]) {
						t.Fatalf("m=%d n=%d k=%d, %d workers: row %d differs from Mul's", m, n, k, w, i)
					}
				}
			}
		}
	})
}

func TestMulPanicsOnShortSlices(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"short A", func() { Mul(2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, make([]float32, 4), 2) }},
		{"short C", func() { Mul(2, 2, 2, make([]float32, 4), 2, make([]float32, 4), 2, make([]float32, 3), 2) }},
		{"small ldb", func() { Mul(2, 2, 2, make([]float32, 4), 2, make([]float32, 4), 1, make([]float32, 4), 2) }},
		{"negative", func() { Mul(-1, 2, 2, nil, 2, nil, 2, nil, 2) }},
		{"short packed B", func() { PackB(3, 2, make([]float32, 5), 2) }},
		{"short C, packed", func() {
			MulPacked(1, 2, make([]float32, 6), 3, PackB(3, 2, make([]float32, 6), 2), make([]float32, 3), 2)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			c.f()
		})
	}
}
