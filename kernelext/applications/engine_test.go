package applications

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// The engine against GoMLX's graph on the same variables (the reference tests tie both to
// PyTorch): every layer kind of both networks, the residual blocks, the folded batch norms
// with non-trivial statistics, pooling heads, and the refresh when variables change.

// engineBackend is the pure-Go backend, on which EngineRuns holds where the CPU allows.
func engineBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := backends.NewWithConfig("go:" + backend.GoOptions)
	if err != nil {
		t.Fatal(err)
	}
	testenv.NeedFeature(t, "avx2", EngineRuns(b, dtypes.Float32),
		"the workbook's CPU engine, which needs an AVX2+FMA or AVX-512 GEMM kernel (kernel here: "+gemm.KernelName()+")")
	return b
}

func randomImages(n, h, w int, seed uint64) *kernelext.Array {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := kernelext.NewArray(n, h, w, 3)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64() * 60)
	}
	return x
}

// perturbBatchNorm gives every BatchNormalization layer random statistics and scale, so
// folding them into the convolutions is tested on more than the identity.
func perturbBatchNorm(t *testing.T, m *Model, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, l := range m.Layers() {
		if l.Op != OpBatchNorm {
			continue
		}
		for _, w := range l.Weights {
			data := make([]float32, w.Size())
			for i := range data {
				switch w.Key {
				case "gamma":
					data[i] = float32(0.5 + rng.Float64())
				case "beta", "moving_mean":
					data[i] = float32(rng.NormFloat64() * 0.2)
				case "moving_variance":
					data[i] = float32(0.5 + rng.Float64())
				}
			}
			setVariable(t, m, l.Name, w.Key, data, w.Shape)
		}
	}
}

func setVariable(t *testing.T, m *Model, layer, key string, data []float32, shape []int) {
	t.Helper()
	sc := m.Context().In(layer)
	v := sc.GetVariableByScopeAndName(sc.Scope(), key)
	if v == nil {
		t.Fatalf("no variable %s/%s", layer, key)
	}
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(data, shape...)); err != nil {
		t.Fatal(err)
	}
}

// relDiff is max |a−b| / max |b|.
func relDiff(a, b []float32) float64 {
	scale := 0.0
	for _, v := range b {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	return maxAbsDiff(a, b) / scale
}

// agree predicts x with the engine model fast and the GoMLX model slow: same shape, and a
// relative difference of at most tol.
func agree(t *testing.T, fast, slow *Model, x *kernelext.Array, tol float64) {
	t.Helper()
	got, err := fast.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	want, err := slow.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("shape %v, GoMLX %v", got.Shape, want.Shape)
	}
	d := relDiff(got.Data, want.Data)
	t.Logf("%v → %v: max relative difference engine vs GoMLX %.3g", x.Shape, got.Shape, d)
	if !(d <= tol) {
		t.Errorf("engine and GoMLX differ by %.3g (relative) > %g", d, tol)
	}
}

func TestEngineMatchesGoMLX(t *testing.T) {
	b := engineBackend(t)
	for _, c := range []struct {
		name  string
		model string
		opts  []Option
		x     *kernelext.Array
		tol   float64
	}{
		{"vgg16_top", "vgg16", nil, randomImages(1, 224, 224, 1), 1e-5},
		{"vgg16_notop_avg_64", "vgg16", []Option{IncludeTop(false), Pooling("avg"), InputShape(64, 80)}, randomImages(3, 64, 80, 2), 1e-5},
		{"vgg16_notop_open", "vgg16", []Option{IncludeTop(false)}, randomImages(1, 48, 40, 3), 1e-5},
		{"resnet50_top", "resnet50", nil, randomImages(2, 224, 224, 4), 1e-4},
		{"resnet50_notop_max", "resnet50", []Option{IncludeTop(false), Pooling("max")}, randomImages(2, 97, 65, 5), 1e-4},
		{"resnet50_notop_map", "resnet50", []Option{IncludeTop(false), InputShape(64, 64)}, randomImages(1, 64, 64, 6), 1e-4},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]Option{WithWeights(""), WithSeed(5), WithBackend(b)}, c.opts...)
			fast, err := New(c.model, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if !fast.OnEngine() {
				t.Fatal("OnEngine() = false on the pure-Go backend")
			}
			perturbBatchNorm(t, fast, 9)
			slow, err := New(c.model, append(opts, WithContext(fast.Context()), WithoutEngine())...)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, fast, slow, c.x, c.tol)
		})
	}
}

