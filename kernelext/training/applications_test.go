package training

import (
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// TestVGG16FineTune runs Exercise 8.03's model in miniature through this package: VGG16
// without its top (random weights, 32×32 input, which Keras accepts without the top), Flatten
// and Dense(1, sigmoid) added to the applications model, the base frozen for stage 1 and
// block5_* unfrozen with Adam(1e-5) for stage 2; a checkpoint round trip at the end.
func TestVGG16FineTune(t *testing.T) {
	testenv.Long(t, "VGG16 training steps are slow on the pure-Go backend")
	b := testBackend(t)
	t.Logf("backend: %s", backend.Describe(b))
	app, err := applications.VGG16(applications.WithWeights(""), applications.IncludeTop(false),
		applications.InputShape(32, 32), applications.WithSeed(7), applications.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	app.AsSequential("sequential_1")
	if _, err := app.AddFlatten(""); err != nil {
		t.Fatal(err)
	}
	head, err := app.AddDense("", 1, "sigmoid")
	if err != nil {
		t.Fatal(err)
	}
	ctx := app.Context()
	m := MustNewModel(b, ctx, "sequential_1", app.Apply)
	base := ApplicationLayers(app, LayersUntil("block5_pool"))

	rng := rand.New(rand.NewPCG(1, 2))
	x := kernelext.NewArray(2, 32, 32, 3)
	for i := range x.Data {
		x.Data[i] = float32(rng.IntN(256)) - 120 // caffe-range values
	}
	gen := &fixedBatches{x: []*kernelext.Array{x}, y: []*kernelext.Array{{Shape: []int{2}, Data: []float32{0, 1}}}}

	snap := func(layer string) []float32 { return values(t, ctx, "/"+layer, "kernel") }
	b4, b5, h := snap("block4_conv3"), snap("block5_conv3"), snap(head)
	var b5AfterStage1 []float32
	hist, err := FineTune(m, gen, FineTuneOptions{
		Base:     base,
		Unfreeze: []Selector{LayerPrefix("block5_")},
		Stage1: FitOptions{Epochs: 1, StepsPerEpoch: 1, Out: io.Discard, Callbacks: []Callback{{
			OnEpochEnd: func(int, map[string]float64) error { b5AfterStage1 = snap("block5_conv3"); return nil },
		}}},
		Stage2: FitOptions{Epochs: 1, StepsPerEpoch: 1, Out: io.Discard},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bitsEqual(b5AfterStage1, b5) {
		t.Error("stage 1 changed block5_conv3")
	}
	if !bitsEqual(snap("block4_conv3"), b4) {
		t.Error("block4_conv3 changed; it is frozen in both stages")
	}
	if bitsEqual(snap("block5_conv3"), b5) {
		t.Error("stage 2 did not train block5_conv3")
	}
	if bitsEqual(snap(head), h) {
		t.Error("the head did not train")
	}
	if len(hist.Epoch) != 2 {
		t.Errorf("history epochs %v", hist.Epoch)
	}

	path := filepath.Join(t.TempDir(), "classifier.ckpt")
	m.MustSave(path)
	p1 := m.MustPredict(x)
	// The same model made with NewApplicationModel predicts through app.Predict — on the engine
	// with the pure-Go backend, which must see the trained variables.
	pa := MustNewApplicationModel(b, app).MustPredict(x)
	if _, ok := closeTo(pa.Data, p1.Data, 1e-5); !ok {
		t.Errorf("NewApplicationModel predicts %v, the GoMLX graph %v", pa.Data, p1.Data)
	}
	app2, err := applications.VGG16(applications.WithWeights(""), applications.IncludeTop(false),
		applications.InputShape(32, 32), applications.WithSeed(8), applications.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	app2.AsSequential("sequential_1")
	_, _ = app2.AddFlatten("")
	_, _ = app2.AddDense("", 1, "sigmoid")
	m2 := MustNewModel(b, app2.Context(), "sequential_1", app2.Apply)
	if _, err := m2.Load(path); err != nil {
		t.Fatal(err)
	}
	if p2 := m2.MustPredict(x); !bitsEqual(p1.Data, p2.Data) {
		t.Errorf("predictions after loading: %v, before saving: %v", p2.Data, p1.Data)
	}

	// The feature path: block5_pool features from the shared variables, then Flatten and the
	// head under the name AddDense gave it, predict what the full model predicts.
	extractor := MustNewModel(b, ctx, "vgg16", ApplicationBase(app, "block5_pool"))
	headOnly := MustNewModel(b, ctx, "sequential_1", Sequential(Flatten(), Dense(head, 1, "sigmoid")))
	feats := extractor.MustPredict(x)
	if feats.ShapeString() != "(2, 1, 1, 512)" {
		t.Fatalf("block5_pool features %s", feats.ShapeString())
	}
	p3 := headOnly.MustPredict(feats)
	for i := range p1.Data {
		if d := p1.Data[i] - p3.Data[i]; d > 1e-6 || d < -1e-6 {
			t.Errorf("head on features predicts %v, the full model %v", p3.Data, p1.Data)
			break
		}
	}
}
