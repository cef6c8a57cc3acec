package applications

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext/layers"
	"github.com/transfer-learning-go/workbook/weights"
)

// BatchNormMode decides what BatchNormalization does while training (ctx.IsTraining). In
// inference (Predict, evaluation) every mode normalises with the moving statistics.
type BatchNormMode int

const (
	// BatchNormKeras2 is Keras 2.3 (multi-backend) behaviour, the book's: while training,
	// every BatchNormalization layer — frozen or not — normalises with the mini-batch
	// statistics; only trainable layers update their moving statistics
	// (moving = momentum·moving + (1−momentum)·batch, the variance with Bessel-like factor
	// m/(m−(1+ε))).
	BatchNormKeras2 BatchNormMode = iota
	// BatchNormFrozenInference is tf.keras (TF 2) behaviour: frozen BatchNormalization layers
	// run in inference mode while training; trainable ones behave as in BatchNormKeras2.
	BatchNormFrozenInference
	// BatchNormInference always normalises with the moving statistics.
	BatchNormInference
)

// Builder configures and builds a VGG16 or ResNet50 graph on an NHWC float32 input, in the
// style of GoMLX's examples/inceptionv3: create it with VGG16Graph or ResNet50Graph, chain
// options, then call Done. Its variables live in ctx.In(<Keras layer name>) under Keras'
// weight names ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance");
// variables already in the context (loaded with LoadWeights, or from an earlier call) are
// reused, missing ones are created with Keras' initializers.
type Builder struct {
	ctx          *context.Context
	x            *Node
	model        string
	includeTop   bool
	pooling      string
	arch         *Architecture
	trainable    *bool
	trainFrom    string
	until        string
	from         string
	stopGradient bool
	bnMode       BatchNormMode
	seed         int64
	aliases      bool
	checkpoint   *weights.Checkpoint
}

// VGG16Graph starts building keras.applications.VGG16 on x (batch, H, W, 3), which must be
// preprocessed as preprocess_input does (caffe mode: BGR, mean-subtracted). Defaults are
// Keras': include_top=True, no pooling, every layer trainable.
func VGG16Graph(ctx *context.Context, x *Node) *Builder {
	return &Builder{ctx: ctx, x: x, model: "vgg16", includeTop: true}
}

// ResNet50Graph starts building keras.applications.ResNet50 (Keras 2.3) on x; see VGG16Graph.
func ResNet50Graph(ctx *context.Context, x *Node) *Builder {
	return &Builder{ctx: ctx, x: x, model: "resnet50", includeTop: true}
}

// ArchitectureGraph builds the given layer table as is (its include_top, pooling and trainable
// flags), e.g. a Model's architecture inside a larger training graph.
func ArchitectureGraph(ctx *context.Context, x *Node, arch *Architecture) *Builder {
	return &Builder{ctx: ctx, x: x, model: arch.Name, arch: arch, includeTop: arch.IncludeTop, pooling: arch.Pooling}
}

// IncludeTop selects whether the classifier layers are included (Keras include_top). With
// them the input must be 224×224.
func (b *Builder) IncludeTop(includeTop bool) *Builder {
	b.includeTop = includeTop
	return b
}

// Pooling is Keras' pooling argument without the top: "" (4-D feature map), "avg" or "max".
func (b *Builder) Pooling(pooling string) *Builder {
	b.pooling = pooling
	return b
}

// Trainable sets layer.trainable on every layer. Frozen layers' variables are marked
// non-trainable, so GoMLX optimizers leave them alone.
func (b *Builder) Trainable(trainable bool) *Builder {
	b.trainable = &trainable
	return b
}

// TrainableFrom freezes the layers before the named one and makes it and the layers after it
// trainable: TrainableFrom("block5_conv1") is the usual VGG16 fine-tuning setup.
func (b *Builder) TrainableFrom(layer string) *Builder {
	b.trainFrom = layer
	return b
}

// Until ends the model at the named layer, e.g. Until("fc2") is VGG16 without its
// "predictions" layer.
func (b *Builder) Until(layer string) *Builder {
	b.until = layer
	return b
}

// From makes x the output of the named layer rather than the model's input: the graph computes
// the layers after it only (x has that layer's output shape). Fine-tuning uses it to train the
// top of a network on the features another engine computed for its frozen bottom.
func (b *Builder) From(layer string) *Builder {
	b.from = layer
	return b
}

// StopGradientAtFrozen inserts StopGradient where the output of a frozen part of the network
// (layers with no trainable weight at or below them) enters a trainable layer, and on the
// output when the whole model is frozen. GoMLX already back-propagates only along paths to
// trainable variables; this makes the cut explicit, so a frozen base is guaranteed to cost
// forward passes only — and no gradient ops the backend may lack are ever built for it.
// Leave it off to take gradients with respect to the input image (e.g. saliency maps).
func (b *Builder) StopGradientAtFrozen(stop bool) *Builder {
	b.stopGradient = stop
	return b
}

// BatchNormMode selects the training-time BatchNormalization behaviour (ResNet50 only).
// The default is BatchNormKeras2.
func (b *Builder) BatchNormMode(mode BatchNormMode) *Builder {
	b.bnMode = mode
	return b
}

