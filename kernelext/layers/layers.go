// Package layers holds the Keras layer computations VGG16 and ResNet50 need — Conv2D, pooling,
// BatchNormalization in inference form, Dense, ZeroPadding2D — as GoMLX graph functions on
// NHWC tensors, each as fast and as differentiable as the backend allows.
//
// On XLA they are XLA's own ops. On GoMLX's pure-Go backend ("go") they build their own forms,
// because that backend's native convolution is a single-threaded loop (~0.5 GFLOP/s, against
// ~10 for its matrix multiplication on two cores) and it lacks the ops that the gradients of
// Convolve (Reverse) and MaxPool (SelectAndScatterMax) need: convolutions become matrix
// multiplications (Winograd F(2×2, 3×3) for 3×3 kernels, im2col otherwise), and convolutions
// and max-pools carry hand-written gradients, so that a model built from these layers trains
// there too. Both agree to float32 rounding, values and gradients (see the tests).
//
// # Frozen layers
//
// GoMLX builds a gradient only for the ops between the variables it differentiates with
// respect to and the loss. So frozen layers cost their forward pass only, on every backend, if
// their variables are not trainable or if the frozen part's output goes through [Frozen]
// (GoMLX's StopGradient) — the latter also when the optimizer is still given the frozen
// variables. On "go", a convolution's hand-written gradient with respect to its input runs
// only if something before it needs a gradient: the first trainable convolution after a
// frozen part computes its kernel gradient alone.
//
// Like every GoMLX graph function, they panic on misuse while the graph is being built.
package layers

import (
	"fmt"
	"math"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
)

// Padding is Keras' padding argument: "same" or "valid".
type Padding int

const (
	// Valid applies no padding.
	Valid Padding = iota
	// Same pads so that, at stride 1, the output has the input's spatial size.
	Same
)

// Conv2D computes Keras' Conv2D on x (B, H, W, Cin) with kernel (kh, kw, Cin, Cout) — a
// cross-correlation, no flip — adding bias (Cout) when not nil. "same" padding is Keras'
// (TensorFlow's): output ceil(H/stride), any odd padding pixel at the bottom/right. (GoMLX's
// own PadSame pads by the kernel size alone, which differs for strides above 1.)
func Conv2D(x, kernel, bias *Node, stride int, padding Padding) *Node {
	if goForms(x.Graph()) {
		return conv2DGo(x, kernel, bias, stride, padding)
	}
	xd, kd := x.Shape().Dimensions, kernel.Shape().Dimensions
	geo := newConvGeom(xd[1], xd[2], kd[0], kd[1], stride, padding)
	y := Convolve(x, kernel).Strides(stride).
		PaddingPerDim([][2]int{{geo.top, geo.bottom}, {geo.left, geo.right}}).Done()
	if bias != nil {
		y = Add(y, ExpandLeftToRank(bias, y.Rank()))
	}
	return y
}

// MaxPool2D computes Keras' MaxPooling2D with a square window and stride, "valid" padding.
func MaxPool2D(x *Node, window, stride int) *Node {
	if goForms(x.Graph()) {
		return maxPool2DGo(x, window, stride)
	}
	return MaxPool(x).Window(window).Strides(stride).NoPadding().Done()
}

// ZeroPad2D computes Keras' ZeroPadding2D(pad): pad zeros symmetrically on H and W.
func ZeroPad2D(x *Node, pad int) *Node {
	dims := x.Shape().Dimensions
	b, h, w, c := dims[0], dims[1], dims[2], dims[3]
	dt := x.DType()
	g := x.Graph()
	zw := Zeros(g, shapeOf(dt, b, h, pad, c))
	x = Concatenate([]*Node{zw, x, zw}, 2)
	zh := Zeros(g, shapeOf(dt, b, pad, w+2*pad, c))
	return Concatenate([]*Node{zh, x, zh}, 1)
}

// BatchNormInference computes Keras' BatchNormalization in inference mode:
// y = gamma·(x − mean)/sqrt(variance + epsilon) + beta, over the last axis.
func BatchNormInference(x, gamma, beta, mean, variance *Node, epsilon float64) *Node {
	r := x.Rank()
	scale := Mul(gamma, rsqrt(AddScalar(variance, epsilon)))
	shift := Sub(beta, Mul(mean, scale))
	return Add(Mul(x, ExpandLeftToRank(scale, r)), ExpandLeftToRank(shift, r))
}

