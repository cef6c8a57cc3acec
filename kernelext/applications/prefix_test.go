package applications

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
)

// Model.Prefix is how a caller runs a network up to one of its layers (the frozen base of
// Exercise 8.03 up to fc2, whose features fine-tuning caches): a view on the same variables,
// with Predict's engine decision, batching and input rules.

// TestPrefixMatchesPyTorchLayers compares layer outputs PyTorch dumped for one book image with
// prefixes ending there: VGG16's block1_conv1, five pools, fc1, fc2 and predictions; ResNet50's
// stem, block 3a's layers, the output of every stage and the head.
func TestPrefixMatchesPyTorchLayers(t *testing.T) {
	testenv.Long(t, "VGG16 and ResNet50 forward passes, one per layer checked")
	dir := reference.Dir(t)
	man, err := reference.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	images := loadNpy(t, dir, reference.ImagesFile)
	const per = 224 * 224 * 3
	x := &kernelext.Array{Shape: []int{1, 224, 224, 3}, Data: images.Data[man.LayerDumpImage*per:][:per]}
	for _, c := range []struct {
		model, weights, layersDir string
		layers                    []string
	}{
		{"vgg16", reference.VGG16Weights, reference.VGG16LayersDir, []string{"block1_conv1", "block1_pool",
			"block2_pool", "block3_pool", "block4_pool", "block5_pool", "fc1", "fc2", "predictions"}},
		{"resnet50", reference.ResNet50Weights, reference.ResNet50LayersDir, []string{"conv1", "bn_conv1",
			"max_pooling2d_1", "res3a_branch2a", "activation_10", "activation_22", "activation_40",
			"activation_49", "avg_pool", "fc1000"}},
	} {
		t.Run(c.model, func(t *testing.T) {
			m, err := New(c.model, WithWeights(filepath.Join(dir, c.weights)), WithBackend(testBackend(t)))
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range c.layers {
				p, err := m.Prefix(name)
				if err != nil {
					t.Fatal(err)
				}
				got, err := p.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				want := loadNpy(t, filepath.Join(dir, c.layersDir), name+".npy")
				if !slices.Equal(got.Shape, want.Shape) {
					t.Fatalf("%s: shape %v, PyTorch %v", name, got.Shape, want.Shape)
				}
				rel := relDiff(got.Data, want.Data)
				t.Logf("%-16s %v: max |ours − torch| / max |torch| = %.3g", name, got.Shape, rel)
				if !(rel <= featureRelTolerance) {
					t.Errorf("%s: relative difference %.3g > %g", name, rel, featureRelTolerance)
				}
			}
		})
	}
}

// TestPrefixOnEngineMatchesGoMLX: prefixes ending inside a network, on odd and non-square
// inputs and a batch longer than PredictBatchSize, equal GoMLX's graph cut at the same layer.
func TestPrefixOnEngineMatchesGoMLX(t *testing.T) {
	b := engineBackend(t)
	for _, c := range []struct {
		model, until string
		x            *kernelext.Array
		tol          float64
	}{
		{"vgg16", "block3_conv2", randomImages(PredictBatchSize+2, 32, 33, 1), 1e-5},
		{"vgg16", "block5_pool", randomImages(1, 45, 67, 2), 1e-5},
		{"resnet50", "activation_10", randomImages(2, 64, 72, 3), 1e-4},
	} {
		t.Run(c.model+"_"+c.until, func(t *testing.T) {
			opts := []Option{WithWeights(""), WithSeed(5), WithBackend(b), IncludeTop(false)}
			fast, err := New(c.model, opts...)
			if err != nil {
				t.Fatal(err)
			}
			perturbBatchNorm(t, fast, 4)
			p, err := fast.Prefix(c.until)
			if err != nil {
				t.Fatal(err)
			}
			slow, err := New(c.model, append(opts, WithContext(fast.Context()), WithoutEngine(), Until(c.until))...)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, p, slow, c.x, c.tol)
		})
	}
}

// TestPrefixRules: an unknown layer is refused by name; a prefix keeps Predict's input check
// and empty-batch rule, with the prefix's own output shape.
func TestPrefixRules(t *testing.T) {
	m, err := VGG16(WithWeights(""), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prefix("fc3"); err == nil || !strings.Contains(err.Error(), `"fc3"`) {
		t.Errorf("Prefix(fc3): %v, want an error naming the layer", err)
	}
	p, err := m.Prefix("fc2")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*kernelext.Array{nil, kernelext.NewArray(1, 224, 224), kernelext.NewArray(1, 224, 225, 3)} {
		if _, err := p.Predict(x); err == nil || !strings.HasPrefix(err.Error(), "applications: vgg16.Predict") ||
			!strings.Contains(err.Error(), "input must have shape (N, 224, 224, 3)") {
			t.Errorf("Predict(%v): %v", x, err)
		}
	}
	if y, err := p.Predict(kernelext.NewArray(0, 224, 224, 3)); err != nil || !slices.Equal(y.Shape, []int{0, 4096}) {
		t.Errorf("empty batch: %v, %v; want shape (0, 4096)", y, err)
	}
}
