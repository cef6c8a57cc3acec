package training

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/internal/atomicfile"
	"github.com/transfer-learning-go/workbook/kernelext"
)

// deterministicData is 64 separable samples in 4 unshuffled batches: every epoch sees the
// same batches, so an interrupted and resumed run can be compared bit for bit.
func deterministicData(t *testing.T) *FeatureGenerator {
	t.Helper()
	x, y := separable(64, 8, 21)
	g, err := NewFeatureGenerator([]*kernelext.Array{x}, y, 16, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func newHead(t *testing.T, b backends.Backend, seed int64) *Model {
	t.Helper()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, seed)
	m := MustNewModel(b, ctx, "sequential_1", Sequential(Dense("dense_1", 4, "relu"), Dense("dense_2", 1, "sigmoid")))
	m.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
	return m
}

func TestSaveLoadRoundTrip(t *testing.T) {
	b := testBackend(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ckpt")
	m := newHead(t, b, 5)
	if _, err := m.Fit(deterministicData(t), FitOptions{Epochs: 2, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	m.MustSave(path)
	want := values(t, m.Context(), "/dense_1", "kernel")
	wantM := values(t, m.Context(), OptimizerScope+"/m/dense_2", "kernel")

	// Into an uncompiled model with other initial values: everything comes back, and Compile
	// with the same optimizer keeps the restored state.
	m2 := MustNewModel(b, nil, "sequential_1", Sequential(Dense("dense_1", 4, "relu"), Dense("dense_2", 1, "sigmoid")))
	info, err := m2.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Iterations != 8 || info.Optimizer != NewAdam().String() || info.Model != "sequential_1" || info.SkippedOptimizerState {
		t.Errorf("info = %+v", info)
	}
	m2.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
	if !bitsEqual(values(t, m2.Context(), "/dense_1", "kernel"), want) ||
		!bitsEqual(values(t, m2.Context(), OptimizerScope+"/m/dense_2", "kernel"), wantM) {
		t.Error("loaded values differ from the saved ones")
	}
	if n := OptimizerIterations(m2.Context()); n != 8 {
		t.Errorf("iterations after load + compile = %d, want 8", n)
	}
	// Predictions agree.
	x, _ := separable(8, 8, 99)
	p1, p2 := m.MustPredict(x), m2.MustPredict(x)
	if !bitsEqual(p1.Data, p2.Data) {
		t.Errorf("predictions differ after load: %v vs %v", p1.Data, p2.Data)
	}

	// Into a model compiled with another optimizer: weights load, optimizer state is skipped.
	m3 := MustNewModel(b, nil, "sequential_1", Sequential(Dense("dense_1", 4, "relu"), Dense("dense_2", 1, "sigmoid")))
	m3.MustCompile(AdamWithLearningRate(1e-5), BinaryCrossentropy, Accuracy)
	info, err = m3.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !info.SkippedOptimizerState || OptimizerIterations(m3.Context()) != 0 {
		t.Errorf("optimizer state of a different optimizer was loaded: %+v", info)
	}
	if !bitsEqual(values(t, m3.Context(), "/dense_1", "kernel"), want) {
		t.Error("weights not loaded")
	}

	// A shape mismatch is an error naming the variable, and changes nothing.
	m4 := MustNewModel(b, nil, "other", Sequential(Dense("dense_1", 3, "relu"), Dense("dense_2", 1, "sigmoid")))
	m4.MustPredict(x) // creates the variables
	before := values(t, m4.Context(), "/dense_2", "kernel")
	if _, err := m4.Load(path); err == nil || !strings.Contains(err.Error(), "dense_1/kernel") {
		t.Errorf("Load into a model of other shapes: err = %v", err)
	}
	if !bitsEqual(before, values(t, m4.Context(), "/dense_2", "kernel")) {
		t.Error("a failed Load changed variables")
	}
}

// failingFile fails with ENOSPC once more than limit bytes were written, or at Sync.
type failingFile struct {
	*os.File
	limit, written int
	failSync       bool
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.written+len(p) > f.limit {
		n := f.limit - f.written
		if n > 0 {
			_, _ = f.File.Write(p[:n])
			f.written += n
		}
		return max(n, 0), &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.written += len(p)
	return f.File.Write(p)
}

func (f *failingFile) Sync() error {
	if f.failSync {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Sync()
}

// TestSaveIsAtomic simulates a full disk and a failing sync while overwriting a checkpoint: the
// previous file must stay byte for byte, no temporary file may remain, and the error must say
// why and name the file.
func TestSaveIsAtomic(t *testing.T) {
	b := testBackend(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ckpt")
	m := newHead(t, b, 5)
	m.MustSave(path)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fit(deterministicData(t), FitOptions{Epochs: 1, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "probe.ckpt")
	m.MustSave(probe)
	st, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	size := int(st.Size())
	defer func(orig func(string, string) (atomicfile.File, error)) { atomicfile.CreateTemp = orig }(atomicfile.CreateTemp)
	for _, tc := range []struct {
		name string
		file func(*os.File) atomicfile.File
		want error
	}{
		{"disk full after 100 bytes", func(f *os.File) atomicfile.File { return &failingFile{File: f, limit: 100} }, syscall.ENOSPC},
		{"disk full in the checksum", func(f *os.File) atomicfile.File { return &failingFile{File: f, limit: size - 2} }, syscall.ENOSPC},
		{"sync fails", func(f *os.File) atomicfile.File { return &failingFile{File: f, limit: 1 << 40, failSync: true} }, syscall.EIO},
	} {
		atomicfile.CreateTemp = func(d, pattern string) (atomicfile.File, error) {
			f, err := os.CreateTemp(d, pattern)
			if err != nil {
				return nil, err
			}
			return tc.file(f), nil
		}
		err := m.Save(path)
		if err == nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Save error = %v, want %v naming %s", tc.name, err, tc.want, path)
		}
		now, rerr := os.ReadFile(path)
		if rerr != nil || !bytes.Equal(now, good) {
			t.Errorf("%s: the previous checkpoint was changed", tc.name)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s: files left behind: %v", tc.name, names)
		}
	}
	atomicfile.CreateTemp = func(d, p string) (atomicfile.File, error) { return os.CreateTemp(d, p) }
	if err := m.Save(path); err != nil {
		t.Fatalf("Save after the disk recovered: %v", err)
	}
}

// TestLoadRejectsCorruptFiles flips a byte and truncates: Load must fail with the reason and
// leave the model unchanged.
func TestLoadRejectsCorruptFiles(t *testing.T) {
	b := testBackend(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ckpt")
	m := newHead(t, b, 5)
	m.MustSave(path)
	good, _ := os.ReadFile(path)

	m2 := newHead(t, b, 6)
	x, _ := separable(4, 8, 1)
	m2.MustPredict(x)
	before := values(t, m2.Context(), "/dense_1", "kernel")

	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-40] ^= 0x10
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"flipped bit", "checksum mismatch", flipped},
		{"truncated", "truncated", good[:len(good)-9]},
		{"not a checkpoint", "bad magic", []byte("PK\x03\x04 definitely not a checkpoint")},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := m2.Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want %q naming the file", tc.name, err, tc.want)
		}
		if !bitsEqual(before, values(t, m2.Context(), "/dense_1", "kernel")) {
			t.Errorf("%s: a failed Load changed the model", tc.name)
		}
	}
}

// TestResumeContinuesExactly interrupts a 4-epoch run after 2 epochs and resumes it in a new
// model (other initial weights): the result must equal the uninterrupted run bit for bit —
// weights, optimizer state and history.
func TestResumeContinuesExactly(t *testing.T) {
	b := testBackend(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.ckpt")

	full := newHead(t, b, 5)
	histFull, err := full.Fit(deterministicData(t), FitOptions{Epochs: 4, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}

	first := newHead(t, b, 5)
	if _, err := first.Fit(deterministicData(t), FitOptions{Epochs: 2, Checkpoint: ckpt, Resume: true, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadCheckpointInfo(ckpt)
	if err != nil || info.EpochsDone != 2 || info.Iterations != 8 {
		t.Fatalf("checkpoint after 2 epochs: %+v, %v", info, err)
	}

	resumed := newHead(t, b, 77)
	var out bytes.Buffer
	histResumed, err := resumed.Fit(deterministicData(t), FitOptions{Epochs: 4, Checkpoint: ckpt, Resume: true, Out: &out, Display: DisplayLines})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "Resuming from "+ckpt+" after epoch 2/4.\nEpoch 3/4\n") {
		t.Errorf("log starts %q", out.String()[:min(80, out.Len())])
	}
	for _, v := range []struct{ scope, name string }{
		{"/dense_1", "kernel"}, {"/dense_2", "bias"}, {OptimizerScope + "/v/dense_1", "kernel"},
	} {
		if !bitsEqual(values(t, full.Context(), v.scope, v.name), values(t, resumed.Context(), v.scope, v.name)) {
			t.Errorf("%s/%s differs between the uninterrupted and the resumed run", v.scope, v.name)
		}
	}
	if OptimizerIterations(resumed.Context()) != 16 {
		t.Errorf("iterations = %d, want 16", OptimizerIterations(resumed.Context()))
	}
	for _, n := range []string{"loss", "accuracy"} {
		a, r := histFull.Get(n), histResumed.Get(n)
		if len(a) != 4 || len(r) != 4 {
			t.Fatalf("history %s: %v vs %v", n, a, r)
		}
		for i := range a {
			if a[i] != r[i] {
				t.Errorf("history %s[%d]: %v uninterrupted, %v resumed", n, i, a[i], r[i])
			}
		}
	}

	// Resuming with another optimizer is refused.
	other := newHead(t, b, 5)
	other.MustCompile(AdamWithLearningRate(0.5), BinaryCrossentropy, Accuracy)
	if _, err := other.Fit(deterministicData(t), FitOptions{Epochs: 5, Checkpoint: ckpt, Resume: true, Out: io.Discard}); err == nil ||
		!strings.Contains(err.Error(), "compiled with") {
		t.Errorf("resume with another optimizer: err = %v", err)
	}
}
