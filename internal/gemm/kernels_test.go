package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// eachKernel runs f once per micro-kernel this build has, with Mul and PackB switched to it:
// on an amd64 CPU with AVX-512 all three (AVX-512, AVX2, portable) run. A kernel the CPU
// lacks cannot run: testenv.NeedFeature skips it and says so at the end of CI's output (and
// fails where CI found the feature in /proc/cpuinfo: features "avx512", "avx2").
func eachKernel(t *testing.T, f func(t *testing.T, kern *microKernel)) {
	t.Helper()
	for _, kern := range archKernels() {
		t.Run(kern.name, func(t *testing.T) {
			testenv.NeedFeature(t, strings.TrimSuffix(kern.name, "-fma"), kern.missing == "",
				"micro-kernel "+kern.name+" (this CPU lacks "+kern.missing+")")
			saved := kernel
			kernel = kern
			t.Cleanup(func() { kernel = saved })
			f(t, kern)
		})
	}
}

// TestKernelsAgainstReference: every micro-kernel, through Mul and MulPacked on 1 to 3
// workers, matches the float64 product within float32 rounding (checkProduct's bound,
// relative to Σ|a||b|), on shapes around its own tile and block edges, zero sizes and a
// deep k; all worker counts give the same bits.
func TestKernelsAgainstReference(t *testing.T) {
	eachKernel(t, func(t *testing.T, kern *microKernel) {
		rng := rand.New(rand.NewPCG(21, 22))
		mr, nr, kc := kern.mr, kern.nr, kern.kc
		var shapes [][3]int
		for _, m := range []int{1, mr - 1, mr + 1, 2*mr + 3} {
			for _, n := range []int{1, nr - 1, nr + 1, 2*nr + 5} {
				for _, k := range []int{1, 7, kc + 1} {
					shapes = append(shapes, [3]int{m, n, k})
				}
			}
		}
		shapes = append(shapes,
			[3]int{kern.mc + mr + 1, kern.nc + nr + 3, 2*kc + 5}, // every block boundary
			[3]int{5, 33, 20000}, // deep k: many panels
			[3]int{0, 5, 3}, [3]int{5, 0, 3}, [3]int{4, 3, 0}, [3]int{0, 0, 0},
		)
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			lda, ldb, ldc := k+3, n+1, n+2
			a := randomMatrix(rng, m, k, lda)
			b := randomMatrix(rng, k, n, ldb)
			pb := PackB(k, n, b.data, ldb)
			if pb.kern != kern {
				t.Fatalf("PackB packed for %s, want %s", pb.kern.name, kern.name)
			}
			var want []float32
			for _, w := range []int{1, 2, 3} {
				for _, packed := range []bool{false, true} {
					const pad = -7.5
					c := make([]float32, max(m*ldc, 1))
					for i := range c {
						c[i] = pad
					}
					if packed {
						MulPacked(w, m, a.data, lda, pb, c, ldc)
					} else {
						MulWorkers(w, m, n, k, a.data, lda, b.data, ldb, c, ldc)
					}
					if want == nil {
						checkProduct(t, a, b, c, ldc, pad)
						want = c
					} else if !slices.Equal(c, want) {
						t.Errorf("m=%d n=%d k=%d: %d workers (packed B: %v) give other bits than 1", m, n, k, w, packed)
					}
				}
			}
		}
	})
}

