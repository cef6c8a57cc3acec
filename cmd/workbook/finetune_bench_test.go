package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/weights"
)

// The book's full task on the full data set, for the extrapolations: 10 epochs × 100 training
// steps and 10 × 30 validation steps of batch 32 over 10,764 training and 2,674 test images.
var (
	fullTrainSteps = training.BookSchedule.Epochs * training.BookSchedule.Steps
	fullValSteps   = training.BookSchedule.Epochs * training.BookSchedule.ValSteps
)

const (
	fullTrainN = 10764
	fullTestN  = 2674
)

// benchSteps is the number of training steps the expensive paths run (WORKBOOK_BENCH_STEPS,
// default 5, of which 3 full batches after the first are timed): one step of the book's way
// costs about a minute on two cores.
func benchSteps(b *testing.B) int {
	if s := os.Getenv("WORKBOOK_BENCH_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			b.Fatalf("WORKBOOK_BENCH_STEPS=%q: want a number ≥ 2", s)
		}
		return n
	}
	return 5
}

// benchModel is Exercise 8.03's model with the stand-in VGG16 weights (timings do not depend on
// the values; the validation accuracy reached does, and with random weights stays near chance).
func benchModel(b *testing.B) *training.FineTuneModel {
	b.Helper()
	needGoBackendB(b)
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	ft, err := training.NewFineTuneModel(be, "vgg16", filepath.Join(reference.Dir(b), weights.VGG16), 224, 42)
	if err != nil {
		b.Fatal(err)
	}
	return ft
}

func needGoBackendB(b *testing.B) {
	if os.Getenv(backend.EnvBackend) == "" {
		b.Setenv(backend.EnvBackend, "go")
	}
}

// sampleIterators are the book's generators over the shipped sample, batch 32 at 224×224.
func sampleIterators(b *testing.B) (train, test *datasets.DirectoryIterator) {
	b.Helper()
	dir := datasets.MustSampleDir()
	flow := datasets.FlowOptions{TargetSize: [2]int{224, 224}, BatchSize: training.BookSchedule.Batch, ClassMode: datasets.Binary,
		Seed: datasets.Seed(42), Out: io.Discard}
	aug := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
	var err error
	train, err = aug.FlowFromDirectory(filepath.Join(dir, "training_set"), flow)
	if err != nil {
		b.Fatal(err)
	}
	test, err = datasets.ImageDataGenerator{Rescale: 1. / 255}.FlowFromDirectory(filepath.Join(dir, "test_set"), flow)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { train.Close(); test.Close() })
	return train, test
}

func hours(d float64) float64 { return d / 3600 }

// BenchmarkFinetune measures, at batch 32 on this machine's CPU, the cost of Exercise 8.03's
// training step three ways, and extrapolates each to the book's full task (10 × 100 training
// steps and 10 × 30 validation steps on the full data set); run it with
//
//	go test -run '^$' -bench Finetune -benchtime 1x -timeout 60m ./cmd/workbook
//
// (-benchtime 1x: each path runs its own scaled schedule, WORKBOOK_BENCH_STEPS (default 5) training steps
// and one validation step over the sample's 32 test images). Metrics:
//
//   - s/step: one training step of 32 images, batch drawn and augmented: the median over the
//     full batches after the first (compilation) step;
//   - s/val_step: one validation step (32 images, forward only);
//   - s/base_image: the frozen VGG16 forward pass to fc2, per image;
//   - h/full_task: the extrapolation to the book's run;
//   - cpu_s/step, cpu_s/base_image, cpu_h/full_task: the same in CPU time (user + system, all
//     threads of the process), which other work on a shared machine disturbs much less than
//     the wall clock; divided by the number of cores it estimates the wall time on an idle
//     machine (an upper bound on the speed, as no run uses its cores perfectly);
//   - val_acc: validation accuracy after the scaled run (stand-in weights: near chance).
func BenchmarkFinetune(b *testing.B) {
	// PyTorch first, while this process is small: the two VGG16 models of the other paths and
	// their batch-32 activations take about 12 GB, PyTorch's another 2 GB.
	b.Run("pytorch-book-way", benchPyTorch)
	b.Run("ours-cached", benchOursCached)
	freeMemory()
	b.Run("ours-book-way", benchOursBookWay)
}

