package training

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// tinyBase stands in for VGG16: block1_conv1 (3×3 convolution, 3 → 4 channels, relu), then
// Flatten and block2_dense1 (Dense 8, relu), with a StopGradient wherever the frozen part ends.
func tinyBase(ctx *context.Context, x *Node) *Node {
	g := x.Graph()
	sc := ctx.In("block1_conv1").Checked(false)
	k := sc.GetVariableByScopeAndName(sc.Scope(), "kernel")
	if k == nil {
		rng := rand.New(rand.NewPCG(3, 4))
		data := make([]float32, 3*3*3*4)
		for i := range data {
			data[i] = float32(rng.NormFloat64() * 0.3)
		}
		k = sc.VariableWithValue("kernel", tensors.FromFlatDataAndDimensions(data, 3, 3, 3, 4))
		sc.VariableWithValue("bias", tensors.FromShape(shapes.Make(dtypes.Float32, 4)))
	}
	bias := sc.GetVariableByScopeAndName(sc.Scope(), "bias")
	y := Convolve(x, k.ValueGraph(g)).Strides(1).PadSame().Done()
	y = Add(y, ExpandLeftToRank(bias.ValueGraph(g), 4))
	y = Max(y, ZerosLike(y))
	y = StopGradientIfFrozen(ctx, y, "block1_conv1")
	y = Flatten()(ctx, y)
	y = Dense("block2_dense1", 8, "relu")(ctx, y)
	return StopGradientIfFrozen(ctx, y, "block1_conv1", "block2_dense1")
}

func randomImages(n int, seed uint64) (*kernelext.Array, []float32) {
	rng := rand.New(rand.NewPCG(seed, 9))
	x := kernelext.NewArray(n, 8, 8, 3)
	for i := range x.Data {
		x.Data[i] = rng.Float32()
	}
	y := make([]float32, n)
	for i := range y {
		y[i] = float32(rng.IntN(2))
	}
	return x, y
}

// TestFreezeThenUnfreeze runs FineTune on a tiny conv base + Dense(1, sigmoid) head: in stage 1
// only the head may change, bit for bit; in stage 2 (block2_* unfrozen, Adam 1e-5) block2 and
// the head change and block1 stays bit-identical. Trainable counts follow, and the history runs
// on across both stages.
func TestFreezeThenUnfreeze(t *testing.T) {
	b := testBackend(t)
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(13))
	m := MustNewModel(b, ctx, "sequential_1", Sequential(tinyBase, Dense("dense_1", 1, "sigmoid")))
	x, y := randomImages(48, 2)
	m.MustPredict(x) // creates the variables
	base := ContextLayers(ctx, LayerPrefix("block"))
	if got := strings.Join(base.LayerNames(), ","); got != "block1_conv1,block2_dense1" {
		t.Fatalf("base layers = %s", got)
	}
	snap := func(layer string) []float32 { return values(t, ctx, "/"+layer, "kernel") }
	block1, block2, head := snap("block1_conv1"), snap("block2_dense1"), snap("dense_1")

	var afterStage1 [3][]float32
	var trainableStage1, trainableStage2 int
	gen, err := NewFeatureGenerator([]*kernelext.Array{x}, y, 16, true, 4)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	hist, err := FineTune(m, gen, FineTuneOptions{
		Base:     base,
		Unfreeze: []Selector{LayerPrefix("block2_")},
		Stage1: FitOptions{Epochs: 2, Out: &out, Callbacks: []Callback{{OnEpochEnd: func(epoch int, _ map[string]float64) error {
			afterStage1 = [3][]float32{snap("block1_conv1"), snap("block2_dense1"), snap("dense_1")}
			trainableStage1, _ = TrainableSummary(ctx)
			return nil
		}}}},
		Stage2: FitOptions{Epochs: 2, Out: &out, Callbacks: []Callback{{OnEpochEnd: func(int, map[string]float64) error {
			trainableStage2, _ = TrainableSummary(ctx)
			return nil
		}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bitsEqual(afterStage1[0], block1) || !bitsEqual(afterStage1[1], block2) {
		t.Error("stage 1 changed the frozen base")
	}
	if bitsEqual(afterStage1[2], head) {
		t.Error("stage 1 did not train the head")
	}
	if !bitsEqual(snap("block1_conv1"), block1) {
		t.Error("stage 2 changed block1_conv1, which stays frozen")
	}
	if bitsEqual(snap("block2_dense1"), afterStage1[1]) {
		t.Error("stage 2 did not train the unfrozen block2_dense1")
	}
	if bitsEqual(snap("dense_1"), afterStage1[2]) {
		t.Error("stage 2 did not train the head")
	}
	// Head: 8 + 1; block2_dense1: 8·8·4·8 + 8.
	if trainableStage1 != 9 || trainableStage2 != 9+256*8+8 {
		t.Errorf("trainable parameters: stage 1 %d (want 9), stage 2 %d (want %d)", trainableStage1, trainableStage2, 9+256*8+8)
	}
	if len(hist.Epoch) != 4 || hist.Epoch[3] != 3 {
		t.Errorf("history epochs %v, want 0…3", hist.Epoch)
	}
	if OptimizerIterations(ctx) != 2*3 {
		t.Errorf("stage 2 optimizer iterations = %d, want 6 (a fresh optimizer)", OptimizerIterations(ctx))
	}
	log := out.String()
	for _, want := range []string{"Stage 1: base frozen", "Epoch 2/2", "Stage 2: [layers \"block2_\"*] unfrozen, training with Adam(learning_rate=1e-05",
		"Epoch 3/4", "Epoch 4/4"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestSelectors(t *testing.T) {
	names := []string{"input_1", "block1_conv1", "block5_conv1", "block5_conv2", "block5_pool", "flatten", "fc1"}
	for _, tc := range []struct {
		sel  Selector
		want string
	}{
		{LayerPrefix("block5_"), "block5_conv1,block5_conv2,block5_pool"},
		{LayersFrom("block5_pool"), "block5_pool,flatten,fc1"},
		{LayerNamed("fc1", "input_1"), "fc1,input_1"},
		{AllLayers(), strings.Join(names, ",")},
	} {
		got, err := tc.sel.match(names)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%s: %v, %v; want %s", tc.sel, got, err, tc.want)
		}
	}
	for _, sel := range []Selector{LayerPrefix("block6_"), LayersFrom("fc3"), LayerNamed("fc1", "fc9")} {
		if _, err := sel.match(names); err == nil {
			t.Errorf("%s matched nothing but gave no error", sel)
		}
	}
}