// TestKernelsAgree: the micro-kernels sum in different orders (FMA or not, other panel
// depths), so their results differ, but by no more than the sum of their rounding bounds.
func TestKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const m, n, k = 61, 75, 1100
	a := randomMatrix(rng, m, k, k)
	b := randomMatrix(rng, k, n, n)
	mag := make([]float64, m*n) // Σₚ|a_ip·b_pj|
	for i := range m {
		for j := range n {
			for p := range k {
				mag[i*n+j] += math.Abs(float64(a.data[i*k+p]) * float64(b.data[p*n+j]))
			}
		}
	}
	results := map[string][]float32{}
	eachKernel(t, func(t *testing.T, kern *microKernel) {
		c := make([]float32, m*n)
		Mul(m, n, k, a.data, k, b.data, n, c, n)
		results[kern.name] = c
	})
	const u = 1.0 / (1 << 24)
	for x, cx := range results {
		for y, cy := range results {
			if x >= y {
				continue
			}
			for i := range cx {
				tol := 2 * 2 * float64(k+2) * u * mag[i]
				if d := math.Abs(float64(cx[i]) - float64(cy[i])); !(d <= tol) {
					t.Fatalf("C[%d,%d]: %s gives %g, %s %g (|diff| %.3g > %.3g)", i/n, i%n, x, cx[i], y, cy[i], d, tol)
				}
			}
		}
	}
	if len(results) < 2 {
		t.Logf("only %d micro-kernel(s) run on this CPU", len(results))
	}
}

// TestPackedBKeepsItsKernel: a B packed for one micro-kernel is multiplied by that one even
// after the kernel in use changes, since the packed strips have its tile width.
func TestPackedBKeepsItsKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	const m, n, k = 30, 70, 50
	a := randomMatrix(rng, m, k, k)
	b := randomMatrix(rng, k, n, n)
	eachKernel(t, func(t *testing.T, packer *microKernel) {
		pb := PackB(k, n, b.data, n)
		eachKernel(t, func(t *testing.T, _ *microKernel) {
			c := make([]float32, m*n)
			MulPacked(2, m, a.data, k, pb, c, n)
			checkProduct(t, a, b, c, n, 0)
		})
	})
}

func TestChooseKernel(t *testing.T) {
	fast := &microKernel{name: "avx512", missing: "AVX-512F"}
	mid := &microKernel{name: "avx2-fma"}
	choices := []*microKernel{fast, mid, kernelGo}
	for _, c := range []struct {
		value string
		want  *microKernel
		err   string
	}{
		{"", mid, ""},
		{"auto", mid, ""},
		{"AVX2", mid, ""},
		{"portable", kernelGo, ""},
		{"go", kernelGo, ""},
		{"avx512", nil, "lacks AVX-512F"},
		{"sse", nil, "unknown micro-kernel"},
	} {
		got, err := chooseKernel(c.value, choices)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), envKernel) {
				t.Errorf("%s=%q: error %v, want one naming %s and saying %q", envKernel, c.value, err, envKernel, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s=%q: %v, %v; want %s", envKernel, c.value, got, err, c.want.name)
		}
	}
	if _, err := chooseKernel("avx2", []*microKernel{kernelGo}); err == nil || !strings.Contains(err.Error(), "no such micro-kernel") {
		t.Errorf("avx2 on a build without it: error %v", err)
	}
	// On this machine, the default is the fastest kernel the CPU runs.
	def, err := chooseKernel("", archKernels())
	if err != nil || def.missing != "" {
		t.Fatalf("default kernel: %v, %v", def, err)
	}
	for _, k := range archKernels() {
		if k == def {
			break
		}
		if k.missing == "" {
			t.Errorf("default %s, but the faster %s runs here", def.name, k.name)
		}
	}
}

