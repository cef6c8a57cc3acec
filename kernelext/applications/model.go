package applications

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// Warnings receives the warnings Keras would print (NaN or Inf values in a weights file or
// in the input to Predict). Set it to io.Discard to silence them.
var Warnings io.Writer = os.Stderr

func warnf(format string, args ...any) {
	fmt.Fprintf(Warnings, "applications: warning: "+format+"\n", args...)
}

// PredictBatchSize is the batch size Predict splits its input into — Keras' predict default
// (32) — so memory stays bounded for any number of images.
const PredictBatchSize = 32

// Option configures VGG16 and ResNet50, mirroring the Keras constructor arguments.
type Option func(*options)

type options struct {
	weights    string
	includeTop bool
	pooling    string
	inputShape []int
	backend    backends.Backend
	ctx        *context.Context
	seed       int64
	until      string
	bnMode     BatchNormMode
	dtype      dtypes.DType
	noEngine   bool
}

// WithWeights is Keras' weights argument: "imagenet" (the default, as in Keras) fetches the
// official Keras file into Keras' cache, a path loads that .h5 file (a Keras-1 application
// checkpoint or a file saved by Keras 2 model.save / save_weights), and "" keeps Keras'
// random initialisation (weights=None).
func WithWeights(weights string) Option { return func(o *options) { o.weights = weights } }

// IncludeTop is Keras' include_top (default true).
func IncludeTop(includeTop bool) Option { return func(o *options) { o.includeTop = includeTop } }

// Pooling is Keras' pooling argument without the top: "", "avg" or "max".
func Pooling(pooling string) Option { return func(o *options) { o.pooling = pooling } }

// InputShape is Keras' input_shape (height, width; 3 channels). Without it the input is
// 224×224 with the top and open (None, None) without.
func InputShape(height, width int) Option {
	return func(o *options) { o.inputShape = []int{height, width, 3} }
}

// WithBackend runs the model on the given GoMLX backend instead of the default one.
func WithBackend(b backends.Backend) Option { return func(o *options) { o.backend = b } }

// WithContext places the model's variables in ctx (each under its Keras layer name), so a
// training graph can combine the model with new layers in the same context.
func WithContext(ctx *context.Context) Option { return func(o *options) { o.ctx = ctx } }

// WithSeed fixes the random initialisation used with WithWeights("").
func WithSeed(seed int64) Option { return func(o *options) { o.seed = seed } }

// Until ends the model at the named layer, e.g. Until("fc2") for VGG16 without "predictions".
func Until(layer string) Option { return func(o *options) { o.until = layer } }

// WithDType sets the precision the model computes in: dtypes.Float32 (Keras' floatx, the
// default) or dtypes.Float64 (for numerical checks; about twice slower). Predict's input and
// output stay float32 arrays.
func WithDType(dt dtypes.DType) Option { return func(o *options) { o.dtype = dt } }

// WithBatchNormMode sets the training-time BatchNormalization behaviour (see BatchNormMode).
func WithBatchNormMode(mode BatchNormMode) Option { return func(o *options) { o.bnMode = mode } }

// Model is a built keras.applications model: its layer table, its variables in a GoMLX
// context, and a backend to run it on.
type Model struct {
	arch    *Architecture
	ctx     *context.Context
	backend backends.Backend
	weights string
	bnMode  BatchNormMode
	seed    int64
	dtype   dtypes.DType
	// noEngine keeps Predict in GoMLX (WithoutEngine).
	noEngine bool

	mu   sync.Mutex
	exec *context.Exec
	eng  *modelEngine // built by the first Predict that runs on the engine
}

// VGG16 is keras.applications.vgg16.VGG16: with no options, the ImageNet-trained classifier.
func VGG16(opts ...Option) (*Model, error) { return newModel("vgg16", opts) }

// ResNet50 is keras.applications.resnet50.ResNet50 (Keras 2.3): with no options, the
// ImageNet-trained classifier.
func ResNet50(opts ...Option) (*Model, error) { return newModel("resnet50", opts) }

// MustVGG16 is VGG16 for notebook cells: it panics on error.
func MustVGG16(opts ...Option) *Model { return must(VGG16(opts...)) }

// MustResNet50 is ResNet50 for notebook cells: it panics on error.
func MustResNet50(opts ...Option) *Model { return must(ResNet50(opts...)) }

// New builds the model named "vgg16" or "resnet50".
func New(model string, opts ...Option) (*Model, error) { return newModel(model, opts) }