// freeMemory returns the previous sub-benchmark's model and buffers to the system.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// benchOursBookWay is the book's way as finetune, notebook 04 and the grader run it
// (training.FineTuning): every step draws 32 freshly augmented images, runs them through frozen
// VGG16 and updates the head. On the pure-Go backend with AVX2 the base runs on the workbook's
// engine and the head alone trains in GoMLX; elsewhere the whole model runs in GoMLX. Steps are
// timed from one batch's end to the next's (the draw included).
func benchOursBookWay(b *testing.B) {
	steps := benchSteps(b)
	needGoBackendB(b)
	var all, times []time.Duration
	var cpus []float64
	var val, valCPU float64
	last, lastCPU := time.Now(), cpuSeconds()
	f := training.Exercise803(training.Schedule{Epochs: 1, Steps: steps, ValSteps: 1, Batch: training.BookSchedule.Batch})
	f.Weights, f.Data, f.Out = filepath.Join(reference.Dir(b), weights.VGG16), datasets.MustSampleDir(), io.Discard
	f.Callbacks = []training.Callback{{
		OnBatchEnd: func(_, batch int, _ map[string]float64) error {
			d, c := time.Since(last), cpuSeconds()-lastCPU
			all = append(all, d)
			// Full batches of 32 only (the sample's 80 images make a pass of 32, 32 and 16),
			// after the first step (which compiles the training graph).
			if batch > 0 && batch%3 != 2 {
				times, cpus = append(times, d), append(cpus, c)
			}
			last, lastCPU = time.Now(), cpuSeconds()
			return nil
		},
		OnEpochEnd: func(int, map[string]float64) error { // the validation step (32 images, forward only)
			val, valCPU = time.Since(last).Seconds(), cpuSeconds()-lastCPU
			return nil
		}}}
	base := "GoMLX, whole model"
	if be, err := backend.New(); err == nil && training.FrozenBaseOnEngine(be, "vgg16") {
		base = "workbook engine (" + gemm.KernelName() + "), head in GoMLX"
	}
	b.ResetTimer()
	last, lastCPU = time.Now(), cpuSeconds()
	t, err := f.Run()
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if len(times) == 0 {
		b.Fatal("no full batch after the first step: raise WORKBOOK_BENCH_STEPS")
	}
	step := median(durations(times))
	stepCPU := median(cpus)
	full64 := float64(fullTrainSteps)*step + float64(fullValSteps)*val
	fullCPU := float64(fullTrainSteps)*stepCPU + float64(fullValSteps)*valCPU
	b.Logf("ours, book's way (base: %s): steps %v; full batches after the first: %v, CPU %.1f s; validation step %.1f s (CPU %.1f s, graph compilation included); full task ≈ %d × %.1f s + %d × %.1f s = %.1f h; CPU time %.1f h (/%d cores = %.1f h)",
		base, all, times, cpus, val, valCPU, fullTrainSteps, step, fullValSteps, val, hours(full64), hours(fullCPU), runtime.NumCPU(), hours(fullCPU)/float64(runtime.NumCPU()))
	b.ReportMetric(step*1e9, "ns/op")
	b.ReportMetric(step, "s/step")
	b.ReportMetric(val, "s/val_step")
	b.ReportMetric(hours(full64), "h/full_task")
	b.ReportMetric(stepCPU, "cpu_s/step")
	b.ReportMetric(hours(fullCPU), "cpu_h/full_task")
	b.ReportMetric(t.History.Last("val_accuracy"), "val_acc")
}

