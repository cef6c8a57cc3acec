package training

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func closeTo(got, want []float32, tol float64) (int, bool) {
	for i := range want {
		if math.Abs(float64(got[i])-float64(want[i])) > tol*math.Max(1, math.Abs(float64(want[i]))) {
			return i, false
		}
	}
	return -1, len(got) == len(want)
}

// TestLossesAndAccuracyMatchNumPy compares binary cross-entropy (logit path for sigmoid outputs,
// clipped path otherwise), binary accuracy and the round-half-even they rely on with NumPy
// implementations of TensorFlow's formulas (testdata/keras_oracle.py).
func TestLossesAndAccuracyMatchNumPy(t *testing.T) {
	b := testBackend(t)
	g := loadGolden(t).Losses
	run := func(fn func(y, x *Node) *Node, y, x []float32) []float32 {
		t.Helper()
		exec, err := NewExec(b, fn)
		if err != nil {
			t.Fatal(err)
		}
		res, err := exec.Exec(tensors.FromFlatDataAndDimensions(y, len(y)), tensors.FromFlatDataAndDimensions(x, len(x)))
		if err != nil {
			t.Fatal(err)
		}
		defer finalizeAll(res)
		return tensors.MustCopyFlatData[float32](res[0])
	}
	column := func(x *Node) *Node { return Reshape(x, x.Shape().Dimensions[0], 1) }
	for _, tc := range []struct {
		name string
		fn   func(y, x *Node) *Node
		y, x []float32
		want []float32
		tol  float64
	}{
		{"BinaryCrossentropy(sigmoid(z)) uses the logits",
			func(y, z *Node) *Node { return BinaryCrossentropy.PerSample(y, Sigmoid(column(z))) }, g.Y, g.Z, g.BCELogits, 2e-6},
		{"BinaryCrossentropyClipped(sigmoid(z))",
			func(y, z *Node) *Node { return BinaryCrossentropyClipped.PerSample(y, Sigmoid(column(z))) }, g.Y, g.Z, g.BCEClippedSigmoid, 1e-5},
		{"BinaryCrossentropy(p) on probabilities clips",
			func(y, p *Node) *Node { return BinaryCrossentropy.PerSample(y, column(p)) }, g.PY, g.P, g.BCEClippedP, 2e-6},
		{"Accuracy(p), (batch,) output",
			func(y, p *Node) *Node { return Accuracy.PerSample(y, p) }, g.PY, g.P, g.AccuracyP, 0},
		{"RoundHalfEven",
			func(_, x *Node) *Node { return RoundHalfEven(x) }, g.RoundIn, g.RoundIn, g.RoundOut, 0},
	} {
		got := run(tc.fn, tc.y, tc.x)
		if i, ok := closeTo(got, tc.want, tc.tol); !ok {
			if i < 0 {
				t.Errorf("%s: %d values, want %d", tc.name, len(got), len(tc.want))
				continue
			}
			t.Errorf("%s: [%d] = %.9g, NumPy gives %.9g", tc.name, i, got[i], tc.want[i])
		}
	}

	// The batch loss is the mean of the per-sample values.
	exec := MustNewExec(b, func(y, z *Node) *Node {
		return ReduceAllMean(BinaryCrossentropy.PerSample(y, Sigmoid(column(z))))
	})
	res := exec.MustExec(tensors.FromFlatDataAndDimensions(g.Y, len(g.Y)), tensors.FromFlatDataAndDimensions(g.Z, len(g.Z)))
	var mean float64
	for _, v := range g.BCELogits {
		mean += float64(v)
	}
	mean /= float64(len(g.BCELogits))
	if got := float64(tensors.ToScalar[float32](res[0])); math.Abs(got-mean) > 1e-5*mean {
		t.Errorf("batch loss %.7g, mean of NumPy's per-sample values %.7g", got, mean)
	}
}
