package inference

import (
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// BenchmarkVGG16Features times the frozen base of Exercise 8.03's feature cache — VGG16 at
// 224×224 up to fc2 — on this package and, in the same run, on the GoMLX model (the
// workbook's backend: the pure-Go one unless GOMLX_BACKEND or an XLA plugin says otherwise):
//
//	go test -run '^$' -bench VGG16Features -benchtime 1x ./kernelext/applications/inference
//
// Sub-benchmarks: ours with the batch's images spread over the cores (Predict's way) at
// batch 32 and 8; ours with one image at a time and the cores inside each product; GoMLX at
// batch 8. Metrics: s/image (wall) and cpu_s/image (user + system time of the process, which
// other work on a shared machine disturbs less; divided by the cores it estimates the wall
// time on an idle machine). The weights are Keras' random initialisation: the cost does not
// depend on the values.
func BenchmarkVGG16Features(b *testing.B) {
	m, err := applications.VGG16(applications.WithWeights(""), applications.WithSeed(1), applications.Until("fc2"))
	if err != nil {
		b.Fatal(err)
	}
	net, err := NewVGG16(m, "fc2")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := func(n int) *kernelext.Array {
		x := kernelext.NewArray(n, 224, 224, 3)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64() * 60)
		}
		return x
	}
	x32, x8 := batch(32), batch(8)
	run := func(name string, x *kernelext.Array, predict func(*kernelext.Array) (*kernelext.Array, error), warm bool) {
		b.Run(name, func(b *testing.B) {
			if warm { // GoMLX compiles its graph on the first call for a shape
				if _, err := predict(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			t0, c0 := time.Now(), cpuSeconds()
			for b.Loop() {
				if _, err := predict(x); err != nil {
					b.Fatal(err)
				}
			}
			images := float64(b.N * x.Shape[0])
			wall, cpu := time.Since(t0).Seconds()/images, (cpuSeconds()-c0)/images
			b.ReportMetric(wall, "s/image")
			b.ReportMetric(cpu, "cpu_s/image")
		})
	}
	kind := fmt.Sprintf("ours-%s", gemm.KernelName())
	run(kind+"/batch=32", x32, net.Predict, false)
	run(kind+"/batch=8", x8, net.Predict, false)
	net.imageWorkers = 1
	run(kind+"-image-by-image/batch=8", x8, net.Predict, false)
	net.imageWorkers = 0
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	run(fmt.Sprintf("gomlx-%s/batch=8", be.Name()), x8, m.Predict, true)
}

// cpuSeconds is the CPU time (user + system, all threads) this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