// benchOursCached is the feature-cache path: the frozen base runs once per distinct image, the
// head steps run on stored fc2 features. Its scaled run is the book's whole schedule for the
// head (10 × 100 steps, 10 × 30 validation steps) on the sample's cached features.
func benchOursCached(b *testing.B) {
	ft := benchModel(b)
	train, test := sampleIterators(b)
	be := ft.App.Backend()
	// The extractor finetune --cached-features uses: on the pure-Go backend, VGG16 on the
	// workbook's engine.
	var note strings.Builder
	extract, err := ft.FrozenBase(be, &note)
	if err != nil {
		b.Fatal(err)
	}
	b.Log(note.String())
	// The one-time cost per image: a batch of 32 test images through the base, twice; the
	// second is timed (the first compiles the graph, for GoMLX).
	batch, err := test.Batch(0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var base, baseCPU float64
	for range 2 {
		t0, c0 := time.Now(), cpuSeconds()
		if _, err := extract(batch.X); err != nil {
			b.Fatal(err)
		}
		base = time.Since(t0).Seconds() / float64(len(batch.Index))
		baseCPU = (cpuSeconds() - c0) / float64(len(batch.Index))
	}

	// The head on cached features: the sample's features (computed once, then kept in the user
	// cache folder under the stand-in weights' digest).
	cache := &training.FeatureCache{Model: ft.FeatureID(), Weights: ft.Weights.Digest, Extract: extract,
		TargetSize: [2]int{224, 224}, Preprocess: datasets.ImageDataGenerator{Rescale: 1. / 255}, Out: io.Discard}
	b.StopTimer()
	trainX, err := cache.Features(train.Filepaths())
	if err != nil {
		b.Fatal(err)
	}
	testX, err := cache.Features(test.Filepaths())
	if err != nil {
		b.Fatal(err)
	}
	gTrain, err := training.NewFeatureGenerator([]*kernelext.Array{trainX}, training.Labels(train.Labels()), training.BookSchedule.Batch, true, 1)
	if err != nil {
		b.Fatal(err)
	}
	gTest, err := training.NewFeatureGenerator([]*kernelext.Array{testX}, training.Labels(test.Labels()), training.BookSchedule.Batch, true, 2)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(42))
	head := training.MustNewModel(be, ctx, "sequential_1", training.Dense(ft.Head, 1, "sigmoid"))
	head.MustCompile(training.NewAdam(), training.BinaryCrossentropy, training.Accuracy)
	// Compile the head's step first, then time the book's schedule.
	if x, y, err := gTrain.Next(); err != nil {
		b.Fatal(err)
	} else if _, err := head.TrainOnBatch(x, y); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	t0, c0 := time.Now(), cpuSeconds()
	hist, err := head.Fit(gTrain, training.FitOptions{Epochs: training.BookSchedule.Epochs, StepsPerEpoch: training.BookSchedule.Steps,
		ValidationData: gTest, ValidationSteps: training.BookSchedule.ValSteps, Verbose: training.Silent, Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	headRun, headCPU := time.Since(t0).Seconds(), cpuSeconds()-c0
	b.StopTimer()
	perHeadStep := headRun / float64(fullTrainSteps+fullValSteps)
	distinct := fullTrainN + fullTestN // every image of both folders is drawn at least once (TestScheduleDraws)
	full64 := float64(distinct)*base + headRun
	fullCPU := float64(distinct)*baseCPU + headCPU
	b.Logf("ours, cached features: CPU time %.1f h; base %.2f s/image (CPU %.2f s); head: %d+%d steps in %.2f s; full task ≈ %d images × %.2f s + %.1f s = %.1f h; history:\n%s",
		hours(fullCPU), base, baseCPU, fullTrainSteps, fullValSteps, headRun, distinct, base, headRun, hours(full64), hist)
	b.ReportMetric(perHeadStep*1e9, "ns/op")
	b.ReportMetric(perHeadStep, "s/step")
	b.ReportMetric(base, "s/base_image")
	b.ReportMetric(hours(full64), "h/full_task")
	b.ReportMetric(baseCPU, "cpu_s/base_image")
	b.ReportMetric(hours(fullCPU), "cpu_h/full_task")
	b.ReportMetric(hist.Last("val_accuracy"), "val_acc")
}

// benchPyTorch runs testdata/torch_finetune_bench.py (Debian's python3-torch, CPU, as many
// threads as this process may use) on the same sample with the same scaled schedule.
func benchPyTorch(b *testing.B) {
	r := runTorchBench(b)
	full64 := float64(fullTrainSteps)*r.Step + float64(fullValSteps)*r.Val
	fullCPU := float64(fullTrainSteps)*r.StepCPU + float64(fullValSteps)*r.ValCPU
	b.Logf("PyTorch %s (%d threads), book's way: steps %v s (CPU %.1f s each); validation step %.1f s (CPU %.1f s); full task ≈ %.1f h, CPU time %.1f h; cached-features equivalent ≈ %.1f h (CPU %.1f h)",
		r.Torch, r.Threads, r.StepTimes, r.StepCPU, r.Val, r.ValCPU, hours(full64), hours(fullCPU),
		hours(float64(fullTrainN+fullTestN)*r.Base), hours(float64(fullTrainN+fullTestN)*r.BaseCPU))
	b.ReportMetric(r.Step*1e9, "ns/op")
	b.ReportMetric(r.Step, "s/step")
	b.ReportMetric(r.Val, "s/val_step")
	b.ReportMetric(r.Base, "s/base_image")
	b.ReportMetric(hours(full64), "h/full_task")
	b.ReportMetric(r.StepCPU, "cpu_s/step")
	b.ReportMetric(r.BaseCPU, "cpu_s/base_image")
	b.ReportMetric(hours(fullCPU), "cpu_h/full_task")
	b.ReportMetric(r.ValAcc, "val_acc")
}

// torchResult is the JSON line testdata/torch_finetune_bench.py prints.
type torchResult struct {
	Torch     string    `json:"torch"`
	Threads   int       `json:"threads"`
	StepTimes []float64 `json:"step_times_s"`
	Step      float64   `json:"train_step_s"`
	Val       float64   `json:"val_step_s"`
	Base      float64   `json:"base_per_image_s"`
	ValAcc    float64   `json:"val_accuracy"`
	StepCPU   float64   `json:"train_step_cpu_s"`
	ValCPU    float64   `json:"val_step_cpu_s"`
	BaseCPU   float64   `json:"base_per_image_cpu_s"`
	PeakRSS   float64   `json:"peak_rss_mb"`
}

// runTorchBench runs testdata/torch_finetune_bench.py (Debian's python3-torch, CPU, as many
// threads as this process may use) on the shipped sample with the scaled schedule.
func runTorchBench(b *testing.B, extra ...string) torchResult {
	b.Helper()
	steps := benchSteps(b)
	cmd := exec.Command(testenv.Python(b, "torch", "torchvision"), append([]string{filepath.Join("testdata", "torch_finetune_bench.py"),
		"--data", datasets.MustSampleDir(), "--steps", strconv.Itoa(steps), "--val-steps", "1",
		"--threads", strconv.Itoa(runtime.GOMAXPROCS(0))}, extra...)...)
	cmd.Stderr = os.Stderr
	b.ResetTimer()
	out, err := cmd.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("torch_finetune_bench.py: %v", err)
	}
	var r torchResult
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &r) != nil {
		b.Fatalf("torch_finetune_bench.py printed %q", out)
	}
	return r
}

