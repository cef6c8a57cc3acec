package training

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/transfer-learning-go/workbook/kernelext/layers"
)

// ModelFn builds a model's output from its input batch inside a GoMLX graph. Variables live in
// ctx, each layer's under its Keras layer name (ctx.In("dense_1")), so freezing, saving and
// loading address them the way Keras names them. The applications package's Model.Apply is one;
// Sequential chains several.
//
// It must read ctx.IsTraining(graph) for layers that behave differently while training
// (BatchNormalization, Dropout). Like every GoMLX graph function it panics on misuse.
type ModelFn func(ctx *context.Context, x *Node) *Node

// Sequential chains layers like keras.Sequential: each one's output is the next one's input.
func Sequential(layers ...ModelFn) ModelFn {
	return func(ctx *context.Context, x *Node) *Node {
		for _, l := range layers {
			x = l(ctx, x)
		}
		return x
	}
}

// Dense is keras.layers.Dense(units, activation) named name: y = activation(x·kernel + bias),
// kernel (in, units) initialised glorot_uniform (U(±√(6/(in+units)))), bias zeros — Keras'
// defaults. x must be (batch, in); use Flatten first for feature maps. activation is "",
// "linear", "relu", "sigmoid" or "softmax".
//
// Initial values are drawn in Go from the context's initializers.ParamInitialSeed (the clock
// when 0) and the layer name, so creating the layer compiles no initialisation graph.
func Dense(name string, units int, activation string) ModelFn {
	return func(ctx *context.Context, x *Node) *Node {
		if x.Rank() != 2 {
			panic(fmt.Errorf("training: Dense %q needs a (batch, features) input, got %s (add Flatten)", name, x.Shape()))
		}
		in := x.Shape().Dimensions[1]
		sc := ctx.In(name).Checked(false)
		kernel := sc.GetVariableByScopeAndName(sc.Scope(), "kernel")
		if kernel == nil {
			data := layers.GlorotUniform(layerRNG(ctx, name), in*units, in, units)
			kernel = sc.VariableWithValue("kernel", tensors.FromFlatDataAndDimensions(data, in, units))
		}
		bias := sc.GetVariableByScopeAndName(sc.Scope(), "bias")
		if bias == nil {
			bias = sc.VariableWithValue("bias", zerosTensor(shapes.Make(dtypes.Float32, units)))
		}
		if want := shapes.Make(dtypes.Float32, in, units); !kernel.Shape().Equal(want) {
			panic(fmt.Errorf("training: Dense %q kernel has shape %s, the input needs %s", name, kernel.Shape(), want))
		}
		g := x.Graph()
		return layers.Activation(layers.Dense(x, kernel.ValueGraph(g), bias.ValueGraph(g)), activation)
	}
}

// Flatten is keras.layers.Flatten: (batch, d1, d2, …) → (batch, d1·d2·…), row-major (for NHWC
// feature maps the order Keras uses).
func Flatten() ModelFn {
	return func(_ *context.Context, x *Node) *Node {
		return Reshape(x, x.Shape().Dimensions[0], -1)
	}
}

// Activation is keras.layers.Activation(name) (layers.Activation): "", "linear", "relu",
// "sigmoid", "softmax".
func Activation(name string) ModelFn {
	return func(_ *context.Context, x *Node) *Node { return layers.Activation(x, name) }
}

// StopGradientIfFrozen returns StopGradient(x) when no variable under the named layers
// (scopes of ctx's root) is trainable, and x otherwise. Put it at the output of a frozen base
// so that back-propagation provably stops there: a frozen base then costs its forward pass only.
// (The applications package's Model.Apply does this for VGG16 and ResNet50 by itself.)
func StopGradientIfFrozen(ctx *context.Context, x *Node, layers ...string) *Node {
	for v := range ctx.IterVariables() {
		if v.Trainable && !inOptimizerScope(v.Scope()) && matchesAnyLayer(topScope(v.Scope()), layers) {
			return x
		}
	}
	return StopGradient(x)
}

func matchesAnyLayer(layer string, names []string) bool {
	for _, n := range names {
		if n == layer {
			return true
		}
	}
	return false
}

// layerRNG seeds a generator from the context's initial seed and the layer name.
func layerRNG(ctx *context.Context, name string) *rand.Rand {
	seed := context.GetParamOr(ctx, context.ParamInitialSeed, int64(0))
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

func zerosTensor(shape shapes.Shape) *tensors.Tensor {
	return tensors.FromShape(shape)
}
