package layers

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestBlock5TrainsOnGo trains a stack shaped like VGG16's block5 plus a binary head — three
// 3×3 512-channel convolutions with ReLU on 14×14, a 2×2 max-pool, a dense layer and a
// sigmoid — on a fixed batch of two, with plain SGD, on the pure-Go backend. The input stands
// for the frozen block4_pool output, so gradients reach the block5 kernels and the inputs of
// block5_conv2 and block5_conv3, not the stack's input. The loss must fall at every step.
func TestBlock5TrainsOnGo(t *testing.T) {
	const (
		batch, hw, ch = 2, 14, 512
		steps         = 3
		lr            = 0.001
	)
	relu := func(x *Node) *Node { return Max(x, ZerosLike(x)) }
	// loss is the binary cross-entropy of sigmoid(logits), in the stable form
	// max(z,0) - z·y + log(1 + exp(-|z|)).
	lossOf := func(p []*Node, x, y *Node) *Node {
		for i := range 3 {
			x = relu(Conv2D(x, p[2*i], p[2*i+1], 1, Same))
		}
		z := Dense(Flatten(MaxPool2D(x, 2, 2)), p[6], p[7])
		l := Add(Sub(relu(z), Mul(z, y)), Log1P(Exp(Neg(Abs(z)))))
		return ReduceAllMean(l)
	}
	step := MustNewExec(goBackend(), func(inputs []*Node) []*Node {
		x, y, p := inputs[0], inputs[1], inputs[2:]
		loss := lossOf(p, x, y)
		grads := Gradient(loss, p...)
		out := []*Node{loss}
		for i := range p {
			out = append(out, Sub(p[i], MulScalar(grads[i], lr)))
		}
		return out
	})

	// He-initialized kernels, small dense weights, a ReLU-like (non-negative) input.
	params := []*tensors.Tensor{}
	for i := range 3 {
		k := randFlat(uint64(10+i), 9*ch*ch)
		scale := math.Sqrt(3) * math.Sqrt(2.0/(9*ch))
		for j := range k {
			k[j] *= scale
		}
		params = append(params, tensor32(k, 3, 3, ch, ch), tensor32(make([]float64, ch), ch))
	}
	fan := 7 * 7 * ch
	wd := randFlat(20, fan)
	for j := range wd {
		wd[j] *= math.Sqrt(3.0 / float64(fan))
	}
	params = append(params, tensor32(wd, fan, 1), tensor32([]float64{0}, 1))
	xin := randFlat(21, batch*hw*hw*ch)
	for j := range xin {
		xin[j] = math.Max(0, xin[j])
	}
	x := tensor32(xin, batch, hw, hw, ch)
	y := tensor32([]float64{1, 0}, batch, 1)

	var losses []float64
	for range steps + 1 {
		args := append([]any{x, y}, anySlice(params)...)
		out := step.MustExec(args...)
		losses = append(losses, float64(flat32(out[0])[0]))
		params = out[1:]
	}
	t.Logf("losses: %.5f", losses)
	for i := 1; i < len(losses); i++ {
		if !(losses[i] < losses[i-1]) {
			t.Errorf("loss did not fall at step %d: %.5f", i, losses)
		}
	}
}

func anySlice(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}