// cpuSeconds is the CPU time (user + system, all threads) this process has used: on a machine
// shared with other work it measures a step's cost better than the wall clock does.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func durations(ts []time.Duration) []float64 {
	v := make([]float64, len(ts))
	for i, t := range ts {
		v[i] = t.Seconds()
	}
	return v
}

// median of v (which it sorts).
func median(v []float64) float64 {
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// BenchmarkFinetuneStage2 measures a stage-2 training step (block 5 unfrozen, Adam(1e-5), at
// 224×224; batch 32, the book's, and 4) ours and PyTorch's, and each process's peak resident
// memory during it:
//
//	go test -run '^$' -bench FinetuneStage2 -benchtime 1x -timeout 60m ./cmd/workbook
//
// Ours is training.FineTuning with one stage-2 epoch, as notebook 07 and `workbook finetune
// --stage2-epochs` run it (blocks 1–4 forward on the engine where it runs, block 5 and the
// layers above trained on it too); its steps are timed from one stage-2 batch's end to the
// next's (full batches after the first), its peak memory is the process's VmHWM, reset when
// stage 2 starts.
func BenchmarkFinetuneStage2(b *testing.B) {
	for _, batch := range []int{training.BookSchedule.Batch, 4} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchStage2(b, batch) })
	}
}

