package training

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// imageBatches cuts randomImages into batches of the given sizes, yielded in a loop.
func imageBatches(x *kernelext.Array, y []float32, sizes ...int) *fixedBatches {
	f := &fixedBatches{}
	per := x.Size() / x.Shape[0]
	start := 0
	for _, n := range sizes {
		f.x = append(f.x, &kernelext.Array{Shape: append([]int{n}, x.Shape[1:]...), Data: x.Data[start*per : (start+n)*per]})
		f.y = append(f.y, &kernelext.Array{Shape: []int{n}, Data: y[start : start+n]})
		start += n
	}
	return f
}

// TestExtractGeneratorTrainsLikeTheFullModel trains Dense(1, sigmoid) on a frozen conv base two
// ways from the same initial weights on the same batches: the whole model on images, and the
// head alone on ExtractGenerator(images, base). The histories and the trained head agree to
// float32 rounding, the base is untouched, and the base ran once per batch drawn.
func TestExtractGeneratorTrainsLikeTheFullModel(t *testing.T) {
	b := testBackend(t)
	x, y := randomImages(40, 5)
	valX, valY := randomImages(12, 6)
	opts := func() FitOptions {
		return FitOptions{Epochs: 2, StepsPerEpoch: 3, ValidationData: imageBatches(valX, valY, 8, 4),
			ValidationSteps: 1, Out: io.Discard}
	}

	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(13))
	full := MustNewModel(b, ctx, "sequential_1", Sequential(tinyBase, Dense("dense_1", 1, "sigmoid")))
	full.MustPredict(x) // creates the variables
	if err := Freeze(ContextLayers(ctx, LayerPrefix("block"))); err != nil {
		t.Fatal(err)
	}
	full.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
	// The base's features, computed by a model of its own on the same variables, before training.
	base := MustNewModel(b, ctx, "base", tinyBase)
	calls, rows := 0, 0
	extract := func(x *kernelext.Array) (*kernelext.Array, error) {
		calls, rows = calls+1, rows+x.Shape[0]
		return base.Predict(x)
	}
	baseKernel := values(t, ctx, "/block2_dense1", "kernel")

	// The head alone, in a context of its own with the same seed: the same initial weights.
	hctx := context.New()
	hctx.SetParam(context.ParamInitialSeed, int64(13))
	head := MustNewModel(b, hctx, "sequential_1", Dense("dense_1", 1, "sigmoid"))
	head.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)

	hFull, err := full.Fit(imageBatches(x, y, 16, 16, 8), opts())
	if err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.ValidationData = NewExtractGenerator(o.ValidationData, extract)
	train := NewExtractGenerator(imageBatches(x, y, 16, 16, 8), extract)
	if train.Len() != 3 {
		t.Errorf("Len = %d, want the wrapped generator's 3", train.Len())
	}
	hHead, err := head.Fit(train, o)
	if err != nil {
		t.Fatal(err)
	}
	// Two epochs of 16+16+8 training images, then one validation batch each: 8, then 4 (the
	// validation generator continues across epochs).
	if calls != 2*(3+1) || rows != 2*(16+16+8)+8+4 {
		t.Errorf("the base ran %d times on %d images, want once per batch drawn: 8 times on 92 images", calls, rows)
	}

	if strings.Join(hFull.Names, ",") != strings.Join(hHead.Names, ",") || len(hFull.Epoch) != 2 || len(hHead.Epoch) != 2 {
		t.Fatalf("histories differ in shape:\n%s\n%s", hFull, hHead)
	}
	for _, n := range hFull.Names {
		for e := range hFull.Epoch {
			if a, h := hFull.Value[n][e], hHead.Value[n][e]; math.Abs(a-h) > 1e-6 {
				t.Errorf("epoch %d %s: full model %v, head on extracted features %v", e+1, n, a, h)
			}
		}
	}
	for _, name := range []string{"kernel", "bias"} {
		a, h := values(t, ctx, "/dense_1", name), values(t, hctx, "/dense_1", name)
		moved := false
		for i := range a {
			if math.Abs(float64(a[i]-h[i])) > 1e-6 {
				t.Errorf("dense_1/%s[%d]: full model %v, head %v", name, i, a[i], h[i])
			}
			moved = moved || a[i] != 0
		}
		if name == "bias" && !moved {
			t.Error("the head did not train")
		}
	}
	if !bitsEqual(baseKernel, values(t, ctx, "/block2_dense1", "kernel")) {
		t.Error("the frozen base changed")
	}
}

// TestExtractGeneratorErrors: the wrapped generator's and extract's errors come through, and
// an extract that loses rows is refused.
func TestExtractGeneratorErrors(t *testing.T) {
	x, y := randomImages(4, 1)
	batches := imageBatches(x, y, 4)
	boom := errors.New("boom")
	for _, c := range []struct {
		name    string
		gen     Generator
		extract func(*kernelext.Array) (*kernelext.Array, error)
		want    string
	}{
		{"generator error", failingGen{boom}, func(x *kernelext.Array) (*kernelext.Array, error) { return x, nil }, "boom"},
		{"extract error", batches, func(*kernelext.Array) (*kernelext.Array, error) { return nil, boom }, "training: extract features: boom"},
		{"rows lost", batches, func(*kernelext.Array) (*kernelext.Array, error) { return kernelext.NewArray(3, 2), nil },
			"training: extract returned shape (3, 2) for a batch of 4"},
		{"nil extract", batches, nil, "needs a generator and an extract function"},
	} {
		g := NewExtractGenerator(c.gen, c.extract)
		if _, _, err := g.Next(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	g := NewExtractGenerator(batches, func(x *kernelext.Array) (*kernelext.Array, error) {
		out := kernelext.NewArray(x.Shape[0], 1)
		out.Data[0] = 7
		return out, nil
	})
	fx, fy, err := g.Next()
	if err != nil || fx.ShapeString() != "(4, 1)" || fx.Data[0] != 7 || fy != batches.y[0] {
		t.Errorf("Next = %v, %v, %v; want the extracted x and the batch's own y", fx, fy, err)
	}
	if NewExtractGenerator(failingGen{boom}, nil).Len() != 0 {
		t.Error("Len of a generator without Len should be 0 (unknown)")
	}
}

type failingGen struct{ err error }

func (f failingGen) Next() (*kernelext.Array, *kernelext.Array, error) { return nil, nil, f.err }
