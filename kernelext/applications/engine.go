package applications

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/internal/engine"
	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// EngineRuns is the one place the workbook decides where the forward pass of a VGG16 or
// ResNet50 (and the Flatten, pooling and Dense layers added on top) runs: on the workbook's
// own CPU engine (internal/engine: im2col convolutions with BatchNormalization folded in, on
// the AVX2/FMA matrix multiplication of internal/gemm) when
//
//   - the backend is GoMLX's pure-Go one, which multiplies with scalar Go code (about ten
//     times PyTorch's CPU time for these networks); XLA backends compile their own fast code
//     and keep GoMLX;
//   - the CPU has AVX2 and FMA (gemm.Accelerated): the engine's portable kernel is no faster
//     than GoMLX's;
//   - the model computes in float32 (Keras' floatx): the engine is float32 only, so
//     WithDType(dtypes.Float64), the numerical-check mode, stays on GoMLX.
//
// Model.Predict follows it for every layer — frozen or trainable: inference computes both the
// same way, and the engine re-reads a layer's weights whenever its variable holds a new value
// (after a training step, SetValue or a checkpoint load). Training graphs (Model.Apply) stay
// in GoMLX, which computes the gradients; a fine-tuning command may still run the frozen
// base's forward pass on the engine (see Model.Prefix) where this says so.
func EngineRuns(b backends.Backend, dt dtypes.DType) bool {
	ok, _ := engineDecision(b, dt)
	return ok
}

// engineDecision is EngineRuns with the reason a pure-Go model stays on GoMLX ("" on XLA,
// which is not a fallback).
func engineDecision(b backends.Backend, dt dtypes.DType) (bool, string) {
	return enginePlan(backend.IsPureGo(b), dt)
}

// enginePlan is engineDecision before the backend exists (PredictCached's key).
func enginePlan(pureGo bool, dt dtypes.DType) (bool, string) {
	switch {
	case !pureGo:
		return false, ""
	case !gemm.Accelerated():
		return false, "this CPU lacks the AVX2/FMA instructions the workbook's engine needs"
	case dt != dtypes.Float32:
		return false, fmt.Sprintf("the workbook's engine computes in float32, the model in %s", dt)
	}
	return true, ""
}

// WithoutEngine keeps every forward pass of the model in GoMLX, even where EngineRuns says
// the workbook's engine would run it: for comparing the two.
func WithoutEngine() Option { return func(o *options) { o.noEngine = true } }

// OnEngine reports whether Predict runs on the workbook's engine (see EngineRuns).
func (m *Model) OnEngine() bool {
	ok, _ := m.placement()
	return ok
}

func (m *Model) placement() (bool, string) {
	if m.noEngine {
		return false, ""
	}
	return engineDecision(m.backend, m.dtype)
}

// notices holds the placement lines already printed: each is said once per process, not once
// per model (a notebook builds its model again in every cell).
var notices sync.Map

func noticeOnce(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if _, done := notices.LoadOrStore(msg, true); !done {
		fmt.Fprintln(Warnings, "applications: "+msg)
	}
}

// modelEngine is a Model's engine and what it last read of the model's variables.
type modelEngine struct {
	net    *engine.Net
	layers []*Layer            // engine table index → layer
	seen   [][]*tensors.Tensor // engine table index → the variable values it was built from
	ctx    *context.Context
	mu     sync.Mutex // serialises refresh + forward
}

// newModelEngine turns the layer table into the engine's, reading weights from ctx.
func newModelEngine(arch *Architecture, ctx *context.Context) (*modelEngine, error) {
	me := &modelEngine{ctx: ctx}
	table, layers, err := engineTable(arch, arch.Layers, map[string]int{})
	if err != nil {
		return nil, err
	}
	me.layers = layers
	me.seen = make([][]*tensors.Tensor, len(table))
	net, err := engine.New(table, me.read)
	if err != nil {
		return nil, fmt.Errorf("applications: %s: %w", arch.Name, err)
	}
	me.net = net
	return me, nil
}

