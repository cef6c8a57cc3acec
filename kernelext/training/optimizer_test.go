package training

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// runQuadratic minimises sum((p − c)²) with opt for steps steps from p0 and returns p after
// each step.
func runQuadratic(t *testing.T, b backends.Backend, opt optimizers.Interface, p0, c []float32, steps int) [][]float32 {
	t.Helper()
	ctx := context.New()
	ctx.In("quadratic").VariableWithValue("p", tensors.FromFlatDataAndDimensions(append([]float32(nil), p0...), len(p0)))
	exec, err := context.NewExec(b, ctx, func(ctx *context.Context, g *Graph) *Node {
		p := ctx.GetVariableByScopeAndName("/quadratic", "p").ValueGraph(g)
		cc := Const(g, c)
		loss := ReduceAllSum(Square(Sub(p, cc)))
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]float32
	for range steps {
		res, err := exec.Exec()
		if err != nil {
			t.Fatal(err)
		}
		finalizeAll(res)
		out = append(out, values(t, ctx, "/quadratic", "p"))
	}
	return out
}

func argFloat(args map[string]any, key string, def float64) float64 {
	if v, ok := args[key].(float64); ok {
		return v
	}
	return def
}

// TestOptimizersMatchKerasFormulas runs Adam and SGD on a quadratic and compares every step with
// a NumPy float32 implementation of Keras 2.3.1's get_updates (testdata/keras_oracle.py).
func TestOptimizersMatchKerasFormulas(t *testing.T) {
	b := testBackend(t)
	g := loadGolden(t)
	for _, tc := range g.Optimizers {
		t.Run(tc.Name, func(t *testing.T) {
			var opt Optimizer
			switch tc.Kind {
			case "adam":
				a := NewAdam()
				a.LearningRate = argFloat(tc.Args, "lr", a.LearningRate)
				a.Beta1 = argFloat(tc.Args, "beta_1", a.Beta1)
				a.Beta2 = argFloat(tc.Args, "beta_2", a.Beta2)
				a.Epsilon = argFloat(tc.Args, "epsilon", a.Epsilon)
				a.Decay = argFloat(tc.Args, "decay", 0)
				opt = a
			case "sgd":
				s := NewSGD(argFloat(tc.Args, "lr", 0.01), argFloat(tc.Args, "momentum", 0))
				s.Nesterov, _ = tc.Args["nesterov"].(bool)
				s.Decay = argFloat(tc.Args, "decay", 0)
				opt = s
			}
			got := runQuadratic(t, b, opt, tc.P0, tc.C, tc.Steps)
			worst := int64(0)
			for step := range got {
				for i := range got[step] {
					d := ulpDiff(got[step][i], tc.Trajectory[step][i])
					worst = max(worst, d)
					// The same float32 operations in the same order; pow and sqrt may round
					// differently by an ulp, which later steps can carry a little further.
					if d > 8 {
						t.Fatalf("step %d, p[%d] = %.9g, Keras formula gives %.9g (%d ulps)", step+1, i,
							got[step][i], tc.Trajectory[step][i], d)
					}
				}
			}
			t.Logf("%s: worst difference %d ulps over %d steps", opt, worst, tc.Steps)
		})
	}
}

// TestGoMLXAdamDiffersFromKeras documents why this package has its own Adam: with small
// gradients, GoMLX's ε placement (√v̂ + ε) moves parameters several times further than Keras'
// (√v + ε with the bias correction folded into the learning rate).
func TestGoMLXAdamDiffersFromKeras(t *testing.T) {
	b := testBackend(t)
	g := loadGolden(t)
	for _, tc := range g.Optimizers {
		if tc.Name != "adam_tiny_gradients" {
			continue
		}
		got := runQuadratic(t, b, optimizers.Adam().LearningRate(0.001).Done(), tc.P0, tc.C, 1)
		keras := tc.Trajectory[0]
		for i := range got[0] {
			stepGoMLX := math.Abs(float64(got[0][i] - tc.P0[i]))
			stepKeras := math.Abs(float64(keras[i] - tc.P0[i]))
			if stepGoMLX < 2*stepKeras {
				t.Errorf("p[%d]: GoMLX Adam step %.3g, Keras step %.3g: expected GoMLX's to be much larger", i, stepGoMLX, stepKeras)
			}
		}
		return
	}
	t.Fatal("golden case adam_tiny_gradients missing")
}

// TestAdamState checks the optimizer bookkeeping: iterations counts steps, moments live under
// OptimizerScope, Compile of a new optimizer clears them (a fresh Keras optimizer), and String
// is Keras' config.
func TestAdamState(t *testing.T) {
	if got, want := NewAdam().String(), "Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, decay=0.0)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := AdamWithLearningRate(1e-5).String(), "Adam(learning_rate=1e-05, beta_1=0.9, beta_2=0.999, epsilon=1e-07, decay=0.0)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := NewSGD(1e-4, 0.9).String(), "SGD(learning_rate=0.0001, momentum=0.9, nesterov=False, decay=0.0)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	b := testBackend(t)
	m, x, y := toyModel(t, b, 16, 4, 1)
	if err := m.Compile(NewAdam(), BinaryCrossentropy, Accuracy); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := m.TrainOnBatch(x, y); err != nil {
			t.Fatal(err)
		}
	}
	if n := OptimizerIterations(m.Context()); n != 3 {
		t.Errorf("iterations = %d, want 3", n)
	}
	if v := m.Context().GetVariableByScopeAndName(OptimizerScope+"/m/dense_1", "kernel"); v == nil || v.Shape().DType != dtypes.Float32 {
		t.Errorf("first moment of dense_1/kernel not found under %s/m", OptimizerScope)
	}
	if err := m.Compile(AdamWithLearningRate(1e-5), BinaryCrossentropy, Accuracy); err != nil {
		t.Fatal(err)
	}
	if n := OptimizerIterations(m.Context()); n != 0 {
		t.Errorf("after recompiling, iterations = %d, want 0", n)
	}
}
