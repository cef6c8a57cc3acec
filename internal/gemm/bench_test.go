package gemm

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// The benchmarks report GFLOP/s (2mnk per product) and GFLOP per CPU second (steadier on a
// shared machine) for each micro-kernel, and PyTorch's and NumPy's sgemm on the same shapes,
// so one run compares them:
//
//	go test -run '^$' -bench . ./internal/gemm
//
// The shapes are VGG16's convolutions as im2col products (pixels × 9·Cin by 9·Cin × Cout)
// and its fc1 layer at batch 32.
var benchShapes = [][3]int{
	{3136, 64, 576},   // block1_conv2, a 14-row band
	{3136, 256, 2304}, // block3_conv2
	{196, 512, 4608},  // block5_conv2
	{32, 4096, 25088}, // fc1, batch 32
}

// cpuSeconds is the CPU time (user + system, all threads) this process has used: on a shared
// machine, GFLOP per CPU second (per core) is steadier than per wall second.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkMul times MulPacked (what the inference engine calls) with each micro-kernel this
// CPU runs, on one goroutine and on GOMAXPROCS, and Mul (B packed at each call) with the
// default kernel on GOMAXPROCS.
func BenchmarkMul(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	for _, s := range benchShapes {
		m, n, k := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(9, 10))
		a := randomMatrix(rng, m, k, k)
		bm := randomMatrix(rng, k, n, n)
		c := make([]float32, m*n)
		shape := fmt.Sprintf("%dx%dx%d", m, n, k)
		for _, kern := range archKernels() {
			if kern.missing != "" {
				continue
			}
			saved := kernel
			kernel = kern
			pb := PackB(k, n, bm.data, n)
			kernel = saved
			for _, w := range []int{1, procs} {
				b.Run(fmt.Sprintf("%s/%s/workers=%d", shape, kern.name, w), func(b *testing.B) {
					timeProducts(b, m, n, k, func() { MulPacked(w, m, a.data, k, pb, c, n) })
				})
			}
		}
		b.Run(fmt.Sprintf("%s/%s-unpackedB/workers=%d", shape, kernel.name, procs), func(b *testing.B) {
			timeProducts(b, m, n, k, func() { Mul(m, n, k, a.data, k, bm.data, n, c, n) })
		})
	}
}

func timeProducts(b *testing.B, m, n, k int, product func()) {
	c0 := cpuSeconds()
	for b.Loop() {
		product()
	}
	flop := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(flop/(cpuSeconds()-c0)/1e9, "GFLOP/cpu_s")
}

// BenchmarkTorch is PyTorch's torch.mm on the same shapes, on 1 and 2 threads, under the
// environment as it is (OPENBLAS_CORETYPE, where set, pins OpenBLAS's core, as in the
// workbook's oracle tests).
func BenchmarkTorch(b *testing.B) { benchPython(b, "torch", false) }

// BenchmarkNumPy is NumPy's matmul on the same shapes, on 1 and 2 threads, with
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset so OpenBLAS picks its best core for this CPU.
func BenchmarkNumPy(b *testing.B) { benchPython(b, "numpy", true) }

// benchPython runs testdata/sgemm_bench.py once per thread count and reports its
// measurements as sub-benchmarks named like BenchmarkMul's, with the OpenBLAS core in the
// name (the script times the products itself: the Go loop does not, and ns/op is left out).
func benchPython(b *testing.B, lib string, bestCore bool) {
	for _, threads := range []int{1, 2} {
		args := []string{"testdata/sgemm_bench.py", lib, fmt.Sprint(threads)}
		for _, s := range benchShapes {
			args = append(args, fmt.Sprintf("%d,%d,%d", s[0], s[1], s[2]))
		}
		cmd := exec.Command("/usr/bin/python3", args...)
		if bestCore {
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") && !strings.HasPrefix(kv, "OPENBLAS_L2_SIZE=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
		}
		out, err := cmd.Output()
		if err != nil {
			testenv.SkipMissing(b, "%s benchmark: %v (%s)", lib, err, exitStderr(err))
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		name := lib
		for sc.Scan() {
			line := sc.Text()
			if core, ok := strings.CutPrefix(line, "backend "); ok {
				// "torch 1.13.0 threads=1: openblas Haswell (path)" names torch-openblas-Haswell.
				if f := strings.Fields(core); len(f) >= 5 && f[3] == "openblas" {
					name = lib + "-openblas-" + f[4]
				}
				continue
			}
			var m, n, k int
			var gflops, perCPU float64
			if _, err := fmt.Sscan(line, &m, &n, &k, &gflops, &perCPU); err != nil {
				b.Fatalf("%s benchmark: line %q: %v", lib, line, err)
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%s/threads=%d", m, n, k, name, threads), func(b *testing.B) {
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(gflops, "GFLOP/s")
				b.ReportMetric(perCPU, "GFLOP/cpu_s")
			})
		}
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
