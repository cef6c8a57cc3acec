package inference

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/weights"
)

// The oracles: the seeded random VGG16 checkpoints of internal/reference and what PyTorch
// computes from them in float64 with Keras semantics (kernelext/applications/testdata/
// gen_reference.py) — per-layer outputs of one image, probabilities of all seven book images,
// include_top=False features — and, as a second check, the GoMLX model's own Predict. The
// tolerances are those of kernelext/applications' reference tests (a float32 network against
// a float64 one).

const (
	probTolerance       = 1e-5
	featureRelTolerance = 1e-4
)

// refEnv points the "imagenet" weights at the reference stand-ins, as the CLI tests do.
func refEnv(t *testing.T) string {
	t.Helper()
	dir := reference.Dir(t)
	t.Setenv(weights.WeightsDirEnv, dir)
	t.Setenv("KERAS_HOME", t.TempDir())
	return dir
}

func loadNpy(t *testing.T, path string) *kernelext.Array {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &kernelext.Array{Shape: shape, Data: data}
}

// firstImages is the first n images of a batch.
func firstImages(x *kernelext.Array, n int) *kernelext.Array {
	per := x.Size() / x.Shape[0]
	return &kernelext.Array{Shape: append([]int{n}, x.Shape[1:]...), Data: x.Data[:n*per]}
}