// TopTable is the engine's layer table of the model's layers after layer from, the first of
// them reading from's output (engine.Input), with those layers in the same order and from's
// output shape per image: the trainable top of a fine-tuned model, for engine.NewTrainer.
func (m *Model) TopTable(from string) (table []engine.Layer, layers []*Layer, in []int, err error) {
	i := m.arch.index(from)
	if i < 0 {
		return nil, nil, nil, fmt.Errorf("applications: %s has no layer %q", m.arch.Name, from)
	}
	table, layers, err = engineTable(m.arch, m.arch.Layers[i+1:], map[string]int{from: engine.Input})
	return table, layers, m.arch.Layers[i].OutputShape, err
}

// engineTable turns ls into the engine's table form; index maps the names of the layers
// already placed (e.g. the input) to their engine index and receives the new ones.
func engineTable(arch *Architecture, ls []*Layer, index map[string]int) ([]engine.Layer, []*Layer, error) {
	var table []engine.Layer
	var layers []*Layer
	for _, l := range ls {
		if l.Op == OpInput {
			index[l.Name] = engine.Input
			continue
		}
		el := engine.Layer{Name: l.Name, Activation: l.Config.Activation}
		for _, in := range l.Inbound {
			i, ok := index[in]
			if !ok {
				return nil, nil, fmt.Errorf("applications: %s: layer %q reads unknown layer %q", arch.Name, l.Name, in)
			}
			el.Inputs = append(el.Inputs, i)
		}
		c := l.Config
		switch l.Op {
		case OpConv2D:
			w := l.Weight("kernel").Shape
			el.Op, el.Kernel, el.Stride, el.Same, el.In, el.Out = engine.Conv, c.KernelSize, c.Strides, c.Padding == "same", w[2], w[3]
		case OpBatchNorm:
			el.Op, el.Epsilon = engine.BatchNorm, c.Epsilon
			el.In = l.Weight("gamma").Shape[0]
			el.Out = el.In
		case OpActivation:
			el.Op = engine.Activation
		case OpAdd:
			el.Op = engine.Add
		case OpZeroPad:
			el.Op, el.Pad = engine.ZeroPad, c.Pad
		case OpMaxPool:
			el.Op, el.Kernel, el.Stride = engine.MaxPool, c.PoolSize, c.Strides
		case OpFlatten:
			el.Op = engine.Flatten
		case OpGlobalAvgPool:
			el.Op = engine.GlobalAvgPool
		case OpGlobalMaxPool:
			el.Op = engine.GlobalMaxPool
		case OpDense:
			w := l.Weight("kernel").Shape
			el.Op, el.In, el.Out = engine.Dense, w[0], w[1]
		default:
			return nil, nil, fmt.Errorf("applications: %s: layer %q (%s) has no engine form", arch.Name, l.Name, l.Class)
		}
		index[l.Name] = len(table)
		table = append(table, el)
		layers = append(layers, l)
	}
	return table, layers, nil
}

// values returns the current value of each of layer l's variables.
func (me *modelEngine) values(l *Layer) ([]*tensors.Tensor, error) {
	sc := me.ctx.In(l.Name)
	ts := make([]*tensors.Tensor, len(l.Weights))
	for i, w := range l.Weights {
		v := sc.GetVariableByScopeAndName(sc.Scope(), w.Key)
		if v == nil {
			return nil, fmt.Errorf("applications: the model has no variable %s/%s", l.Name, w.Key)
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("applications: variable %s/%s: %w", l.Name, w.Key, err)
		}
		if t.DType() != dtypes.Float32 {
			return nil, fmt.Errorf("applications: variable %s/%s is %s, the engine needs float32", l.Name, w.Key, t.DType())
		}
		ts[i] = t
	}
	return ts, nil
}