func must(m *Model, err error) *Model {
	if err != nil {
		panic(err)
	}
	return m
}

func newModel(name string, opts []Option) (*Model, error) {
	o := options{weights: "imagenet", includeTop: true, dtype: dtypes.Float32}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dtype != dtypes.Float32 && o.dtype != dtypes.Float64 {
		return nil, fmt.Errorf("applications: %s: dtype must be float32 or float64, got %s", name, o.dtype)
	}
	arch, err := ArchitectureByName(name, o.includeTop, o.pooling, o.inputShape)
	if err != nil {
		return nil, err
	}
	if o.until != "" {
		if err := arch.Until(o.until); err != nil {
			return nil, err
		}
	}
	m := &Model{arch: arch, ctx: o.ctx, backend: o.backend, bnMode: o.bnMode, seed: o.seed, dtype: o.dtype,
		noEngine: o.noEngine}
	if m.ctx == nil {
		m.ctx = context.New()
	}
	if m.backend == nil {
		if m.backend, err = defaultBackend(); err != nil {
			return nil, err
		}
	}
	if o.weights == "" {
		m.weights = "random initialisation (weights=None)"
	} else {
		mem := newIntoTensors(arch, m.dtype)
		cp, source, err := openWeights(o.weights, arch, mem.options()...)
		if err != nil {
			return nil, err
		}
		if err := loadWeights(m.ctx, arch, cp, false, m.dtype, mem); err != nil {
			return nil, err
		}
		m.weights = source
	}
	if m.seed == 0 {
		m.seed = context.GetParamOr(m.ctx, context.ParamInitialSeed, int64(0))
	}
	if m.seed == 0 {
		m.seed = seedFromClock()
	}
	if err := ensureVariables(m.ctx, arch, m.seed, m.dtype); err != nil {
		return nil, err
	}
	return m, nil
}

// Name is the Keras model name ("vgg16" or "resnet50").
func (m *Model) Name() string { return m.arch.Name }

// Architecture returns the model's layer table (shared: edit it through SetTrainable).
func (m *Model) Architecture() *Architecture { return m.arch }

// Layers is Keras' model.layers.
func (m *Model) Layers() []*Layer { return m.arch.Layers }

// Context is the GoMLX context holding the model's variables.
func (m *Model) Context() *context.Context { return m.ctx }

// Backend is the GoMLX backend Predict runs on.
func (m *Model) Backend() backends.Backend { return m.backend }

// WeightsSource says where the weights came from (a file path and how it was obtained, or
// random initialisation).
func (m *Model) WeightsSource() string { return m.weights }

// Summary is Keras' model.summary() text.
func (m *Model) Summary() string { return m.arch.Summary() }

// SetTrainable sets layer.trainable on the named layers (all layers when none is named) and
// marks their variables accordingly. As in Keras, where a change takes effect at the next
// compile(), graphs built before (e.g. a training step) keep the old flags: build them
// again.
func (m *Model) SetTrainable(trainable bool, layers ...string) error {
	if err := m.arch.SetTrainable(trainable, layers...); err != nil {
		return err
	}
	m.applyTrainable()
	return nil
}

// SetTrainableFrom freezes the layers before the named one and unfreezes it and the rest
// (e.g. "block5_conv1"); see SetTrainable.
func (m *Model) SetTrainableFrom(layer string) error {
	if err := m.arch.SetTrainableFrom(layer); err != nil {
		return err
	}
	m.applyTrainable()
	return nil
}

// AddFlatten appends Flatten on top of the model (see Architecture.AddFlatten).
func (m *Model) AddFlatten(name string) (string, error) {
	return m.add(func() (string, error) { return m.arch.AddFlatten(name) })
}

// AddGlobalPooling appends GlobalAveragePooling2D or GlobalMaxPooling2D (see
// Architecture.AddGlobalPooling).
func (m *Model) AddGlobalPooling(name, pooling string) (string, error) {
	return m.add(func() (string, error) { return m.arch.AddGlobalPooling(name, pooling) })
}

// AddDense appends a new, randomly initialised Dense layer on top of the model (see
// Architecture.AddDense), e.g. the Dense(1, activation='sigmoid') of Exercise 8.03:
//
//	m := applications.MustVGG16(applications.Until("fc2"))
//	m.AsSequential("sequential_1")
//	m.SetTrainable(false)
//	m.AddDense("", 1, "sigmoid") // "dense_1", trainable
func (m *Model) AddDense(name string, units int, activation string) (string, error) {
	return m.add(func() (string, error) { return m.arch.AddDense(name, units, activation) })
}

