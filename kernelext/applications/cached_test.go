package applications

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/weights"
)

// lazyEnv points the weights lookup at the reference stand-in checkpoints and gives the test
// its own empty cache and Keras home.
func lazyEnv(t *testing.T) (refDir string) {
	t.Helper()
	refDir = reference.Dir(t)
	t.Setenv(weights.WeightsDirEnv, refDir)
	t.Setenv(nbcache.EnvDir, t.TempDir())
	t.Setenv(nbcache.EnvOff, "")
	t.Setenv("KERAS_HOME", t.TempDir())
	return refDir
}

func TestLazyPredictCachedMatchesReferenceAndSkipsTheModelOnAHit(t *testing.T) {
	testenv.Long(t, "a ResNet50 forward pass on the pure-Go backend")
	dir := lazyEnv(t)
	images := loadNpy(t, dir, reference.ImagesFile)
	const n = 2
	x := &kernelext.Array{Shape: []int{n, 224, 224, 3}, Data: images.Data[:n*224*224*3]}
	want := loadNpy(t, dir, reference.ResNet50Probs)

	first := MustLazyResNet50()
	got, err := first.PredictCached(x)
	if err != nil {
		t.Fatal(err)
	}
	if first.model == nil {
		t.Fatal("a cache miss did not build the model")
	}
	if !slices.Equal(got.Shape, []int{n, 1000}) {
		t.Fatalf("shape %v, want [%d 1000]", got.Shape, n)
	}
	// The oracle: PyTorch's float64 softmax from the same checkpoint (see reference_test.go
	// for the float32 tolerance).
	tol := max(probTolerance, 2*float32Gap(t, dir, "resnet50"))
	if d := maxAbsDiff(got.Data, want.Data[:n*1000]); d > tol {
		t.Errorf("max abs difference from the PyTorch reference %.3g > %.3g", d, tol)
	}

	// A new LazyModel (as in the next notebook cell) gets the stored values, bit for bit,
	// without building anything.
	second := MustLazyResNet50()
	again, err := second.PredictCached(x)
	if err != nil {
		t.Fatal(err)
	}
	if second.model != nil {
		t.Error("a cache hit built the model")
	}
	if !slices.Equal(again.Shape, got.Shape) || !slices.Equal(again.Data, got.Data) {
		t.Error("cached prediction differs from the computed one")
	}

	// A different input is a different key.
	other := &kernelext.Array{Shape: []int{1, 224, 224, 3}, Data: images.Data[2*224*224*3 : 3*224*224*3]}
	third := MustLazyResNet50()
	if _, err := third.PredictCached(other); err != nil {
		t.Fatal(err)
	}
	if third.model == nil {
		t.Error("a new input was served from the cache")
	}
}

func TestLazyPredictCacheOffComputes(t *testing.T) {
	testenv.Long(t, "a ResNet50 forward pass on the pure-Go backend")
	dir := lazyEnv(t)
	t.Setenv(nbcache.EnvOff, "off")
	images := loadNpy(t, dir, reference.ImagesFile)
	x := &kernelext.Array{Shape: []int{1, 224, 224, 3}, Data: images.Data[:224*224*3]}
	for range 2 {
		l := MustLazyResNet50()
		if _, err := l.PredictCached(x); err != nil {
			t.Fatal(err)
		}
		if l.model == nil {
			t.Fatal("with WORKBOOK_CACHE=off the model must be built every time")
		}
	}
	cacheDir, _ := nbcache.Dir()
	if entries, _ := os.ReadDir(cacheDir); len(entries) != 0 {
		t.Errorf("WORKBOOK_CACHE=off stored %d files", len(entries))
	}
}