// TestEngineFollowsVariables: the engine re-reads weights that change — those a training step
// updates (only the unfrozen block5 and the new head, after SetTrainableFrom) and a frozen
// layer given a new value — and matches GoMLX after each change.
func TestEngineFollowsVariables(t *testing.T) {
	b := engineBackend(t)
	m, err := VGG16(WithWeights(""), WithSeed(3), WithBackend(b), IncludeTop(false), InputShape(64, 64))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddFlatten(""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddDense("", 3, "softmax"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetTrainableFrom("block5_conv1"); err != nil {
		t.Fatal(err)
	}
	x := randomImages(2, 64, 64, 8)
	check := func(stage string) *kernelext.Array {
		t.Helper()
		got, err := m.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := VGG16(WithWeights(""), WithBackend(b), IncludeTop(false), InputShape(64, 64),
			WithContext(m.Context()), WithoutEngine())
		if err != nil {
			t.Fatal(err)
		}
		slow.arch = m.arch.Clone()
		want, err := slow.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		if d := relDiff(got.Data, want.Data); !(d <= 1e-5) {
			t.Fatalf("%s: engine and GoMLX differ by %.3g (relative)", stage, d)
		}
		return got
	}
	p0 := check("before training")

	// A training step as GoMLX runs one: an executed graph that gives every trainable
	// variable a new value.
	changed := map[string]bool{}
	step, err := context.NewExec(b, m.Context(), func(ctx *context.Context, g *graph.Graph) *graph.Node {
		for v := range ctx.IterVariables() {
			if v.Trainable {
				v.SetValueGraph(graph.MulScalar(v.ValueGraph(g), 1.5))
				changed[v.Scope()] = true
			}
		}
		return graph.Const(g, float32(0))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := step.Exec(); err != nil {
		t.Fatal(err)
	}
	for scope := range changed {
		if !strings.Contains(scope, "block5_") && !strings.Contains(scope, "dense_1") {
			t.Errorf("the step changed frozen variables in %s", scope)
		}
	}
	if len(changed) == 0 {
		t.Fatal("the step changed no variable")
	}
	p1 := check("after a training step")
	if slices.Equal(p0.Data, p1.Data) {
		t.Error("Predict did not change after the training step")
	}

	// A frozen layer given a new value.
	l := m.Architecture().Layer("block1_conv1")
	w := l.Weight("bias")
	data := make([]float32, w.Size())
	for i := range data {
		data[i] = 0.5
	}
	setVariable(t, m, l.Name, w.Key, data, w.Shape)
	p2 := check("after a frozen layer changed")
	if slices.Equal(p1.Data, p2.Data) {
		t.Error("Predict did not change after block1_conv1/bias changed")
	}
}

// TestPredictEmptyBatch: no images in, no rows out, of the shape one image gives — on the
// engine and on GoMLX alike, an open input size included.
func TestPredictEmptyBatch(t *testing.T) {
	b := engineBackend(t)
	for _, c := range []struct {
		opts []Option
		x    *kernelext.Array
		want []int
	}{
		{nil, kernelext.NewArray(0, 224, 224, 3), []int{0, 1000}},
		{[]Option{IncludeTop(false)}, kernelext.NewArray(0, 40, 72, 3), []int{0, 1, 2, 512}},
		{[]Option{IncludeTop(false), Pooling("max")}, kernelext.NewArray(0, 40, 72, 3), []int{0, 512}},
	} {
		for _, engine := range []bool{true, false} {
			opts := append([]Option{WithWeights(""), WithSeed(2), WithBackend(b)}, c.opts...)
			if !engine {
				opts = append(opts, WithoutEngine())
			}
			m, err := VGG16(opts...)
			if err != nil {
				t.Fatal(err)
			}
			y, err := m.Predict(c.x)
			if err != nil || !slices.Equal(y.Shape, c.want) || len(y.Data) != 0 {
				t.Errorf("engine %t, input %v: %v, %v; want shape %v", engine, c.x.Shape, y, err, c.want)
			}
		}
	}
}

func TestFrozenBase(t *testing.T) {
	vgg := MustVGG16(WithWeights(""), WithSeed(1), Until("fc2"))
	if got := vgg.FrozenBase(); got != "" {
		t.Errorf("trainable VGG16: FrozenBase() = %q, want \"\"", got)
	}
	if err := vgg.SetTrainable(false); err != nil {
		t.Fatal(err)
	}
	if _, err := vgg.AddDense("", 1, "sigmoid"); err != nil {
		t.Fatal(err)
	}
	if got := vgg.FrozenBase(); got != "fc2" {
		t.Errorf("frozen VGG16 + Dense: FrozenBase() = %q, want fc2", got)
	}
	if err := vgg.SetTrainableFrom("block5_conv1"); err != nil {
		t.Fatal(err)
	}
	if got := vgg.FrozenBase(); got != "block4_pool" {
		t.Errorf("block5 unfrozen: FrozenBase() = %q, want block4_pool", got)
	}
	rn := MustResNet50(WithWeights(""), WithSeed(1), IncludeTop(false))
	// Unfreezing from the middle of a residual block cuts at the block's input.
	if err := rn.SetTrainableFrom("res5a_branch2b"); err != nil {
		t.Fatal(err)
	}
	if got := rn.FrozenBase(); got != "activation_40" {
		t.Errorf("ResNet50 from res5a_branch2b: FrozenBase() = %q, want activation_40 (stage 4's output)", got)
	}
}