// AsSequential renames the model and gives it keras.Sequential's summary (see
// Architecture.AsSequential).
func (m *Model) AsSequential(name string) { m.arch.AsSequential(name) }

func (m *Model) add(addLayer func() (string, error)) (string, error) {
	name, err := addLayer()
	if err != nil {
		return "", err
	}
	if err := ensureVariables(m.ctx, m.arch, m.seed, m.dtype); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.exec, m.eng = nil, nil // the next Predict builds the new graph
	m.mu.Unlock()
	return name, nil
}

func (m *Model) applyTrainable() {
	for _, l := range m.arch.Layers {
		sc := m.ctx.In(l.Name)
		for _, w := range l.Weights {
			if v := sc.GetVariableByScopeAndName(sc.Scope(), w.Key); v != nil {
				v.SetTrainable(l.Trainable && w.Updatable)
			}
		}
	}
}

// Apply builds the model on x inside another graph function that uses the model's context
// (for instance a training step adding a new head). Frozen parts are cut off from
// back-propagation (Builder.StopGradientAtFrozen).
func (m *Model) Apply(ctx *context.Context, x *Node) *Node {
	if ctx.Scope() != m.ctx.Scope() {
		panicf("applications: %s.Apply: ctx is in scope %q but the model's variables are in %q",
			m.arch.Name, ctx.Scope(), m.ctx.Scope())
	}
	return ArchitectureGraph(ctx, x, m.arch).BatchNormMode(m.bnMode).Seed(m.seed).StopGradientAtFrozen(true).Done()
}

// Predict is Keras' model.predict(x): x is a preprocessed batch (N, H, W, 3) of any N,
// computed in batches of PredictBatchSize; the output has N rows (probabilities (N, 1000)
// with the top). Where EngineRuns says so it runs on the workbook's own CPU engine, else in
// GoMLX (the graph compiled once per input shape and cached).
func (m *Model) Predict(x *kernelext.Array) (*kernelext.Array, error) {
	if err := checkImages(m.arch, x); err != nil {
		return nil, err
	}
	if n := countNonFinite(x.Data); n > 0 {
		warnf("%s.Predict: input contains %d NaN or Inf values; their predictions will be NaN", m.arch.Name, n)
	}
	onEngine, why := m.placement()
	if why != "" {
		noticeOnce("%s: Predict runs on GoMLX's pure-Go backend: %s", m.arch.Name, why)
	}
	var batch func(*kernelext.Array) (*kernelext.Array, error)
	// An empty batch gives no rows of the shape one row would have.
	emptyRow := func() ([]int, error) {
		if out := m.arch.Output().OutputShape; !slices.Contains(out, None) {
			return out, nil
		}
		y, err := batch(kernelext.NewArray(append([]int{1}, x.Shape[1:]...)...))
		if err != nil {
			return nil, err
		}
		return y.Shape[1:], nil
	}
	if onEngine {
		me, err := m.engine()
		if err != nil {
			return nil, err
		}
		h, w := x.Shape[1], x.Shape[2]
		row, err := me.net.OutputShape(h, w)
		if err != nil {
			return nil, fmt.Errorf("applications: %s.Predict: %w", m.arch.Name, err)
		}
		batch = func(b *kernelext.Array) (*kernelext.Array, error) {
			y := kernelext.NewArray(append([]int{b.Shape[0]}, row...)...)
			return y, me.forward(b.Data, b.Shape[0], h, w, y.Data)
		}
	} else {
		exec, err := m.executor()
		if err != nil {
			return nil, err
		}
		batch = func(b *kernelext.Array) (*kernelext.Array, error) { return m.execBatch(exec, b) }
	}
	y, err := PredictInBatches(x, emptyRow, batch)
	if err != nil {
		return nil, fmt.Errorf("applications: %s.Predict: %w", m.arch.Name, err)
	}
	return y, nil
}

// execBatch runs one batch through the compiled GoMLX graph.
func (m *Model) execBatch(exec *context.Exec, b *kernelext.Array) (*kernelext.Array, error) {
	res, err := exec.Exec(tensorOf(b.Data, b.Shape, m.dtype))
	if err != nil {
		return nil, err
	}
	t := res[0]
	defer func() { _ = t.FinalizeAll() }()
	y := kernelext.NewArray(t.Shape().Dimensions...)
	if m.dtype == dtypes.Float64 {
		err = tensors.ConstFlatData(t, func(flat []float64) {
			for i, v := range flat {
				y.Data[i] = float32(v)
			}
		})
	} else {
		err = tensors.ConstFlatData(t, func(flat []float32) { copy(y.Data, flat) })
	}
	return y, err
}