// Weights loads the layers' variables that are not yet in the context from the checkpoint
// when Done runs (see LoadWeights); variables already there — loaded earlier or being
// trained — are kept. Errors (a wrong file, a wrong shape) panic, as graph building does.
func (b *Builder) Weights(cp *weights.Checkpoint) *Builder {
	b.checkpoint = cp
	return b
}

// Seed fixes the random initialisation of variables that are created (not loaded). Without
// it the context's initializers.ParamInitialSeed is used, or the clock when that is 0.
func (b *Builder) Seed(seed int64) *Builder {
	b.seed = seed
	return b
}

// WithAliases names each layer's output node after the Keras layer (see Node.WithAlias),
// under the alias scope of the model name, e.g. "/vgg16/block5_pool".
func (b *Builder) WithAliases(aliases bool) *Builder {
	b.aliases = aliases
	return b
}

// Architecture returns the layer table Done builds — with the input's spatial size — or
// panics on invalid options (graph-building style).
func (b *Builder) Architecture() *Architecture {
	arch := b.arch
	if arch == nil {
		if b.x.Rank() != 4 {
			panicf("applications: %s input must be (batch, height, width, 3), got %s", b.model, b.x.Shape())
		}
		var err error
		arch, err = ArchitectureByName(b.model, b.includeTop, b.pooling, b.x.Shape().Dimensions[1:])
		if err != nil {
			panic(err)
		}
	} else {
		arch = arch.Clone()
	}
	if b.until != "" {
		if err := arch.Until(b.until); err != nil {
			panic(err)
		}
	}
	if b.trainable != nil {
		_ = arch.SetTrainable(*b.trainable)
	}
	if b.trainFrom != "" {
		if err := arch.SetTrainableFrom(b.trainFrom); err != nil {
			panic(err)
		}
	}
	return arch
}

// Done builds the graph and returns the model output: softmax probabilities with the top,
// otherwise the feature map (or pooled features), or the output of the Until layer.
func (b *Builder) Done() *Node {
	arch := b.Architecture()
	x := b.x
	g := x.Graph()
	dt := x.DType()
	if dt != dtypes.Float32 && dt != dtypes.Float64 {
		panicf("applications: %s input must be float32 (or float64), got %s", arch.Name, dt)
	}
	start := 0 // the index of the layer whose output x is
	if b.from != "" {
		if start = arch.index(b.from); start < 0 {
			panicf("applications: %s has no layer %q to start from", arch.Name, b.from)
		}
		want := arch.Layers[start].OutputShape
		dims := x.Shape().Dimensions
		ok := x.Rank() == len(want)+1
		for i := 0; ok && i < len(want); i++ {
			ok = want[i] == None || dims[i+1] == want[i]
		}
		if !ok {
			panicf("applications: %s from %s expects input (batch, %v), got %s", arch.Name, b.from, want, x.Shape())
		}
	} else if in, dims := arch.InputShape(), x.Shape().Dimensions; x.Rank() != 4 || dims[3] != 3 ||
		(in[0] != None && dims[1] != in[0]) || (in[1] != None && dims[2] != in[1]) {
		panicf("applications: %s expects input (batch, %s, %s, 3), got %s", arch.Name,
			dimString(in[0]), dimString(in[1]), x.Shape())
	}
	if b.aliases {
		g.PushAliasScope(arch.Name)
		defer g.PopAliasScope()
	}
	if b.checkpoint != nil {
		if err := loadWeights(b.ctx, arch, b.checkpoint, true, dt, nil); err != nil {
			panic(err)
		}
	}
	if err := ensureVariables(b.ctx, arch, b.seedOrDefault(), dt); err != nil {
		panic(err)
	}

	outputs := map[string]*Node{}
	trainableUp := map[string]bool{}
	training := b.ctx.IsTraining(g)
	for i, l := range arch.Layers {
		if i < start {
			continue
		}
		if i == start && b.from != "" {
			outputs[l.Name] = x // computed elsewhere: no gradient flows into it
			continue
		}
		ins := make([]*Node, len(l.Inbound))
		up := l.TrainableParams() > 0
		for i, name := range l.Inbound {
			ins[i] = outputs[name]
			up = up || trainableUp[name]
		}
		if b.stopGradient && up {
			for i, name := range l.Inbound {
				if !trainableUp[name] {
					ins[i] = StopGradient(ins[i])
				}
			}
		}
		trainableUp[l.Name] = up
		var y *Node
		if l.Op == OpInput {
			y = x
		} else {
			y = b.layerGraph(l, ins, training)
		}
		if b.aliases {
			y = y.WithAlias(l.Name)
		}
		outputs[l.Name] = y
	}
	out := arch.Output()
	y := outputs[out.Name]
	if b.stopGradient && !trainableUp[out.Name] {
		y = StopGradient(y)
	}
	return y
}

func (b *Builder) seedOrDefault() int64 {
	if b.seed != 0 {
		return b.seed
	}
	if s := context.GetParamOr(b.ctx, context.ParamInitialSeed, int64(0)); s != 0 {
		return s
	}
	return time.Now().UnixNano()
}

