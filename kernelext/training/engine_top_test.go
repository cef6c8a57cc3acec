package training

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// engineTopApp is a small fine-tuning network with every layer kind the engine trains: a
// seeded random VGG16 without its top at 32×32 (block5 works on 2×2 maps), Flatten, a frozen
// Dense(8, relu) — the gradient crosses it, as it crosses VGG16's frozen fc1 and fc2 — and the
// Dense(1, sigmoid) head; block5 unfrozen.
func engineTopApp(t *testing.T) *applications.Model {
	t.Helper()
	app, err := applications.New("vgg16", applications.IncludeTop(false), applications.InputShape(32, 32),
		applications.WithWeights(""), applications.WithSeed(7), applications.WithBackend(testBackend(t)))
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must("", app.SetTrainable(false))
	must(app.AddFlatten(""))
	fc, err := app.AddDense("", 8, "relu")
	must("", err)
	must(app.AddDense("", 1, "sigmoid"))
	must("", app.SetTrainable(false, fc))
	must("", app.SetTrainable(true, "block5_conv1", "block5_conv2", "block5_conv3"))
	return app
}

// topBatch is a batch of block4_pool features (2×2×512, a third of them zero as after a ReLU,
// so that pooling windows tie) and labels.
func topBatch(rng *rand.Rand, n int) (x, y *kernelext.Array) {
	x, y = kernelext.NewArray(n, 2, 2, 512), kernelext.NewArray(n)
	for i := range x.Data {
		if rng.IntN(3) > 0 {
			x.Data[i] = rng.Float32() * 2
		}
	}
	for i := range y.Data {
		y.Data[i] = float32(rng.IntN(2))
	}
	return x, y
}