// PredictInBatches is the batching rule of every Predict in the workbook — Keras' predict:
// x's rows in batches of PredictBatchSize, each computed by batch, the outputs concatenated —
// and its empty-batch rule: no rows in, no rows out, with the row shape emptyRow gives. x must
// be a batch (N, …) whose data match its shape.
func PredictInBatches(x *kernelext.Array, emptyRow func() ([]int, error),
	batch func(*kernelext.Array) (*kernelext.Array, error)) (*kernelext.Array, error) {
	if x == nil || len(x.Shape) < 1 {
		return nil, fmt.Errorf("input must be a batch (N, …), got %s", shapeOf(x))
	}
	if len(x.Data) != x.Size() {
		return nil, fmt.Errorf("input has %d values for shape %s", len(x.Data), x.ShapeString())
	}
	n := x.Shape[0]
	if n == 0 {
		row, err := emptyRow()
		if err != nil {
			return nil, err
		}
		return &kernelext.Array{Shape: append([]int{0}, row...), Data: []float32{}}, nil
	}
	per := x.Size() / n
	var out *kernelext.Array
	for start := 0; start < n; start += PredictBatchSize {
		end := min(start+PredictBatchSize, n)
		b := &kernelext.Array{Shape: append([]int{end - start}, x.Shape[1:]...), Data: x.Data[start*per : end*per]}
		y, err := batch(b)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = kernelext.NewArray(append([]int{n}, y.Shape[1:]...)...)
		}
		rowSize := out.Size() / n
		copy(out.Data[start*rowSize:end*rowSize], y.Data)
	}
	return out, nil
}

func shapeOf(a *kernelext.Array) string {
	if a == nil {
		return "nil"
	}
	return a.ShapeString()
}

// checkImages is the input check of Predict (and PredictCached): a batch (N, H, W, 3) of the
// model's input size, its data matching its shape.
func checkImages(arch *Architecture, x *kernelext.Array) error {
	in := arch.InputShape()
	if x == nil || len(x.Shape) != 4 || x.Shape[3] != 3 || (in[0] != None && x.Shape[1] != in[0]) ||
		(in[1] != None && x.Shape[2] != in[1]) {
		return fmt.Errorf("applications: %s.Predict: input must have shape (N, %s, %s, 3), got %s",
			arch.Name, dimString(in[0]), dimString(in[1]), shapeOf(x))
	}
	if len(x.Data) != x.Size() {
		return fmt.Errorf("applications: %s.Predict: input has %d values for shape %s", arch.Name,
			len(x.Data), x.ShapeString())
	}
	return nil
}

// Prefix is the model up to and including the named layer (e.g. VGG16 up to "fc2", the
// features Exercise 8.03 trains its head on), on the same variables, backend and engine
// decision: a view for extracting features, whose Predict sees later changes to the
// variables. Its trainable flags are a copy.
func (m *Model) Prefix(until string) (*Model, error) {
	arch := m.arch.Clone()
	if err := arch.Until(until); err != nil {
		return nil, err
	}
	return &Model{arch: arch, ctx: m.ctx, backend: m.backend, weights: m.weights, bnMode: m.bnMode,
		seed: m.seed, dtype: m.dtype, noEngine: m.noEngine}, nil
}

// MustPredict is Predict for notebook cells: it panics on error.
func (m *Model) MustPredict(x *kernelext.Array) *kernelext.Array {
	y, err := m.Predict(x)
	if err != nil {
		panic(err)
	}
	return y
}

func (m *Model) executor() (*context.Exec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec != nil {
		return m.exec, nil
	}
	arch := m.arch
	exec, err := context.NewExec(m.backend, m.ctx, func(ctx *context.Context, x *Node) *Node {
		return ArchitectureGraph(ctx, x, arch).BatchNormMode(m.bnMode).Seed(m.seed).Done()
	})
	if err != nil {
		return nil, fmt.Errorf("applications: %s: %w", m.arch.Name, err)
	}
	m.exec = exec
	return exec, nil
}

func countNonFinite(data []float32) int {
	n := 0
	for _, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			n++
		}
	}
	return n
}