// relDiff is max |got − want| / max |want|, +Inf for NaN or a shape mismatch.
func relDiff(got, want *kernelext.Array) (rel, scale float64) {
	if !slices.Equal(got.Shape, want.Shape) {
		return math.Inf(1), 0
	}
	d := 0.0
	for i := range want.Data {
		scale = math.Max(scale, math.Abs(float64(want.Data[i])))
		e := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		if math.IsNaN(e) {
			return math.Inf(1), scale
		}
		d = math.Max(d, e)
	}
	return d / scale, scale
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

func top5(row []float32) [5]int {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	var out [5]int
	copy(out[:], idx[:5])
	return out
}

// referenceVGG16 is the include_top VGG16 on the reference checkpoint, shared by the tests
// (loading its 553 MB once).
var referenceVGG16 = sync.OnceValues(func() (*applications.Model, error) {
	return applications.VGG16()
})

func vgg16(t *testing.T) *applications.Model {
	t.Helper()
	refEnv(t)
	m, err := referenceVGG16()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPyTorchLayers compares the output of every layer PyTorch dumped (image 0: block1_conv1,
// the five pools, fc1, fc2, predictions) with a Net ending there.
func TestPyTorchLayers(t *testing.T) {
	dir := refEnv(t)
	m := vgg16(t)
	man, err := reference.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	images := loadNpy(t, filepath.Join(dir, reference.ImagesFile))
	x := &kernelext.Array{Shape: []int{1, 224, 224, 3}, Data: images.Data[man.LayerDumpImage*224*224*3:][:224*224*3]}
	for _, name := range []string{"block1_conv1", "block1_pool", "block2_pool", "block3_pool", "block4_pool",
		"block5_pool", "fc1", "fc2", "predictions"} {
		net, err := NewVGG16(m, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := net.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		want := loadNpy(t, filepath.Join(dir, reference.VGG16LayersDir, name+".npy"))
		rel, scale := relDiff(got, want)
		t.Logf("%-12s %v: max |ours − torch| / max |torch| = %.3g (max |torch| = %.3g)", name, got.Shape, rel, scale)
		if rel > featureRelTolerance {
			t.Errorf("%s: relative difference %.3g > %g", name, rel, featureRelTolerance)
		}
	}
}

// float32Gap is PyTorch's own float32-versus-float64 difference on the VGG16 probabilities,
// from the reference manifest: the tolerance becomes twice that if it exceeds probTolerance
// (it does not for VGG16), as in kernelext/applications' reference tests.
func float32Gap(t *testing.T, dir string) float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, reference.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		VGG16 struct {
			Gap float64 `json:"float32_vs_float64_max_abs_prob_diff"`
		} `json:"vgg16"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.VGG16.Gap == 0 {
		t.Fatalf("manifest has no vgg16 float32_vs_float64_max_abs_prob_diff: %v", err)
	}
	return m.VGG16.Gap
}

// TestPyTorchProbabilities predicts all seven book images in one batch: max abs difference
// from PyTorch's float64 softmax ≤ 1e-5 and the same top-5 classes.
func TestPyTorchProbabilities(t *testing.T) {
	dir := refEnv(t)
	net, err := NewVGG16(vgg16(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if net.Until() != "predictions" {
		t.Errorf("Until() = %q, want predictions", net.Until())
	}
	got, err := net.Predict(loadNpy(t, filepath.Join(dir, reference.ImagesFile)))
	if err != nil {
		t.Fatal(err)
	}
	want := loadNpy(t, filepath.Join(dir, reference.VGG16Probs))
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	tol := probTolerance
	if gap := float32Gap(t, dir); gap > probTolerance {
		tol = 2 * gap
	}
	d := maxAbsDiff(got.Data, want.Data)
	t.Logf("max |p_ours − p_torch64| = %.3g (tolerance %.3g)", d, tol)
	if d > tol {
		t.Errorf("max abs probability difference %.3g > %.3g", d, tol)
	}
	for i := range want.Shape[0] {
		if g, w := top5(got.Data[i*1000:(i+1)*1000]), top5(want.Data[i*1000:(i+1)*1000]); g != w {
			t.Errorf("image %d: top-5 %v, PyTorch %v", i, g, w)
		}
	}
}

// TestPyTorchNoTopFeatures runs the include_top=False checkpoint (open input size) on all
// seven images: the (7, 7, 7, 512) block5_pool features.
func TestPyTorchNoTopFeatures(t *testing.T) {
	dir := refEnv(t)
	m, err := applications.VGG16(applications.IncludeTop(false))
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewVGG16(m, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := net.Predict(loadNpy(t, filepath.Join(dir, reference.ImagesFile)))
	if err != nil {
		t.Fatal(err)
	}
	rel, scale := relDiff(got, loadNpy(t, filepath.Join(dir, reference.VGG16NoTopFeatures)))
	t.Logf("notop %v: max |ours − torch| / max |torch| = %.3g (max |torch| = %.3g)", got.Shape, rel, scale)
	if rel > featureRelTolerance {
		t.Errorf("relative difference %.3g > %g", rel, featureRelTolerance)
	}
}

// TestGoMLXFeatures is the second check, on Exercise 8.03's own model: VGG16 until fc2 as the
// fine-tuning command builds it (renamed "sequential_1", frozen, Dense(1, sigmoid) added).
// The fc2 features and the head's output of a book image agree with the GoMLX model's
// Predict (the PyTorch tests cover batches).
func TestGoMLXFeatures(t *testing.T) {
	testenv.Long(t, "two VGG16 forward passes on GoMLX's backend")
	dir := refEnv(t)
	m, err := applications.VGG16(applications.Until("fc2"), applications.WithSeed(3), applications.WithoutEngine())
	if err != nil {
		t.Fatal(err)
	}
	fast, err := applications.VGG16(applications.Until("fc2"), applications.WithWeights(""), applications.WithContext(m.Context()))
	if err != nil {
		t.Fatal(err)
	}
	x := firstImages(loadNpy(t, filepath.Join(dir, reference.ImagesFile)), 1)
	compare := func(until string) {
		t.Helper()
		net, err := NewVGG16(fast, until)
		if err != nil {
			t.Fatal(err)
		}
		got, err := net.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		rel, scale := relDiff(got, want)
		t.Logf("%s %v: max |ours − GoMLX| / max |GoMLX| = %.3g (max %.3g)", net.Until(), got.Shape, rel, scale)
		if rel > featureRelTolerance {
			t.Errorf("%s: relative difference from GoMLX %.3g > %g", net.Until(), rel, featureRelTolerance)
		}
	}
	compare("fc2")
	for _, mm := range []*applications.Model{m, fast} {
		mm.AsSequential("sequential_1")
		if err := mm.SetTrainable(false); err != nil {
			t.Fatal(err)
		}
		if _, err := mm.AddDense("dense_1", 1, "sigmoid"); err != nil {
			t.Fatal(err)
		}
	}
	compare("")
}

// TestGoMLXOddSizes checks the shapes Keras allows without the top — odd sides (the pools
// drop the last row or column), non-square inputs — and a batch longer than BatchSize,
// against GoMLX on random weights, with global average pooling on top.
func TestGoMLXOddSizes(t *testing.T) {
	testenv.Long(t, "VGG16 forward passes on GoMLX's backend")
	m, err := applications.VGG16(applications.WithWeights(""), applications.WithSeed(5), applications.IncludeTop(false),
		applications.Pooling("avg"), applications.WithoutEngine())
	if err != nil {
		t.Fatal(err)
	}
	fast, err := applications.VGG16(applications.WithWeights(""), applications.WithContext(m.Context()),
		applications.IncludeTop(false), applications.Pooling("avg"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{1, 45, 67}, {BatchSize + 2, 32, 33}} {
		x := kernelext.NewArray(s[0], s[1], s[2], 3)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64() * 50)
		}
		for _, until := range []string{"block3_conv2", ""} {
			net, err := NewVGG16(fast, until)
			if err != nil {
				t.Fatal(err)
			}
			got, err := net.Predict(x)
			if err != nil {
				t.Fatal(err)
			}
			var want *kernelext.Array
			if until == "" {
				want, err = m.Predict(x)
			} else {
				var mu *applications.Model
				mu, err = applications.VGG16(applications.WithWeights(""), applications.WithSeed(5),
					applications.IncludeTop(false), applications.Until(until), applications.WithoutEngine())
				if err == nil {
					want, err = mu.Predict(x)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := relDiff(got, want)
			t.Logf("%v until %q → %v: relative difference from GoMLX %.3g", s, net.Until(), got.Shape, rel)
			if rel > featureRelTolerance {
				t.Errorf("%v until %q: relative difference from GoMLX %.3g > %g", s, net.Until(), rel, featureRelTolerance)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	m := vgg16(t)
	wantErr := func(err error, prefix, substr string) {
		t.Helper()
		if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), substr) {
			t.Errorf("error %v, want one starting with %q and containing %q", err, prefix, substr)
		}
	}
	_, err := NewVGG16(nil, "fc2")
	wantErr(err, "inference: ", "nil model")
	_, err = NewVGG16(m, "fc3")
	wantErr(err, "inference: ", `no layer "fc3"`)

	// Predict is the model's: its input check and empty-batch rule.
	net, err := NewVGG16(m, "fc2")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*kernelext.Array{nil, kernelext.NewArray(1, 224, 224), kernelext.NewArray(1, 224, 225, 3),
		kernelext.NewArray(2, 224, 224, 1)} {
		_, err := net.Predict(x)
		wantErr(err, "applications: vgg16.Predict", "input must have shape (N, 224, 224, 3)")
	}
	_, err = net.Predict(&kernelext.Array{Shape: []int{1, 224, 224, 3}, Data: make([]float32, 5)})
	wantErr(err, "applications: vgg16.Predict", "5 values")
	if y, err := net.Predict(kernelext.NewArray(0, 224, 224, 3)); err != nil || !slices.Equal(y.Shape, []int{0, 4096}) {
		t.Errorf("empty batch: %v, %v; want shape (0, 4096)", y, err)
	}

	// ResNet50 and float64 models are views too (float64 runs on GoMLX).
	rn, err := applications.ResNet50(applications.WithWeights(""), applications.WithSeed(1), applications.IncludeTop(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = NewVGG16(rn, "activation_10"); err != nil {
		t.Error(err)
	}
	f64, err := applications.VGG16(applications.WithWeights(""), applications.WithSeed(1), applications.IncludeTop(false),
		applications.WithDType(dtypes.Float64))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = NewVGG16(f64, "block1_conv1"); err != nil {
		t.Error(err)
	}

	// Without the top the input size is open, but a Dense added after Flatten fixes it.
	nt, err := applications.VGG16(applications.WithWeights(""), applications.WithSeed(1), applications.IncludeTop(false),
		applications.InputShape(64, 64))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nt.AddFlatten(""); err != nil {
		t.Fatal(err)
	}
	if _, err := nt.AddDense("", 3, "softmax"); err != nil {
		t.Fatal(err)
	}
	head, err := NewVGG16(nt, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = head.Predict(kernelext.NewArray(1, 32, 32, 3))
	wantErr(err, "applications: vgg16.Predict", "input must have shape (N, 64, 64, 3)")
	y, err := head.Predict(kernelext.NewArray(2, 64, 64, 3))
	if err != nil || !slices.Equal(y.Shape, []int{2, 3}) {
		t.Fatalf("64×64 head: %v, %v", y, err)
	}
	// Zero images through random weights: every softmax row sums to 1.
	for r := range 2 {
		s := y.Data[3*r] + y.Data[3*r+1] + y.Data[3*r+2]
		if math.Abs(float64(s)-1) > 1e-6 {
			t.Errorf("softmax row %d sums to %g", r, s)
		}
	}
}
