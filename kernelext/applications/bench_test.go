package applications

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// Benchmarks of Predict at batch 1 and batch 32 on the test backend (the pure-Go one unless
// GOMLX_BACKEND or an installed XLA plugin says otherwise; on the pure-Go one Predict runs on
// the workbook's engine, see EngineRuns). Each also times PyTorch on the CPU with
// testdata/bench_torch.py in the same run, on as many threads as Go has (GOMAXPROCS), and
// reports the ratio, since absolute times on a shared machine say little:
//
//	go test -run '^$' -bench Predict -benchtime 3x ./kernelext/applications/
//
// Sub-benchmarks batch=1 and batch=32. Metrics: s/image (Go, wall), cpu_s/image (user +
// system time of the process, which other work on a shared machine disturbs less),
// torch_s/image, x_torch (Go time / PyTorch time) and load1 (the machine's one-minute load
// average at the end). WORKBOOK_TORCH_DEVICE=cuda times PyTorch on the GPU instead (for
// GOMLX_BACKEND=xla:<CUDA plugin>, see cmd/workbook/testdata/gpu_check.sh).

func BenchmarkVGG16Predict(b *testing.B)    { benchPredict(b, "vgg16") }
func BenchmarkResNet50Predict(b *testing.B) { benchPredict(b, "resnet50") }

func benchPredict(b *testing.B, model string) {
	m, err := New(model, WithWeights(""), WithSeed(1), WithBackend(testBackend(b)))
	if err != nil {
		b.Fatal(err)
	}
	torch, torchErr := torchSecondsPerImage(model, []int{1, 32}, runtime.GOMAXPROCS(0))
	if torchErr != nil {
		b.Logf("no PyTorch comparison: %v", torchErr)
	}
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			x := kernelext.NewArray(batch, 224, 224, 3)
			for i := range x.Data {
				x.Data[i] = float32(i%251) - 125
			}
			// The first call compiles the graph (GoMLX) or packs the weights (engine).
			if _, err := m.Predict(x); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			t0, c0 := time.Now(), cpuSeconds()
			for b.Loop() {
				if _, err := m.Predict(x); err != nil {
					b.Fatal(err)
				}
			}
			images := float64(b.N * batch)
			goSec, cpuSec := time.Since(t0).Seconds()/images, (cpuSeconds()-c0)/images
			b.ReportMetric(goSec, "s/image")
			b.ReportMetric(cpuSec, "cpu_s/image")
			b.ReportMetric(load1(), "load1")
			if t := torch[batch]; t > 0 {
				b.ReportMetric(t, "torch_s/image")
				b.ReportMetric(goSec/t, "x_torch")
			}
		})
	}
}

// torchSecondsPerImage runs bench_torch.py for one model at the given batch sizes.
func torchSecondsPerImage(model string, batches []int, threads int) (map[int]float64, error) {
	script := filepath.Join("testdata", "bench_torch.py")
	if _, err := os.Stat(script); err != nil {
		return nil, err
	}
	list := ""
	for i, n := range batches {
		if i > 0 {
			list += ","
		}
		list += strconv.Itoa(n)
	}
	device := os.Getenv("WORKBOOK_TORCH_DEVICE")
	if device == "" {
		device = "cpu"
	}
	python := os.Getenv("WORKBOOK_PYTHON") // a Python with torch, e.g. a virtual environment's
	if python == "" {
		python = "/usr/bin/python3"
	}
	cmd := exec.Command(python, script, "--models", model, "--batches", list,
		"--threads", strconv.Itoa(threads), "--device", device)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var res struct {
		Results map[string][]struct {
			Batch           int     `json:"batch"`
			SecondsPerImage float64 `json:"seconds_per_image"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, err
	}
	secs := map[int]float64{}
	for _, r := range res.Results[model] {
		secs[r.Batch] = r.SecondsPerImage
	}
	if len(secs) != len(batches) {
		return nil, fmt.Errorf("bench_torch.py: %d results for %s, want %d", len(secs), model, len(batches))
	}
	return secs, nil
}

// cpuSeconds is the CPU time (user + system, all threads) this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// load1 is the one-minute load average (NaN where /proc/loadavg is missing).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return math.NaN()
	}
	return l
}