func TestLazyKeyCoversModelOptionsAndWeights(t *testing.T) {
	dir := lazyEnv(t)
	x := kernelext.NewArray(1, 224, 224, 3)
	key := func(l *LazyModel) string {
		t.Helper()
		k, err := l.predictKey(x)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(MustLazyResNet50())
	if base != key(MustLazyResNet50()) {
		t.Error("the same model gives different keys")
	}
	for name, l := range map[string]*LazyModel{
		"other model": MustLazyVGG16(),
		"no top":      MustLazyResNet50(IncludeTop(false), InputShape(224, 224)),
		"pooling":     MustLazyResNet50(IncludeTop(false), InputShape(224, 224), Pooling("avg")),
		"file":        MustLazyResNet50(WithWeights(filepath.Join(dir, reference.VGG16WeightsNoTop))),
		"random":      MustLazyResNet50(WithWeights(""), WithSeed(7)),
	} {
		if key(l) == base {
			t.Errorf("%s: same key as the default ResNet50", name)
		}
	}
	y := x.Clone()
	y.Data[0] = 1
	l := MustLazyResNet50()
	if k, _ := l.predictKey(y); k == base {
		t.Error("a changed input value gives the same key")
	}
	// An explicit path to the same file is the same weights.
	same := MustLazyResNet50(WithWeights(filepath.Join(dir, reference.ResNet50Weights)))
	if key(same) != base {
		t.Error("the same checkpoint through WithWeights(path) gives another key")
	}
}

func TestLazyWeightsSayWhichFile(t *testing.T) {
	dir := lazyEnv(t)
	w, err := MustLazyVGG16().Weights()
	if err != nil {
		t.Fatal(err)
	}
	if w.Path != filepath.Join(dir, reference.VGG16Weights) || w.Origin != weights.OriginWeightsDir || w.Published {
		t.Errorf("got %+v", w)
	}
	for _, s := range []string{"stand-in checkpoint from $WORKBOOK_WEIGHTS_DIR", w.Path, "NOT the book's ImageNet results"} {
		if !strings.Contains(w.String(), s) {
			t.Errorf("%q lacks %q", w.String(), s)
		}
	}
	// The same description the weights package gives when the model is built.
	src := weights.MustFetch(reference.VGG16Weights)
	if src.Path != w.Path || src.Origin != w.Origin || src.MD5Verified != w.Published {
		t.Errorf("Fetch says %+v, LazyModel %+v", src, w)
	}

	r, err := MustLazyResNet50(WithWeights(""), WithSeed(3)).Weights()
	if err != nil || !strings.Contains(r.String(), "random initialisation") || !strings.Contains(r.String(), "NOT the book's") {
		t.Errorf("random weights: %v, %v", r, err)
	}
	published := WeightsInfo{Path: "/k/models/x.h5", Origin: weights.OriginKerasCache, Published: true}
	if s := published.String(); !strings.Contains(s, "the published ImageNet checkpoint") || strings.Contains(s, "NOT") {
		t.Errorf("published weights: %q", s)
	}
}

func TestLazyMissingWeightsIsFetchsError(t *testing.T) {
	lazyEnv(t)
	t.Setenv(weights.WeightsDirEnv, t.TempDir())
	_, err := MustLazyResNet50().Weights()
	if err == nil || !strings.Contains(err.Error(), "nothing is downloaded while WORKBOOK_WEIGHTS_DIR is set") {
		t.Errorf("err = %v", err)
	}
}

func TestLazyRefusals(t *testing.T) {
	lazyEnv(t)
	x := kernelext.NewArray(1, 224, 224, 3)
	if _, err := MustLazyResNet50(WithWeights("")).PredictCached(x); err == nil || !strings.Contains(err.Error(), "WithSeed") {
		t.Errorf("random weights without a seed: err = %v", err)
	}
	if _, err := MustLazyVGG16().PredictCached(kernelext.NewArray(1, 200, 224, 3)); err == nil ||
		!strings.Contains(err.Error(), "(N, 224, 224, 3), got (1, 200, 224, 3)") {
		t.Errorf("wrong input shape: err = %v", err)
	}
	if _, err := LazyVGG16(WithWeights("weights.bin")); err == nil {
		t.Error("a weights file that is not .h5 was accepted")
	}
	if _, err := LazyVGG16(Until("nope")); err == nil {
		t.Error("Until an unknown layer was accepted")
	}
}

func TestStoredArrayRoundTrip(t *testing.T) {
	a := storedArray{Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, 1e-30, -7}}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got storedArray
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Shape, a.Shape) || !slices.Equal(got.Data, a.Data) {
		t.Errorf("round trip gave %+v", got)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(slices.Clone(b), 0)} {
		if err := new(storedArray).UnmarshalBinary(bad); err == nil {
			t.Errorf("malformed %d bytes accepted", len(bad))
		}
	}
}

// The summaries the notebooks print come from the layer table alone; the goldens are Keras'
// summaries of keras-applications' own model definitions (testdata/gen_summary_goldens.py).
func TestLazySummaryIsKeras(t *testing.T) {
	for golden, l := range map[string]*LazyModel{"vgg16": MustLazyVGG16(), "resnet50": MustLazyResNet50()} {
		want, err := os.ReadFile(filepath.Join("testdata", "summary_"+golden+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Summary(); got != string(want) {
			t.Errorf("%s: LazyModel.Summary differs from Keras' summary", golden)
		}
	}
}