func benchStage2(b *testing.B, batch int) {
	freeMemory()
	b.Run("pytorch", func(b *testing.B) {
		r := runTorchBench(b, "--stage2", "--batch", strconv.Itoa(batch))
		b.Logf("PyTorch %s, stage 2, batch %d: steps %v s, median %.1f s (CPU %.1f s); peak RSS %.0f MB", r.Torch, batch, r.StepTimes, r.Step, r.StepCPU, r.PeakRSS)
		b.ReportMetric(r.Step, "s/step")
		b.ReportMetric(r.StepCPU, "cpu_s/step")
		b.ReportMetric(r.PeakRSS, "peak_MB")
	})
	freeMemory()
	b.Run("ours", func(b *testing.B) {
		steps := benchSteps(b)
		needGoBackendB(b)
		f := training.Exercise803(training.Schedule{Epochs: 1, Steps: steps, ValSteps: 1, Batch: batch})
		f.Weights, f.Data, f.Out = filepath.Join(reference.Dir(b), weights.VGG16), datasets.MustSampleDir(), io.Discard
		f.Stage2Epochs, f.Unfreeze, f.LR2 = 1, "block5_", 1e-5
		// The training folder's batches: stage 2 goes on where stage 1's steps left the
		// generator; a pass ends with a short batch unless the batch size divides the images.
		train, _ := sampleIterators(b)
		images := train.Samples()
		perPass := (images + batch - 1) / batch
		full := func(step int) bool { return images%batch == 0 || (steps+step)%perPass != perPass-1 }
		var times []time.Duration
		var cpus []float64
		last, lastCPU := time.Now(), cpuSeconds()
		f.Callbacks = []training.Callback{{
			OnBatchEnd: func(epoch, step int, _ map[string]float64) error {
				d, c := time.Since(last), cpuSeconds()-lastCPU
				if epoch == 1 && step > 0 && full(step) { // stage 2, full batches after the first
					times, cpus = append(times, d), append(cpus, c)
				}
				last, lastCPU = time.Now(), cpuSeconds()
				return nil
			},
			OnEpochEnd: func(epoch int, _ map[string]float64) error {
				if epoch == 0 { // stage 2 starts: its peak memory from here
					_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
				}
				last, lastCPU = time.Now(), cpuSeconds()
				return nil
			}}}
		b.ResetTimer()
		if _, err := f.Run(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(times) == 0 {
			b.Fatal("no full stage-2 batch after the first: raise WORKBOOK_BENCH_STEPS")
		}
		peak := peakRSSMB()
		b.Logf("ours, stage 2, batch %d: full batches after the first %v, CPU %.1f s; peak RSS %.0f MB", batch, times, cpus, peak)
		b.ReportMetric(median(durations(times)), "s/step")
		b.ReportMetric(median(cpus), "cpu_s/step")
		b.ReportMetric(peak, "peak_MB")
	})
}

// peakRSSMB is this process's peak resident memory (VmHWM) in MB.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return math.NaN()
}