// rsqrt is Rsqrt(v), as TensorFlow computes BatchNormalization, made differentiable (GoMLX
// v0.26 defines no gradient for Rsqrt): the added term is exactly zero, and its gradient with
// respect to v is d/dv v^(-½) = -½·v^(-3/2).
func rsqrt(v *Node) *Node {
	r := Rsqrt(StopGradient(v))
	slope := StopGradient(MulScalar(Mul(r, Mul(r, r)), -0.5))
	return Add(r, Mul(Sub(v, StopGradient(v)), slope))
}

// Dense computes Keras' Dense: x·kernel + bias, x (B, in), kernel (in, out).
//
// On the pure-Go backend a small batch pays for transposing the kernel on every call (its
// matrix multiplication wants both operands with the summed axis last): 1–2 s for VGG16's
// 25088×4096 fc1 on two cores. [DenseTransposed] with the kernel stored as (out, in) avoids it.
func Dense(x, kernel, bias *Node) *Node {
	y := Dot(x, kernel)
	if bias != nil {
		y = Add(y, ExpandLeftToRank(bias, y.Rank()))
	}
	return y
}

// DenseTransposed computes Dense with the kernel transposed: x·kernelTᵀ + bias, x (B, in),
// kernelT (out, in). The result is the same; on the pure-Go backend it is several times
// faster for small batches (see [Dense]), on XLA it makes no difference.
func DenseTransposed(x, kernelT, bias *Node) *Node {
	y := DotGeneral(x, []int{1}, nil, kernelT, []int{1}, nil)
	if bias != nil {
		y = Add(y, ExpandLeftToRank(bias, y.Rank()))
	}
	return y
}

// Frozen marks the end of the frozen part of a model: x's value passes unchanged, no gradient
// flows back through it, and no gradient graph is built for what computed it. It is GoMLX's
// StopGradient, named for what transfer learning uses it for.
func Frozen(x *Node) *Node { return StopGradient(x) }

// GlobalAveragePool2D computes Keras' GlobalAveragePooling2D: mean over H and W.
func GlobalAveragePool2D(x *Node) *Node { return ReduceMean(x, 1, 2) }

// GlobalMaxPool2D computes Keras' GlobalMaxPooling2D: max over H and W.
func GlobalMaxPool2D(x *Node) *Node { return ReduceMax(x, 1, 2) }

// Flatten computes Keras' Flatten on NHWC: row-major over (H, W, C), the order fc1's kernel
// rows follow in the Keras checkpoints.
func Flatten(x *Node) *Node {
	return Reshape(x, x.Shape().Dimensions[0], -1)
}

// Activation computes Keras' activation of that name: "" or "linear" (identity), "relu",
// "sigmoid" (GoMLX's Logistic op, which a binary cross-entropy loss recognises to compute from
// the logits) or "softmax" (over the last axis). CheckActivation tells a name it knows.
func Activation(x *Node, name string) *Node {
	switch name {
	case "", "linear":
		return x
	case "relu":
		return Max(x, ZerosLike(x))
	case "sigmoid":
		return Sigmoid(x)
	case "softmax":
		return Softmax(x, -1)
	}
	panic(CheckActivation(name))
}

// CheckActivation returns nil for the names Activation computes, an error naming the others.
func CheckActivation(name string) error {
	switch name {
	case "", "linear", "relu", "sigmoid", "softmax":
		return nil
	}
	return fmt.Errorf("layers: unknown activation %q (want relu, sigmoid, softmax or linear)", name)
}

// GlorotUniform draws a kernel as Keras' default initializer does: uniform in ±√(6/(fanIn+fanOut)).
// It draws in Go, not in a graph, so creating a large layer compiles nothing.
func GlorotUniform(rng *rand.Rand, n, fanIn, fanOut int) []float32 {
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	data := make([]float32, n)
	for i := range data {
		data[i] = float32((2*rng.Float64() - 1) * limit)
	}
	return data
}
