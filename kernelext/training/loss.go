package training

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
)

// Loss is a Keras loss function: PerSample maps the labels yTrue (batch,) and the model output
// yPred ((batch, 1) or (batch,)) to one loss value per sample (batch,). The training loss is their
// batch mean, as Keras' SUM_OVER_BATCH_SIZE reduction with unit sample weights.
type Loss struct {
	Name      string
	PerSample func(yTrue, yPred *Node) *Node
}

// Metric is a Keras mean metric: PerSample gives one value per sample, and the reported value
// is the running mean over every sample seen since the metric was reset (the start of each
// training epoch, each evaluation) — Keras 2.3's stateful MeanMetricWrapper.
type Metric struct {
	Name      string
	PerSample func(yTrue, yPred *Node) *Node
}

// KerasEpsilon is K.epsilon(), the fuzz factor Keras clips probabilities with.
const KerasEpsilon = 1e-7

// BinaryCrossentropy is loss='binary_crossentropy' as Keras 2.3.1 computes it on TensorFlow 2:
// keras.backend.binary_crossentropy forwards to tf.keras.backend.binary_crossentropy, which —
// when the model output is produced by a sigmoid, as Dense(1, activation='sigmoid') is — takes
// the sigmoid's input z and returns TensorFlow's sigmoid_cross_entropy_with_logits,
// max(z, 0) − z·y + log(1 + e^−|z|), with no clipping. Any other output is treated as
// probabilities and goes through BinaryCrossentropyClipped's formula.
//
// The two agree for |z| < ~16; beyond that the clipped form saturates at −ln(1e-7) ≈ 16.12 with
// zero gradient, while the logit form keeps growing (and keeps learning). The sigmoid is
// recognised by the GoMLX node type (a Logistic op), as TensorFlow checks op.type == 'Sigmoid'.
var BinaryCrossentropy = Loss{Name: "binary_crossentropy", PerSample: binaryCrossentropy}

// BinaryCrossentropyClipped is binary cross-entropy on probabilities: p clipped to
// [1e-7, 1 − 1e-7], then −[y·ln p + (1 − y)·ln(1 − p)] — Keras' formula on TensorFlow 1.x, and
// on any version when the output is not a sigmoid node.
var BinaryCrossentropyClipped = Loss{Name: "binary_crossentropy", PerSample: binaryCrossentropyClipped}

// Accuracy is metrics=['accuracy'] with a binary cross-entropy loss, i.e. Keras'
// binary_accuracy: mean(y == round(p)), with TensorFlow's round (half to even: p = 0.5 counts
// as class 0). Keras 2.3 displays it as "accuracy" (2.2.5 and older showed "acc").
var Accuracy = Metric{Name: "accuracy", PerSample: binaryAccuracy}

// alignLabels reshapes yTrue (batch,) to yPred's shape ((batch,) or (batch, 1)), as Keras'
// standardize_input_data turns a label vector into a column for a (None, 1) output.
func alignLabels(yTrue, yPred *Node) *Node {
	b := yPred.Shape().Dimensions[0]
	switch {
	case yPred.Rank() == 1:
	case yPred.Rank() == 2 && yPred.Shape().Dimensions[1] == 1:
	default:
		panic(fmt.Errorf("training: binary losses and metrics need an output of shape (batch, 1) or (batch,), got %s", yPred.Shape()))
	}
	if yTrue.Shape().Size() != b {
		panic(fmt.Errorf("training: %d labels for a batch of %d", yTrue.Shape().Size(), b))
	}
	if yTrue.DType() != yPred.DType() {
		yTrue = ConvertDType(yTrue, yPred.DType())
	}
	return Reshape(yTrue, yPred.Shape().Dimensions...)
}

// meanLastAxis is K.mean(x, axis=-1) for a (batch, 1) value, and the identity for (batch,).
func meanLastAxis(x *Node) *Node {
	if x.Rank() == 2 {
		return ReduceMean(x, -1)
	}
	return x
}

func binaryCrossentropy(yTrue, yPred *Node) *Node {
	y := alignLabels(yTrue, yPred)
	if yPred.Type() != NodeTypeLogistic {
		return binaryCrossentropyClipped(yTrue, yPred)
	}
	z := yPred.Inputs()[0]
	// TensorFlow's sigmoid_cross_entropy_with_logits: relu(z) − z·y + log1p(exp(−|z|)).
	loss := Add(Sub(Max(z, ZerosLike(z)), Mul(z, y)), Log1p(Exp(Neg(Abs(z)))))
	return meanLastAxis(loss)
}

func binaryCrossentropyClipped(yTrue, yPred *Node) *Node {
	y := alignLabels(yTrue, yPred)
	p := ClipScalar(yPred, KerasEpsilon, 1-KerasEpsilon)
	loss := Neg(Add(Mul(y, Log(p)), Mul(OneMinus(y), Log(OneMinus(p)))))
	return meanLastAxis(loss)
}

func binaryAccuracy(yTrue, yPred *Node) *Node {
	y := alignLabels(yTrue, yPred)
	hit := ConvertDType(Equal(y, RoundHalfEven(yPred)), yPred.DType())
	return meanLastAxis(hit)
}

// RoundHalfEven rounds to the nearest integer, ties to even — TensorFlow's tf.round, which
// Keras' K.round is. It is built from Floor because backends disagree on their own Round
// (the pure-Go backend rounds ties away from zero).
func RoundHalfEven(x *Node) *Node {
	if !x.DType().IsFloat() {
		return x
	}
	f := Floor(x)
	frac := Sub(x, f)
	half := MulScalar(OnesLike(x), 0.5)
	up := AddScalar(f, 1)
	// A tie goes to the even neighbour: up when f is odd.
	tie := Where(Equal(Abs(ModScalar(f, 2)), OnesLike(f)), up, f)
	return Where(GreaterThan(frac, half), up, Where(LessThan(frac, half), f, tie))
}