// variable returns the graph value of the layer's weight.
func layerVar(ctx *context.Context, g *Graph, l *Layer, key string) *Node {
	v := ctx.In(l.Name).GetVariableByScopeAndName(ctx.In(l.Name).Scope(), key)
	if v == nil {
		panicf("applications: variable %s/%s missing", l.Name, key)
	}
	return v.ValueGraph(g)
}

func (b *Builder) layerGraph(l *Layer, ins []*Node, training bool) *Node {
	x := ins[0]
	g := x.Graph()
	c := l.Config
	switch l.Op {
	case OpConv2D:
		pad := layers.Valid
		if c.Padding == "same" {
			pad = layers.Same
		}
		y := layers.Conv2D(x, layerVar(b.ctx, g, l, "kernel"), layerVar(b.ctx, g, l, "bias"), c.Strides, pad)
		return activation(y, c.Activation)
	case OpDense:
		y := layers.Dense(x, layerVar(b.ctx, g, l, "kernel"), layerVar(b.ctx, g, l, "bias"))
		return activation(y, c.Activation)
	case OpBatchNorm:
		return b.batchNorm(l, x, training)
	case OpActivation:
		return activation(x, c.Activation)
	case OpAdd:
		return Add(ins[0], ins[1])
	case OpZeroPad:
		return layers.ZeroPad2D(x, c.Pad)
	case OpMaxPool:
		return layers.MaxPool2D(x, c.PoolSize, c.Strides)
	case OpFlatten:
		return layers.Flatten(x)
	case OpGlobalAvgPool:
		return layers.GlobalAveragePool2D(x)
	case OpGlobalMaxPool:
		return layers.GlobalMaxPool2D(x)
	}
	panicf("applications: layer %s: unknown op %d", l.Name, l.Op)
	return nil
}

func (b *Builder) batchNorm(l *Layer, x *Node, training bool) *Node {
	g := x.Graph()
	gamma := layerVar(b.ctx, g, l, "gamma")
	beta := layerVar(b.ctx, g, l, "beta")
	batchStats := training && (b.bnMode == BatchNormKeras2 || (b.bnMode == BatchNormFrozenInference && l.Trainable))
	if !batchStats {
		return layers.BatchNormInference(x, gamma, beta, layerVar(b.ctx, g, l, "moving_mean"),
			layerVar(b.ctx, g, l, "moving_variance"), l.Config.Epsilon)
	}
	axes := make([]int, x.Rank()-1)
	m := 1
	for i := range axes {
		axes[i] = i
		m *= x.Shape().Dimensions[i]
	}
	mean := ReduceMean(x, axes...)
	variance := ReduceMean(Square(Sub(x, ExpandLeftToRank(mean, x.Rank()))), axes...)
	y := layers.BatchNormInference(x, gamma, beta, mean, variance, l.Config.Epsilon)
	if l.Trainable {
		// Keras' moving_average_update, with the sample variance made unbiased the way Keras
		// 2.3 does it (m/(m−(1+ε))).
		mom := l.Config.Momentum
		unbiased := MulScalar(variance, float64(m)/(float64(m)-(1+l.Config.Epsilon)))
		for _, u := range []struct {
			key   string
			value *Node
		}{{"moving_mean", mean}, {"moving_variance", unbiased}} {
			sc := b.ctx.In(l.Name)
			v := sc.GetVariableByScopeAndName(sc.Scope(), u.key)
			old := v.ValueGraph(g)
			v.SetValueGraph(Add(MulScalar(old, mom), MulScalar(StopGradient(u.value), 1-mom)))
		}
	}
	return y
}

func activation(x *Node, name string) *Node { return layers.Activation(x, name) }

// ensureVariables creates the missing variables of arch in ctx with Keras' initial values,
// checks the shapes of existing ones, and marks each variable trainable as its layer and
// weight say.
func ensureVariables(ctx *context.Context, arch *Architecture, seed int64, dt dtypes.DType) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	for _, l := range arch.Layers {
		sc := ctx.In(l.Name).Checked(false)
		for _, w := range l.Weights {
			v := sc.GetVariableByScopeAndName(sc.Scope(), w.Key)
			if v == nil {
				v = sc.VariableWithValue(w.Key, tensorOf(initialValue(l, w, rng), w.Shape, dt))
			} else if want := shapes.Make(dt, w.Shape...); !v.Shape().Equal(want) {
				return variableError(arch.Name, l.Name, w.Key, want, v.Shape())
			}
			v.SetTrainable(l.Trainable && w.Updatable)
		}
	}
	return nil
}

// tensorOf makes a tensor of dtype dt (float32 or float64) from float32 values.
func tensorOf(data []float32, shape []int, dt dtypes.DType) *tensors.Tensor {
	if dt == dtypes.Float64 {
		d := make([]float64, len(data))
		for i, v := range data {
			d[i] = float64(v)
		}
		return tensors.FromFlatDataAndDimensions(d, shape...)
	}
	return tensors.FromFlatDataAndDimensions(data, shape...)
}

func dimString(d int) string {
	if d == None {
		return "None"
	}
	return strconv.Itoa(d)
}