// TestEngineTopMatchesGoMLX trains the same top from the same variables with GoMLX's autodiff
// and Adam graph (the oracle) and with the engine's steps and Adam.updateValues: every step's
// loss and accuracy, then the weights, Adam's moments and the step counter after the steps
// (and a test step, which changes nothing) agree to float32 reordering.
//
// With block5_conv3's kernel zero and its bias positive, every pooling window holds equal
// positive values: the gradient must go to each window's first position, as GoMLX's (and
// XLA's) MaxPool gradient sends it (one step: after it the windows hold near-ties, which
// float32 reordering may break either way; Adam's ε raised to 1e-3 so that the first step of
// the zero kernel, lr·m/(√v + ε), is not the ill-conditioned m/√v of tiny gradients).
func TestEngineTopMatchesGoMLX(t *testing.T) {
	t.Run("random", func(t *testing.T) { engineTopVersusGoMLX(t, AdamWithLearningRate(1e-4), 3, nil) })
	t.Run("tied pooling windows", func(t *testing.T) {
		opt := AdamWithLearningRate(1e-4)
		opt.Epsilon = 1e-3
		engineTopVersusGoMLX(t, opt, 1, func(app *applications.Model) {
			sc := app.Context().In("block5_conv3")
			for key, value := range map[string]float32{"kernel": 0, "bias": 0.1} {
				v := sc.GetVariableByScopeAndName(sc.Scope(), key)
				tt := tensors.FromShape(v.Shape())
				tensors.MustMutableFlatData(tt, func(f []float32) {
					for i := range f {
						f[i] = value
					}
				})
				if err := v.SetValue(tt); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
}

func engineTopVersusGoMLX(t *testing.T, adam *Adam, trainSteps int, prepare func(*applications.Model)) {
	const cut = "block4_pool"
	opt := func() Optimizer { a := *adam; return &a }
	oracleApp, engineApp := engineTopApp(t), engineTopApp(t)
	if prepare != nil {
		prepare(oracleApp)
		prepare(engineApp)
	}
	oracle, err := NewModel(oracleApp.Backend(), oracleApp.Context(), "top", ApplicationTop(oracleApp, cut))
	if err != nil {
		t.Fatal(err)
	}
	if err := oracle.Compile(opt(), BinaryCrossentropy, Accuracy); err != nil {
		t.Fatal(err)
	}
	onEngine, err := NewModel(engineApp.Backend(), engineApp.Context(), "top", ApplicationTop(engineApp, cut))
	if err != nil {
		t.Fatal(err)
	}
	if err := onEngine.Compile(opt(), BinaryCrossentropy, Accuracy); err != nil {
		t.Fatal(err)
	}
	steps, err := newEngineTop(engineApp, engineApp.Context(), cut, onEngine.Optimizer())
	if err != nil {
		t.Fatal(err)
	}
	onEngine.steps = steps

	rng := rand.New(rand.NewPCG(1, 2))
	for s := range trainSteps {
		x, y := topBatch(rng, 5)
		want, err := oracle.TrainOnBatch(x, y)
		if err != nil {
			t.Fatal(err)
		}
		got, err := onEngine.TrainOnBatch(x, y)
		if err != nil {
			t.Fatal(err)
		}
		sameStep(t, fmt.Sprintf("training step %d", s+1), got, want)
	}
	x, y := topBatch(rng, 3)
	want, err := oracle.TestOnBatch(x, y)
	if err != nil {
		t.Fatal(err)
	}
	got, err := onEngine.TestOnBatch(x, y)
	if err != nil {
		t.Fatal(err)
	}
	sameStep(t, "test step", got, want)

	compared, worst := 0, 0.0
	for v := range oracleApp.Context().IterVariables() {
		w := engineApp.Context().GetVariableByScopeAndName(v.Scope(), v.Name())
		if w == nil {
			t.Errorf("%s: missing on the engine's side", v.ScopeAndName())
			continue
		}
		if v.DType() != dtypes.Float32 {
			if a, b := v.MustValue().Value(), w.MustValue().Value(); a != b {
				t.Errorf("%s: GoMLX %v, engine %v", v.ScopeAndName(), a, b)
			}
			continue
		}
		a, err := tensors.CopyFlatData[float32](v.MustValue())
		if err != nil {
			t.Fatal(err)
		}
		b, err := tensors.CopyFlatData[float32](w.MustValue())
		if err != nil {
			t.Fatal(err)
		}
		// Relative 1e-4 of the element plus 1e-4 of the variable's largest element: the
		// gradients are float32 sums over pixels and samples that largely cancel for many
		// elements (their error is relative to the terms, not to the sum), and Adam's
		// normalised step m/√v carries that into the weights and the moments.
		scale := 0.0
		for _, f := range a {
			scale = max(scale, math.Abs(float64(f)))
		}
		for i := range a {
			tol := 1e-4 * (math.Abs(float64(a[i])) + scale)
			d := math.Abs(float64(a[i] - b[i]))
			worst = max(worst, d/max(tol, 1e-30))
			if d > tol {
				t.Errorf("%s[%d]: GoMLX %v, engine %v", v.ScopeAndName(), i, a[i], b[i])
				break
			}
		}
		compared++
	}
	// 14 layers of VGG16 without the top (26 weights), 2 Dense layers (4), and for the 8
	// trainable weights (block5's kernels and biases, the head's) Adam's m and v.
	if compared != 26+4+16 {
		t.Errorf("%d float32 variables compared, want %d", compared, 26+4+16)
	}
	if n := OptimizerIterations(engineApp.Context()); n != int64(trainSteps) {
		t.Errorf("optimizer iterations %d, want %d", n, trainSteps)
	}
	t.Logf("largest difference: %.2g of the tolerance", worst)
}

// sameStep compares a step's loss (relative 1e-5) and accuracy sum (exactly).
func sameStep(t *testing.T, what string, got, want StepResult) {
	t.Helper()
	if math.Abs(float64(got.Loss-want.Loss)) > 1e-5*max(1, math.Abs(float64(want.Loss))) || got.MetricSums[0] != want.MetricSums[0] || got.Size != want.Size {
		t.Errorf("%s: engine loss %v accuracy sum %v, GoMLX %v %v", what, got.Loss, got.MetricSums[0], want.Loss, want.MetricSums[0])
	}
}

// TestEngineTopRefuses lists what stays in GoMLX: an optimizer other than Adam, a head other
// than Dense(1, sigmoid), a top with nothing trainable.
func TestEngineTopRefuses(t *testing.T) {
	app := engineTopApp(t)
	if _, err := newEngineTop(app, app.Context(), "block4_pool", NewSGD(0.01, 0)); err == nil {
		t.Error("SGD accepted")
	}
	if _, err := app.AddDense("", 2, "softmax"); err != nil {
		t.Fatal(err)
	}
	if _, err := newEngineTop(app, app.Context(), "block4_pool", NewAdam()); err == nil {
		t.Error("a softmax head accepted")
	}
	frozen := engineTopApp(t)
	if err := frozen.SetTrainable(false); err != nil {
		t.Fatal(err)
	}
	if _, err := newEngineTop(frozen, frozen.Context(), "block4_pool", NewAdam()); err == nil {
		t.Error("a frozen top accepted")
	}
}
