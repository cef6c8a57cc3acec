package applications

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// Benchmarks of Predict at batch 1 on the test backend (the pure-Go one unless GOMLX_BACKEND
// or an installed XLA plugin says otherwise). Each also times PyTorch on the CPU with
// testdata/bench_torch.py in the same run and reports the ratio, since absolute times on a
// shared machine say little:
//
//	go test -run '^$' -bench Predict -benchtime 3x ./kernelext/applications/
//
// Metrics: s/image (Go), torch_s/image, x_torch (Go time / PyTorch time).

func BenchmarkVGG16Predict(b *testing.B)    { benchPredict(b, "vgg16") }
func BenchmarkResNet50Predict(b *testing.B) { benchPredict(b, "resnet50") }

func benchPredict(b *testing.B, model string) {
	m, err := New(model, WithWeights(""), WithSeed(1), WithBackend(testBackend(b)))
	if err != nil {
		b.Fatal(err)
	}
	x := kernelext.NewArray(1, 224, 224, 3)
	for i := range x.Data {
		x.Data[i] = float32(i%251) - 125
	}
	// The first call compiles the graph for this shape; Predict caches it.
	if _, err := m.Predict(x); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Predict(x); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	goSec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(goSec, "s/image")
	torchSec, err := torchSecondsPerImage(model)
	if err != nil {
		b.Logf("no PyTorch comparison: %v", err)
		return
	}
	b.ReportMetric(torchSec, "torch_s/image")
	b.ReportMetric(goSec/torchSec, "x_torch")
}

// torchSecondsPerImage runs bench_torch.py for one model at batch 1.
func torchSecondsPerImage(model string) (float64, error) {
	script := filepath.Join("testdata", "bench_torch.py")
	if _, err := os.Stat(script); err != nil {
		return 0, err
	}
	cmd := exec.Command("/usr/bin/python3", script, "--models", model, "--batches", "1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, err
	}
	var res struct {
		Results map[string][]struct {
			Batch           int     `json:"batch"`
			SecondsPerImage float64 `json:"seconds_per_image"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, err
	}
	r := res.Results[model]
	if len(r) != 1 || r[0].SecondsPerImage <= 0 {
		return 0, errors.New("bench_torch.py: no batch-1 result for " + model)
	}
	return r[0].SecondsPerImage, nil
}
