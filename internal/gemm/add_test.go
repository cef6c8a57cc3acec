package gemm

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMulPackedBias: the fused bias and ReLU give, bit for bit, MulPacked's product followed
// by the element-by-element float32 addition and max(·, 0) written out here, with every
// micro-kernel, on 1 to 3 workers, on shapes around the tile and block edges (so edge tiles
// and several column blocks take the epilogue), and leave C's padding alone.
func TestMulPackedBias(t *testing.T) {
	eachKernel(t, func(t *testing.T, kern *microKernel) {
		rng := rand.New(rand.NewPCG(31, 32))
		mr, nr, kc := kern.mr, kern.nr, kern.kc
		shapes := [][3]int{
			{1, 1, 1}, {mr - 1, nr + 3, 7}, {2*mr + 3, 2*nr + 5, kc + 1}, {49, 512, 300},
			{kern.mc + mr + 1, kern.nc + nr + 3, 2*kc + 5}, {4, 3, 0},
		}
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			ldc := n + 2
			a := randomMatrix(rng, m, k, k+1)
			b := randomMatrix(rng, k, n, n)
			bias := randomMatrix(rng, 1, n, n).data
			pb := PackB(k, n, b.data, n)
			plain := make([]float32, max(m*ldc, 1))
			MulPacked(1, m, a.data, k+1, pb, plain, ldc)
			for _, relu := range []bool{false, true} {
				for _, withBias := range []bool{false, true} {
					want := slices.Clone(plain)
					for i := range m {
						for j := range n {
							v := want[i*ldc+j]
							if withBias {
								v += bias[j]
							}
							if relu {
								v = max(v, 0)
							}
							want[i*ldc+j] = v
						}
					}
					var bs []float32
					if withBias {
						bs = bias
					}
					for _, w := range []int{1, 2, 3} {
						const pad = -7.5
						c := make([]float32, max(m*ldc, 1))
						for i := range c {
							c[i] = pad
						}
						MulPackedBias(w, m, a.data, k+1, pb, bs, relu, c, ldc)
						for i := range m {
							got, exp := c[i*ldc:i*ldc+n], want[i*ldc:i*ldc+n]
							if !slices.Equal(got, exp) {
								t.Fatalf("m=%d n=%d k=%d bias=%v relu=%v, %d workers: row %d differs", m, n, k, withBias, relu, w, i)
							}
							for _, v := range c[i*ldc+n : min((i+1)*ldc, len(c))] {
								if v != pad {
									t.Fatalf("m=%d n=%d k=%d: padding of row %d overwritten", m, n, k, i)
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestAdd: Add is the float32 sum (and ReLU) element by element, for lengths around the
// vector width, with NaN kept through the ReLU.
func TestAdd(t *testing.T) {
	eachKernel(t, func(t *testing.T, kern *microKernel) {
		rng := rand.New(rand.NewPCG(33, 34))
		for _, n := range []int{0, 1, 7, 8, 9, 31, 64, 1000} {
			a := randomMatrix(rng, 1, n, n).data[:n]
			b := randomMatrix(rng, 1, n, n).data[:n]
			if n > 3 {
				a[3] = float32(math.NaN())
			}
			for _, relu := range []bool{false, true} {
				dst := make([]float32, n)
				Add(dst, a, b, relu)
				for i := range n {
					want := a[i] + b[i]
					if relu && want < 0 {
						want = 0
					}
					if dst[i] != want && !(math.IsNaN(float64(want)) && math.IsNaN(float64(dst[i]))) {
						t.Fatalf("n=%d relu=%v: [%d] = %v, want %v", n, relu, i, dst[i], want)
					}
				}
			}
		}
	})
}
