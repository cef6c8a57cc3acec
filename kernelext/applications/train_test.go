package applications

import (
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// TestVGG16FineTune runs Exercise 8.03's recipe in miniature on the test backend: VGG16
// without its top, frozen, plus Flatten + Dense(1, sigmoid), trained with Adam and binary
// cross-entropy on a fixed batch of two images; then block5 is unfrozen and training goes on
// (the Keras freeze-then-unfreeze fine-tuning). A 64×64 input (Keras accepts ≥32 without the
// top) keeps it cheap. The loss must fall in both phases, and only the layers trainable in a
// phase may change in it.
func TestVGG16FineTune(t *testing.T) {
	b := testBackend(t)
	m, err := VGG16(WithWeights(""), IncludeTop(false), InputShape(64, 64), WithSeed(7), WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetTrainable(false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddFlatten(""); err != nil {
		t.Fatal(err)
	}
	head, err := m.AddDense("", 1, "sigmoid")
	if err != nil {
		t.Fatal(err)
	}
	if head != "dense_1" {
		t.Errorf("new Dense layer named %q, Keras would say dense_1", head)
	}
	if total, trainable, _ := m.Architecture().Params(); total != 14714688+2049 || trainable != 2049 {
		t.Errorf("frozen base + head: %d params, %d trainable", total, trainable)
	}

	const batch = 2
	x := kernelext.NewArray(batch, 64, 64, 3)
	for i := range x.Data {
		// Two different caffe-range "images".
		x.Data[i] = float32((i*7919)%255) - 120
		if i >= len(x.Data)/2 {
			x.Data[i] = float32((i*104729)%251) - 110
		}
	}
	xt := tensors.FromFlatDataAndDimensions(x.Data, x.Shape...)
	yt := tensors.FromValue([]float32{0, 1})
	ctx := m.Context()

	// newStep builds a training step with the current trainable flags, as Keras' compile().
	newStep := func() *context.Exec {
		step, err := context.NewExec(b, ctx, func(ctx *context.Context, x, y *Node) *Node {
			g := x.Graph()
			ctx.SetTraining(g, true)
			p := Reshape(m.Apply(ctx, x), batch)
			p = ClipScalar(p, 1e-7, 1-1e-7)
			// Keras binary_crossentropy, averaged over the batch.
			loss := Neg(ReduceAllMean(Add(Mul(y, Log(p)), Mul(OneMinus(y), Log(OneMinus(p))))))
			// A fine-tuning learning rate, as the Keras guide recommends after unfreezing.
			optimizers.Adam().LearningRate(1e-5).Done().UpdateGraph(ctx, g, loss)
			return loss
		})
		if err != nil {
			t.Fatal(err)
		}
		return step
	}
	train := func(step *context.Exec, n int) []float32 {
		var losses []float32
		for range n {
			res, err := step.Exec(xt, yt)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, tensors.ToScalar[float32](res[0]))
		}
		return losses
	}
	snapshot := func(layer string) []float32 {
		sc := ctx.In(layer)
		v := sc.GetVariableByScopeAndName(sc.Scope(), "kernel")
		if v == nil {
			t.Fatalf("variable %s/kernel missing", layer)
		}
		out, err := tensors.CopyFlatData[float32](v.MustValue())
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	changed := func(before []float32, layer string) bool { return !slices.Equal(before, snapshot(layer)) }

	block4, block5, dense := snapshot("block4_conv3"), snapshot("block5_conv3"), snapshot("dense_1")
	losses := train(newStep(), 3)
	t.Logf("head only: losses %v", losses)
	if !(losses[2] < losses[0]) {
		t.Errorf("head-only training: loss did not fall: %v", losses)
	}
	if changed(block4, "block4_conv3") || changed(block5, "block5_conv3") || !changed(dense, "dense_1") {
		t.Errorf("head-only training changed block4 %v, block5 %v, dense_1 %v",
			changed(block4, "block4_conv3"), changed(block5, "block5_conv3"), changed(dense, "dense_1"))
	}

	if err := m.SetTrainableFrom("block5_conv1"); err != nil {
		t.Fatal(err)
	}
	if _, trainable, _ := m.Architecture().Params(); trainable != 3*2359808+2049 {
		t.Errorf("block5 + head: %d trainable params", trainable)
	}
	block5, dense = snapshot("block5_conv3"), snapshot("dense_1")
	more := train(newStep(), 3)
	t.Logf("block5 + head: losses %v", more)
	if !(more[2] < more[0] && more[0] < losses[0]) {
		t.Errorf("fine-tuning block5: loss did not fall: %v after %v", more, losses)
	}
	if changed(block4, "block4_conv3") || !changed(block5, "block5_conv3") || !changed(dense, "dense_1") {
		t.Errorf("block5 fine-tuning changed block4 %v, block5 %v, dense_1 %v",
			changed(block4, "block4_conv3"), changed(block5, "block5_conv3"), changed(dense, "dense_1"))
	}
	trainable := map[string]bool{}
	for v := range ctx.IterVariables() {
		trainable[v.Scope()+"/"+v.Name()] = v.Trainable
	}
	if trainable["/block4_conv3/kernel"] || !trainable["/block5_conv1/bias"] || !trainable["/dense_1/kernel"] {
		t.Errorf("variable trainable flags: block4_conv3/kernel=%v block5_conv1/bias=%v dense_1/kernel=%v",
			trainable["/block4_conv3/kernel"], trainable["/block5_conv1/bias"], trainable["/dense_1/kernel"])
	}
}