// TestForcedKernelProcess starts this test binary with WORKBOOK_GEMM set: forcing the
// portable kernel (and each other one the CPU has) works and gives a correct product; an
// unknown value stops the process at start-up with an error naming the variable.
func TestForcedKernelProcess(t *testing.T) {
	if os.Getenv("GEMM_TEST_CHILD") == "1" {
		rng := rand.New(rand.NewPCG(27, 28))
		a := randomMatrix(rng, 37, 300, 300)
		b := randomMatrix(rng, 300, 45, 45)
		c := make([]float32, 37*45)
		Mul(37, 45, 300, a.data, 300, b.data, 45, c, 45)
		checkProduct(t, a, b, c, 45, 0)
		fmt.Printf("kernel=%s accelerated=%v\n", KernelName(), Accelerated())
		return
	}
	run := func(value string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestForcedKernelProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GEMM_TEST_CHILD=1", envKernel+"="+value)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	want := map[string]string{"portable": "kernel=go accelerated=false"}
	for _, k := range archKernels() {
		if k.missing != "" {
			continue
		}
		switch k.name {
		case "avx512":
			want["avx512"] = "kernel=avx512 accelerated=true"
		case "avx2-fma":
			want["avx2"] = "kernel=avx2-fma accelerated=true"
		}
	}
	for value, line := range want {
		out, err := run(value)
		if err != nil || !strings.Contains(out, line) {
			t.Errorf("%s=%s: %v\n%s\nwant a line %q", envKernel, value, err, out, line)
		}
	}
	out, err := run("sse")
	if err == nil || !strings.Contains(out, envKernel+`="sse": unknown micro-kernel`) {
		t.Errorf("%s=sse: %v\n%s\nwant a start-up panic naming the variable", envKernel, err, out)
	}
	for _, k := range archKernels() {
		if k.missing == "" {
			continue
		}
		value := map[string]string{"avx512": "avx512", "avx2-fma": "avx2"}[k.name]
		out, err := run(value)
		if err == nil || !strings.Contains(out, "lacks "+k.missing) {
			t.Errorf("%s=%s on a CPU without %s: %v\n%s\nwant a start-up panic naming it", envKernel, value, k.missing, err, out)
		}
	}
}

// TestParallelSplit: a large product is split into one block of whole tiles per worker,
// covering C once, and the blocks run at the same time (each waits for all the others, so
// a split that ran them one after another would never finish); a small one stays whole.
func TestParallelSplit(t *testing.T) {
	eachKernel(t, func(t *testing.T, kern *microKernel) {
		for _, s := range [][3]int{{3136, 64, 576}, {32, 4096, 1000}} {
			m, n, k := s[0], s[1], s[2]
			for _, workers := range []int{2, 3} {
				var mu sync.Mutex
				var blocks [][4]int
				var arrived sync.WaitGroup
				arrived.Add(workers)
				all := make(chan struct{})
				go func() { arrived.Wait(); close(all) }()
				parallel(kern, workers, m, n, k, func(i0, i1, j0, j1 int) {
					mu.Lock()
					blocks = append(blocks, [4]int{i0, i1, j0, j1})
					mu.Unlock()
					arrived.Done()
					select {
					case <-all:
					case <-time.After(time.Minute):
						t.Errorf("m=%d n=%d k=%d: block [%d,%d)×[%d,%d) waited a minute for the other workers", m, n, k, i0, i1, j0, j1)
					}
				})
				if len(blocks) != workers {
					t.Fatalf("m=%d n=%d k=%d: %d blocks for %d workers", m, n, k, len(blocks), workers)
				}
				times := make([]int, m*n) // how many blocks hold each element
				for _, b := range blocks {
					if b[0]%kern.mr != 0 || b[2]%kern.nr != 0 {
						t.Errorf("block %v does not start on a %d×%d tile", b, kern.mr, kern.nr)
					}
					for i := b[0]; i < b[1]; i++ {
						for j := b[2]; j < b[3]; j++ {
							times[i*n+j]++
						}
					}
				}
				if i := slices.IndexFunc(times, func(x int) bool { return x != 1 }); i >= 0 {
					t.Errorf("m=%d n=%d k=%d: blocks %v hold C[%d,%d] %d times", m, n, k, blocks, i/n, i%n, times[i])
				}
			}
		}
		calls := 0
		parallel(kern, 2, 20, 20, 20, func(i0, i1, j0, j1 int) { calls++ })
		if calls != 1 {
			t.Errorf("a 16 kFLOP product was split into %d blocks", calls)
		}
	})
}
