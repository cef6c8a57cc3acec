package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/weights"
)

// sampleImages returns n image paths of the shipped sample's class folder.
func sampleImages(t *testing.T, split, class string, n int) []string {
	t.Helper()
	dir := filepath.Join(datasets.MustSampleDir(), split, class)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < n {
		t.Fatalf("%s has %d images, want %d", dir, len(entries), n)
	}
	var out []string
	for _, e := range entries[:n] {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// makeData builds a data folder: for each "split/class" the given number of sample images
// (copied from the shipped sample's car or flower folder); 0 makes an empty class folder.
func makeData(t *testing.T, layout map[string]int) string {
	t.Helper()
	root := t.TempDir()
	for sc, n := range layout {
		dir := filepath.Join(root, sc)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		src := "car"
		if strings.Contains(sc, "flower") {
			src = "flower"
		}
		for i, p := range sampleImages(t, "training_set", src, n) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.jpg", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// TestFinetuneBadInput checks that data Keras would train on silently but wrongly, or that would
// fail hours into a run, is refused before any model is built, with a message naming the
// problem.
func TestFinetuneBadInput(t *testing.T) {
	good := map[string]int{"training_set/car": 3, "training_set/flower": 3, "test_set/car": 2, "test_set/flower": 2}
	with := func(change map[string]int, drop ...string) map[string]int {
		m := map[string]int{}
		for k, v := range good {
			m[k] = v
		}
		for _, d := range drop {
			delete(m, d)
		}
		for k, v := range change {
			m[k] = v
		}
		return m
	}
	broken := makeData(t, good)
	if err := os.WriteFile(filepath.Join(broken, "training_set", "flower", "zz_truncated.jpg"), []byte("\xff\xd8\xff\xe0 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	noTest := makeData(t, with(nil, "test_set/car", "test_set/flower"))
	for _, c := range []struct {
		name string
		data string
		args []string
		code int
		want []string
	}{
		{"empty class folder", makeData(t, with(map[string]int{"training_set/flower": 0})), nil, 1,
			[]string{`class folder "`, `flower" holds no images`}},
		{"one class", makeData(t, with(nil, "training_set/flower", "test_set/flower")), nil, 1,
			[]string{"has 1 classes", "binary labels need exactly 2"}},
		{"different validation classes", makeData(t, with(map[string]int{"test_set/flowers": 2}, "test_set/flower")), nil, 1,
			[]string{"classes differ", `only in the first: ["flower"]`, `only in the second: ["flowers"]`}},
		{"batch larger than the data", makeData(t, good), []string{"--batch", "5"}, 1,
			[]string{"batch size 5 is larger than the 4 images in", "test_set"}},
		{"unreadable image", broken, nil, 1,
			[]string{"1 unreadable image(s)", "zz_truncated.jpg"}},
		{"no test_set", noTest, nil, 1, []string{"has no test_set folder"}},
		{"bad model", makeData(t, good), []string{"--model", "inception"}, 2, []string{`unknown model "inception"`}},
		{"resume without folder", makeData(t, good), []string{"--resume"}, 2, []string{"--resume needs --checkpoint-dir"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"finetune", "--data", c.data, "--batch", "2", "--out", ""}, c.args...)
			code, out, errOut := runCLI(t, args...)
			if code != c.code {
				t.Fatalf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(out, "Backend:") {
				t.Error("a model was built before the data was checked")
			}
		})
	}
}

// tinyRun are flags for a cheap end-to-end run on the pure-Go backend: VGG16 with Keras' random
// initialisation at 32×32 (include_top=False + Flatten), a few batches of 4 images.
func tinyRun(data string, extra ...string) []string {
	return append([]string{"finetune", "--data", data, "--weights", "none", "--size", "32", "--batch", "4",
		"--steps", "2", "--val-steps", "1", "--line-every", "0"}, extra...)
}

func needGoBackend(t *testing.T) {
	t.Helper()
	if os.Getenv(backend.EnvBackend) == "" {
		t.Setenv(backend.EnvBackend, "go")
	}
}

// variables loads a checkpoint into a fresh context and returns every variable's raw bytes by
// scope/name.
func variables(t *testing.T, path string) map[string][]byte {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	m, err := training.NewModel(b, context.New(), "load", training.Dense("unused", 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(path); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for v := range m.Context().IterVariables() {
		val, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		if err := val.ConstBytes(func(data []byte) { out[v.Scope()+"/"+v.Name()] = bytes.Clone(data) }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// bookWayPath is one of the two ways the book's way can run: the whole model in GoMLX, or the
// frozen base on the workbook's engine and the head in GoMLX (where the CPU allows).
type bookWayPath struct {
	name  string
	split bool
}

// bookWayPaths lists the paths this machine can run; use selects one for the test.
func bookWayPaths(t *testing.T) []bookWayPath {
	t.Helper()
	paths := []bookWayPath{{"whole model in GoMLX", false}}
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	if training.FrozenBaseOnEngine(b, "vgg16") {
		paths = append(paths, bookWayPath{"base on the engine", true})
	} else {
		t.Logf("the base runs in GoMLX here (backend %s, gemm kernel %s): only the whole-model path is tested", backend.Describe(b), gemm.KernelName())
	}
	return paths
}

func (p bookWayPath) use(t *testing.T) {
	finetuneTestHook = func(f *training.FineTuning) { f.BaseInGoMLX = !p.split }
	t.Cleanup(func() { finetuneTestHook = nil })
}

// stage1File is the file stage 1 checkpoints to: the whole model, or the head alone.
func (p bookWayPath) stage1File() string {
	if p.split {
		return "stage1-head.ckpt"
	}
	return "stage1.ckpt"
}

// TestFinetuneFreezeThenUnfreeze runs both stages end to end, on each path, and compares the
// weights saved after each, byte for byte: stage 1 changes the head only; stage 2 changes block
// 5 and the head, and leaves blocks 1–4 bit-identical. Where the head trains apart from the base
// (the split path), stage 1's checkpoint holds the head alone, and the base cannot change in
// stage 1 (its variables are not in the head's context): there the base is compared between
// the start and the end.
func TestFinetuneFreezeThenUnfreeze(t *testing.T) {
	needGoBackend(t)
	for _, path := range bookWayPaths(t) {
		t.Run(path.name, func(t *testing.T) {
			path.use(t)
			freezeThenUnfreeze(t, path)
		})
	}
}

func freezeThenUnfreeze(t *testing.T, path bookWayPath) {
	data := makeData(t, map[string]int{"training_set/car": 4, "training_set/flower": 4, "test_set/car": 2, "test_set/flower": 2})
	dir := t.TempDir()
	code, out, errOut := runCLI(t, tinyRun(data, "--epochs", "1", "--stage2-epochs", "1",
		"--checkpoint-dir", dir, "--out", filepath.Join(dir, "model.ckpt"))...)
	if code != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, w := range []string{"Found 8 images belonging to 2 classes.", "Found 4 images belonging to 2 classes.",
		"Stage 1: base frozen, training the head with Adam(", "Epoch 1/1", "Stage 2: [layers \"block5_\"*] unfrozen", "Epoch 2/2",
		"It is a ", "Saved the model to"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	const note = "Frozen VGG16 base: its forward pass runs on the workbook's own"
	if n := strings.Count(out, note); (path.split && n != 1) || (!path.split && n != 0) {
		t.Errorf("the line saying where the base runs appears %d times:\n%s", n, out)
	}

	// The initial weights: the same model, built as the command builds it.
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	ft, err := training.NewFineTuneModel(b, "vgg16", "none", 32, 42)
	if err != nil {
		t.Fatal(err)
	}
	initial := filepath.Join(t.TempDir(), "initial.ckpt")
	m, err := training.NewModel(b, ft.App.Context(), "initial", ft.App.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(initial); err != nil {
		t.Fatal(err)
	}
	v0 := variables(t, initial)
	v1 := variables(t, filepath.Join(dir, path.stage1File()))
	v2 := variables(t, filepath.Join(dir, "stage2.ckpt"))
	vOut := variables(t, filepath.Join(dir, "model.ckpt"))

	checked := map[string]int{}
	for name, w0 := range v0 {
		w1, w2 := v1[name], v2[name]
		layer := strings.Split(strings.TrimPrefix(name, "/"), "/")[0]
		base := layer != ft.Head
		switch {
		case w2 == nil:
			t.Errorf("%s missing from the stage 2 checkpoint", name)
			continue
		case path.split && base && w1 != nil:
			t.Errorf("%s is in the head's stage 1 checkpoint", name)
		case path.split && base:
			w1 = w0 // the base is not in the head's context: stage 1 cannot change it
		case w1 == nil:
			t.Errorf("%s missing from the stage 1 checkpoint", name)
			continue
		}
		if !bytes.Equal(w2, vOut[name]) {
			t.Errorf("%s: the saved model differs from the last checkpoint", name)
		}
		switch {
		case strings.HasPrefix(layer, "block5_"):
			checked["block5"]++
			if !bytes.Equal(w0, w1) {
				t.Errorf("%s changed in stage 1 (base frozen)", name)
			}
			if bytes.Equal(w1, w2) {
				t.Errorf("%s did not change in stage 2 (unfrozen)", name)
			}
		case strings.HasPrefix(layer, "block"):
			checked["block1-4"]++
			if !bytes.Equal(w0, w1) || !bytes.Equal(w1, w2) {
				t.Errorf("%s changed (frozen in both stages)", name)
			}
		case layer == ft.Head:
			checked["head"]++
			if bytes.Equal(w0, w1) || bytes.Equal(w1, w2) {
				t.Errorf("%s did not change in both stages", name)
			}
		default:
			t.Errorf("unexpected variable %s", name)
		}
	}
	// 13 convolutions with kernel and bias; block 5 has 3 of them; the head has kernel and bias.
	if checked["block1-4"] != 20 || checked["block5"] != 6 || checked["head"] != 2 {
		t.Errorf("variables checked: %v", checked)
	}
}

// TestFinetuneResume interrupts a run after its first epoch (as a crash or Ctrl-C would, once
// that epoch's checkpoint is written) and continues it with --resume.
func TestFinetuneResume(t *testing.T) {
	needGoBackend(t)
	// The path the command takes here: the head apart from the base where the base runs on the
	// engine (its checkpoint then holds the head alone), else the whole model.
	paths := bookWayPaths(t)
	path := paths[len(paths)-1]
	data := makeData(t, map[string]int{"training_set/car": 4, "training_set/flower": 4, "test_set/car": 2, "test_set/flower": 2})
	dir := t.TempDir()
	crash := errors.New("simulated crash")
	finetuneTestHook = func(f *training.FineTuning) {
		f.OnEpochEnd = func(stage string, epoch int) error {
			if stage == "stage1" && epoch == 1 {
				return crash
			}
			return nil
		}
	}
	code, out, errOut := runCLI(t, tinyRun(data, "--epochs", "3", "--checkpoint-dir", dir, "--out", "")...)
	finetuneTestHook = nil
	if code != 1 || !strings.Contains(errOut, "simulated crash") {
		t.Fatalf("interrupted run: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	ckpt := filepath.Join(dir, path.stage1File())
	info, err := training.ReadCheckpointInfo(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if info.EpochsDone != 1 || len(info.History.Epoch) != 1 {
		t.Fatalf("checkpoint after the crash: %d epochs done, history %v", info.EpochsDone, info.History.Epoch)
	}

	// Without --resume the folder is not overwritten; with other settings it is not resumed.
	if code, _, errOut := runCLI(t, tinyRun(data, "--epochs", "3", "--checkpoint-dir", dir, "--out", "")...); code != 1 ||
		!strings.Contains(errOut, "pass --resume to continue it") {
		t.Errorf("rerun without --resume: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, tinyRun(data, "--epochs", "3", "--batch", "2", "--checkpoint-dir", dir, "--resume", "--out", "")...); code != 1 ||
		!strings.Contains(errOut, "written by a run with other settings") {
		t.Errorf("resume with another batch size: status %d, stderr %q", code, errOut)
	}
	// Nor where the other path would train stage 1 (another backend): its checkpoint is of
	// another kind.
	if path.split {
		finetuneTestHook = func(f *training.FineTuning) { f.BaseInGoMLX = true }
		code, _, errOut := runCLI(t, tinyRun(data, "--epochs", "3", "--checkpoint-dir", dir, "--resume", "--out", "")...)
		finetuneTestHook = nil
		if code != 1 || !strings.Contains(errOut, "holds stage1-head.ckpt (the head alone, trained apart from the frozen base), but this run checkpoints stage1.ckpt") {
			t.Errorf("resume on the whole-model path: status %d, stderr %q", code, errOut)
		}
	}

	code, out, errOut = runCLI(t, tinyRun(data, "--epochs", "3", "--checkpoint-dir", dir, "--resume", "--out", "")...)
	if code != 0 {
		t.Fatalf("resumed run: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Resuming from "+ckpt+" after epoch 1/3.") || strings.Contains(out, "Epoch 1/3") ||
		!strings.Contains(out, "Epoch 2/3") || !strings.Contains(out, "Epoch 3/3") {
		t.Errorf("the resumed run did not continue after epoch 1:\n%s", out)
	}
	info, err = training.ReadCheckpointInfo(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if info.EpochsDone != 3 || len(info.History.Epoch) != 3 || info.History.Epoch[2] != 2 {
		t.Errorf("after resuming: %d epochs done, history epochs %v", info.EpochsDone, info.History.Epoch)
	}
}

// TestFinetuneCachedFeatures runs the feature-cache path: the trade-off is printed, the head
// trained on cached features is the one the saved full model holds, and the full model's
// prediction on an image uses it.
func TestFinetuneCachedFeatures(t *testing.T) {
	needGoBackend(t)
	t.Setenv("WORKBOOK_CACHE", "")
	t.Setenv(nbcache.EnvDir, t.TempDir()) // the feature cache lives in the workbook cache folder
	data := makeData(t, map[string]int{"training_set/car": 4, "training_set/flower": 4, "test_set/car": 2, "test_set/flower": 2})
	dir := t.TempDir()
	model := filepath.Join(dir, "model.ckpt")
	code, out, errOut := runCLI(t, tinyRun(data, "--epochs", "2", "--cached-features=2", "--checkpoint-dir", dir, "--out", model)...)
	if code != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, w := range []string{"Cached features: sequential_1 runs once on each image (8 training image(s) × 2 + 4 test image(s) = 20 forward passes)",
		"Trade-off: 2 fixed augmented copies per training image", "Epoch 2/2", "It is a "} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	head := variables(t, filepath.Join(dir, "stage1-head.ckpt"))
	full := variables(t, model)
	n := 0
	for name, w := range head {
		if strings.HasPrefix(name, "/dense_1/") {
			n++
			if !bytes.Equal(w, full[name]) {
				t.Errorf("%s: the saved model's head differs from the head trained on cached features", name)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d head variables in the head checkpoint, want 2", n)
	}
	// A second run reads the features from the cache.
	code, out, _ = runCLI(t, tinyRun(data, "--epochs", "1", "--cached-features=2", "--out", "")...)
	if code != 0 || strings.Contains(out, "Extracting") {
		t.Errorf("second run (status %d) extracted features again:\n%s", code, out)
	}
}

// TestFinetuneUnfreezeChecked refuses an --unfreeze that selects nothing before stage 1 trains.
func TestFinetuneUnfreezeChecked(t *testing.T) {
	needGoBackend(t)
	data := makeData(t, map[string]int{"training_set/car": 2, "training_set/flower": 2, "test_set/car": 2, "test_set/flower": 2})
	code, out, errOut := runCLI(t, tinyRun(data, "--batch", "2", "--stage2-epochs", "1", "--unfreeze", "block9_", "--out", "")...)
	if code != 1 || !strings.Contains(errOut, `--unfreeze "block9_" selects no layer of sequential_1's base (its layers run from input_1 to block5_pool)`) ||
		strings.Contains(out, "Epoch 1/") {
		t.Errorf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestFinetuneSplitMatchesWholeModel runs the book's way and one epoch of stage 2 twice on the
// shipped sample with the seeded stand-in VGG16 weights (internal/reference): the whole model in
// GoMLX, and the frozen layers on the workbook's engine with the rest in GoMLX (the head alone in
// stage 1, block 5 and the head in stage 2). Same generators, same draws, same initial head: the
// histories, the trained weights and the optimizer state agree to float32 rounding, and blocks
// 1–4 are the same bits. 64×64 inputs (include_top=False + Flatten,
// 2048 features) keep the whole-model run, VGG16 forward on GoMLX's pure-Go backend, to
// seconds.
func TestFinetuneSplitMatchesWholeModel(t *testing.T) {
	needGoBackend(t)
	paths := bookWayPaths(t)
	testenv.NeedFeature(t, "avx2", len(paths) == 2,
		"the frozen base on the workbook's engine against the whole model in GoMLX")
	w := filepath.Join(reference.Dir(t), weights.VGG16NoTop)
	type result struct {
		out  string
		hist *training.History
		vars map[string][]byte
	}
	results := make([]result, len(paths))
	for i, path := range paths {
		path.use(t)
		dir := t.TempDir()
		code, out, errOut := runCLI(t, "finetune", "--data", datasets.MustSampleDir(), "--weights", w, "--size", "64",
			"--batch", "4", "--epochs", "2", "--steps", "2", "--val-steps", "1", "--line-every", "0", "--stage2-epochs", "1",
			"--checkpoint-dir", dir, "--out", filepath.Join(dir, "model.ckpt"))
		if code != 0 {
			t.Fatalf("%s: status %d\nstdout:\n%s\nstderr:\n%s", path.name, code, out, errOut)
		}
		// Both stages' epochs, stage 1's checkpoint then stage 2's.
		hist := &training.History{Value: map[string][]float64{}}
		for _, f := range []string{path.stage1File(), "stage2.ckpt"} {
			info, err := training.ReadCheckpointInfo(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			hist.Epoch, hist.Names = append(hist.Epoch, info.History.Epoch...), info.History.Names
			for _, n := range info.History.Names {
				hist.Value[n] = append(hist.Value[n], info.History.Value[n]...)
			}
		}
		results[i] = result{out, hist, variables(t, filepath.Join(dir, "model.ckpt"))}
	}
	whole, split := results[0], results[1]
	t.Logf("whole model:\n%s\nsplit:\n%s", whole.hist, split.hist)

	// The log: the same lines up to the numbers, plus one line saying where the base runs.
	stage1 := func(out string) string {
		i := strings.Index(out, "Stage 1:")
		return out[i : i+strings.Index(out[i:], "\n")]
	}
	if stage1(whole.out) != stage1(split.out) {
		t.Errorf("stage 1 lines differ:\n%s\n%s", stage1(whole.out), stage1(split.out))
	}

	if strings.Join(whole.hist.Names, ",") != strings.Join(split.hist.Names, ",") || len(whole.hist.Epoch) != 3 || len(split.hist.Epoch) != 3 {
		t.Fatalf("histories differ in shape:\n%s\n%s", whole.hist, split.hist)
	}
	histDiff := 0.0
	for _, n := range whole.hist.Names {
		for e := range whole.hist.Epoch {
			a, b := whole.hist.Value[n][e], split.hist.Value[n][e]
			histDiff = max(histDiff, math.Abs(a-b))
			if math.Abs(a-b) > 1e-5 {
				t.Errorf("epoch %d %s: whole model %.7f, split %.7f", e+1, n, a, b)
			}
		}
	}

	// The saved models: the same variables; the base bit for bit (frozen, and copied from the
	// same file), the head and the optimizer's state to float32 rounding.
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	ft, err := training.NewFineTuneModel(b, "vgg16", w, 64, 42)
	if err != nil {
		t.Fatal(err)
	}
	head0, err := ft.App.Context().InspectVariable("/"+ft.Head, "kernel").Value()
	if err != nil {
		t.Fatal(err)
	}
	initial, err := tensors.CopyFlatData[float32](head0)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.vars) != len(split.vars) {
		t.Errorf("%d variables in the whole model's file, %d in the split run's", len(whole.vars), len(split.vars))
	}
	compared, varDiff := 0, 0.0
	for name, a := range whole.vars {
		c := split.vars[name]
		switch {
		case c == nil:
			t.Errorf("%s missing from the split run's model", name)
		case strings.HasPrefix(name, "/block") && !strings.HasPrefix(name, "/block5_"):
			if !bytes.Equal(a, c) {
				t.Errorf("%s differs", name)
			}
		case name == "/optimizer/iterations":
			if !bytes.Equal(a, c) {
				t.Errorf("optimizer iterations differ")
			}
		default:
			fa, fc := float32s(a), float32s(c)
			for i := range fa {
				d := math.Abs(float64(fa[i] - fc[i]))
				varDiff = max(varDiff, d)
				if d > 1e-5+1e-4*math.Abs(float64(fa[i])) {
					t.Errorf("%s[%d]: whole model %v, split %v", name, i, fa[i], fc[i])
					break
				}
			}
			compared++
		}
	}
	// dense_1 kernel and bias and block 5's three convolutions' (trained in stage 2), Adam's two
	// moments of each.
	if compared != 24 {
		t.Errorf("%d head and optimizer variables compared, want 6", compared)
	}
	// Not a vacuous agreement: the head moved away from where both runs started.
	moved := 0.0
	for i, v := range float32s(whole.vars["/"+ft.Head+"/kernel"]) {
		moved = max(moved, math.Abs(float64(v-initial[i])))
	}
	if moved < 1e-3 {
		t.Errorf("the head's kernel moved by at most %g in 4 Adam steps of 0.001", moved)
	}
	t.Logf("largest differences: history %.2g, head and optimizer state %.2g; the head moved by up to %.2g", histDiff, varDiff, moved)
}

// float32s decodes little-endian float32 bytes.
func float32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
