package training

import (
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// separable returns n random feature vectors of dimension dim and labels given by the side of a
// random hyperplane through the origin (a linearly separable toy problem), class balance about ½.
func separable(n, dim int, seed uint64) (*kernelext.Array, []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := make([]float64, dim)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	x := kernelext.NewArray(n, dim)
	y := make([]float32, n)
	for i := 0; i < n; i++ {
		dot := 0.0
		for j := 0; j < dim; j++ {
			v := rng.NormFloat64()
			x.Data[i*dim+j] = float32(v)
			dot += v * w[j]
		}
		if dot > 0 {
			y[i] = 1
		}
	}
	return x, y
}

// toyModel is Dense(1, sigmoid) named dense_1 on dim features, with one batch of n samples.
func toyModel(t testing.TB, b backends.Backend, n, dim int, seed uint64) (*Model, *kernelext.Array, *kernelext.Array) {
	t.Helper()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(seed)+1)
	m, err := NewModel(b, ctx, "sequential_1", Dense("dense_1", 1, "sigmoid"))
	if err != nil {
		t.Fatal(err)
	}
	x, y := separable(n, dim, seed)
	return m, x, &kernelext.Array{Shape: []int{n}, Data: y}
}

// TestHeadLearnsSeparableProblem trains Dense(1, sigmoid) with Adam and binary cross-entropy on
// random features with separable labels, as Exercise 8.03's head learns on frozen VGG16
// features: held-out accuracy must be far above chance, and the predictions must not be
// constant.
func TestHeadLearnsSeparableProblem(t *testing.T) {
	b := testBackend(t)
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(11))
	m := MustNewModel(b, ctx, "sequential_1", Dense("dense_1", 1, "sigmoid"))
	m.MustCompile(AdamWithLearningRate(0.01), BinaryCrossentropy, Accuracy)

	x, y := separable(512, 16, 5)
	trainX := &kernelext.Array{Shape: []int{384, 16}, Data: x.Data[:384*16]}
	testX := &kernelext.Array{Shape: []int{128, 16}, Data: x.Data[384*16:]}
	train, err := NewFeatureGenerator([]*kernelext.Array{trainX}, y[:384], 32, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	val, err := NewFeatureGenerator([]*kernelext.Array{testX}, y[384:], 32, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := m.Fit(train, FitOptions{Epochs: 8, ValidationData: val, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("history:\n%s", hist)
	if acc := hist.Last("val_accuracy"); acc < 0.9 {
		t.Errorf("val_accuracy after 8 epochs = %.3f, want > 0.9 (chance is about 0.5)", acc)
	}
	if l0, l1 := hist.Get("loss")[0], hist.Last("loss"); !(l1 < l0) {
		t.Errorf("loss did not fall: %.4f → %.4f", l0, l1)
	}
	p := m.MustPredict(testX)
	if len(p.Shape) != 2 || p.Shape[0] != 128 || p.Shape[1] != 1 {
		t.Fatalf("predictions shape %s, want (128, 1)", p.ShapeString())
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	correct := 0
	for i, v := range p.Data {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
		if (v > 0.5) == (y[384+i] == 1) {
			correct++
		}
	}
	if lo > 0.2 || hi < 0.8 {
		t.Errorf("predictions span only [%.3f, %.3f]: the model is close to constant", lo, hi)
	}
	// Predict and the validation accuracy agree (the same inference graph, p = 0.5 aside).
	if acc := float64(correct) / 128; math.Abs(acc-hist.Last("val_accuracy")) > 1.0/128+1e-9 {
		t.Errorf("accuracy from Predict %.4f, val_accuracy %.4f", acc, hist.Last("val_accuracy"))
	}
}