// read is the engine's Source: layer i's variables, viewed as float32 slices. The engine keeps
// a Dense kernel's slice after the call: it is the local storage of a tensor held in me.seen,
// which GoMLX never writes — an update gives the variable a new tensor, refresh sees it and
// marks the layer stale before the next forward pass reads anything.
func (me *modelEngine) read(i int, use func(engine.Weights)) error {
	l := me.layers[i]
	ts, err := me.values(l)
	if err != nil {
		return err
	}
	me.seen[i] = ts
	return withFlat(ts, nil, func(vals [][]float32) {
		var w engine.Weights
		for j, wt := range l.Weights {
			switch wt.Key {
			case "kernel":
				w.Kernel = vals[j]
			case "bias":
				w.Bias = vals[j]
			case "gamma":
				w.Gamma = vals[j]
			case "beta":
				w.Beta = vals[j]
			case "moving_mean":
				w.Mean = vals[j]
			case "moving_variance":
				w.Variance = vals[j]
			}
		}
		use(w)
	})
}

// withFlat calls use with the flat float32 data of every tensor of ts (nested, as
// tensors.ConstFlatData lends the data only inside its callback).
func withFlat(ts []*tensors.Tensor, vals [][]float32, use func([][]float32)) error {
	if len(vals) == len(ts) {
		use(vals)
		return nil
	}
	var inner error
	err := tensors.ConstFlatData(ts[len(vals)], func(v []float32) { inner = withFlat(ts, append(vals, v), use) })
	return errors.Join(err, inner)
}

// refresh marks stale the layers whose variables hold another value than the one the engine
// was built from: GoMLX gives a variable a new tensor on every update.
func (me *modelEngine) refresh() error {
	for i, l := range me.layers {
		if len(l.Weights) == 0 || me.seen[i] == nil {
			continue
		}
		ts, err := me.values(l)
		if err != nil {
			return err
		}
		for j, t := range ts {
			if t != me.seen[i][j] {
				me.net.Stale(i)
				break
			}
		}
	}
	return nil
}

// forward runs count images through the engine into out.
func (me *modelEngine) forward(x []float32, count, h, w int, out []float32) error {
	me.mu.Lock()
	defer me.mu.Unlock()
	if err := me.refresh(); err != nil {
		return err
	}
	return me.net.Forward(x, count, h, w, out)
}

// engine returns the model's engine, building it on first use, and prints once where the
// model's layers run.
func (m *Model) engine() (*modelEngine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.eng != nil {
		return m.eng, nil
	}
	me, err := newModelEngine(m.arch, m.ctx)
	if err != nil {
		return nil, err
	}
	noticeOnce("%s: all %d layers run on the workbook's own %s engine (internal/engine) instead of GoMLX's pure-Go backend; training steps stay in GoMLX",
		m.arch.Name, len(m.arch.Layers), gemm.KernelName())
	m.eng = me
	return me, nil
}

// FrozenBase names the last layer of the model's frozen base: the longest run of layers from
// the input that hold no trainable weight and that the rest of the model reads through that
// layer's output alone (a residual block is never cut between its branches). It is "" when
// the first layer with weights is trainable. A training step needs the forward pass of the
// frozen base only: where EngineRuns says so, a fine-tuning loop computes it with
// m.Prefix(FrozenBase()) on the engine and trains the rest in GoMLX on its output (cmd/workbook
// finetune does this for VGG16).
func (m *Model) FrozenBase() string {
	ls := m.arch.Layers
	frozen := 0 // layers [0, frozen) hold no trainable weight
	for frozen < len(ls) && ls[frozen].TrainableParams() == 0 {
		frozen++
	}
	// The latest cut inside the frozen run that later layers cross only through its output.
	for k := min(frozen, len(ls)) - 1; k > 0; k-- {
		crossed := false
		for _, l := range ls[k+1:] {
			for _, in := range l.Inbound {
				if i := m.arch.index(in); i < k {
					crossed = true
				}
			}
		}
		if !crossed {
			return ls[k].Name
		}
	}
	return ""
}
