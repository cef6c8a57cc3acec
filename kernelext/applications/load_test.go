package applications

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/weights"
)

// badWeightsDir writes the deliberately wrong checkpoints of testdata/gen_bad_weights.py
// with h5py into a temporary directory.
func badWeightsDir(t *testing.T) string {
	t.Helper()
	py := testenv.Python(t, "h5py", "numpy")
	dir := t.TempDir()
	out, err := exec.Command(py, filepath.Join("testdata", "gen_bad_weights.py"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gen_bad_weights.py: %v\n%s", err, out)
	}
	return dir
}

func captureWarnings(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	saved := Warnings
	Warnings = &buf
	t.Cleanup(func() { Warnings = saved })
	return &buf
}

func TestLoadBadWeights(t *testing.T) {
	dir := badWeightsDir(t)
	b := testBackend(t)
	for _, c := range []struct {
		name  string
		model string
		top   bool
		file  string
		want  []string
	}{
		{"missing layer", "vgg16", false, "vgg16_missing_layer.h5",
			[]string{"applications: loading vgg16 weights", "vgg16_missing_layer.h5", `"block1_conv2"`}},
		{"wrong shape", "vgg16", false, "vgg16_wrong_shape.h5",
			[]string{"vgg16_wrong_shape.h5", `"block1_conv1"`, "(3, 3, 3, 32)", "(3, 3, 3, 64)"}},
		{"other architecture", "vgg16", false, "resnet50_stem.h5",
			[]string{"resnet50_stem.h5", "none of vgg16's layers", "VGG16", "ResNet50"}},
		{"missing file", "resnet50", true, "nope.h5", []string{"nope.h5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.model, WithWeights(filepath.Join(dir, c.file)), IncludeTop(c.top), WithBackend(b))
			if err == nil {
				t.Fatal("loading succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := VGG16(WithWeights("weights.npz"), WithBackend(b)); err == nil || !strings.Contains(err.Error(), "imagenet") {
		t.Errorf("a non-.h5 weights argument: %v", err)
	}
}

func TestLoadWrongArchitectureReference(t *testing.T) {
	testenv.Long(t, "reads the 100 MB reference ResNet50 checkpoint")
	dir := reference.Dir(t)
	_, err := VGG16(WithWeights(filepath.Join(dir, reference.ResNet50Weights)), WithBackend(testBackend(t)))
	if err == nil {
		t.Fatal("VGG16 accepted the ResNet50 checkpoint")
	}
	for _, w := range []string{reference.ResNet50Weights, "is a ResNet50 checkpoint", "VGG16"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestLoadNaNWarns(t *testing.T) {
	dir := badWeightsDir(t)
	warnings := captureWarnings(t)
	m, err := VGG16(WithWeights(filepath.Join(dir, "vgg16_notop_nan.h5")), IncludeTop(false), WithBackend(testBackend(t)))
	if err != nil {
		t.Fatal(err)
	}
	got := warnings.String()
	for _, w := range []string{"block3_conv1", "1 NaN", "block5_conv3", "1 infinite"} {
		if !strings.Contains(got, w) {
			t.Errorf("warnings %q do not mention %q", got, w)
		}
	}
	if m.WeightsSource() != filepath.Join(dir, "vgg16_notop_nan.h5") {
		t.Errorf("WeightsSource() = %q", m.WeightsSource())
	}

	// NaN in the input of Predict is reported too (a 32×32 input keeps this cheap).
	warnings.Reset()
	x := kernelext.NewArray(1, 32, 32, 3)
	x.Data[5] = float32(nan())
	if _, err := m.Predict(x); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warnings.String(), "1 NaN or Inf") {
		t.Errorf("Predict on a NaN input warned %q", warnings.String())
	}
}

func TestPredictInputErrors(t *testing.T) {
	m, err := VGG16(WithWeights(""), WithSeed(1), WithBackend(testBackend(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*kernelext.Array{nil, kernelext.NewArray(224, 224, 3), kernelext.NewArray(1, 112, 112, 3),
		kernelext.NewArray(1, 224, 224, 1), {Shape: []int{1, 224, 224, 3}, Data: make([]float32, 10)}} {
		if _, err := m.Predict(x); err == nil || !strings.HasPrefix(err.Error(), "applications: vgg16.Predict") {
			t.Errorf("Predict(%v): %v", x, err)
		}
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

// The default weights ("imagenet") come through package weights: with WORKBOOK_WEIGHTS_DIR
// pointing at the reference checkpoints (stand-ins under the official names), the model loads
// them and says they are not the published file.
func TestImagenetWeightsFromWeightsDir(t *testing.T) {
	testenv.Long(t, "reads the reference ResNet50 checkpoint")
	dir := reference.Dir(t)
	t.Setenv(weights.WeightsDirEnv, dir)
	m, err := ResNet50(IncludeTop(false), WithBackend(testBackend(t)))
	if err != nil {
		t.Fatal(err)
	}
	src := m.WeightsSource()
	for _, w := range []string{reference.ResNet50WeightsNoTop, weights.WeightsDirEnv, "stand-in"} {
		if !strings.Contains(src, w) {
			t.Errorf("WeightsSource() = %q does not mention %q", src, w)
		}
	}
}
