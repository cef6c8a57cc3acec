package training

import (
	"errors"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// PredictBatchSize is the batch size Predict splits its input into, Keras' predict default.
const PredictBatchSize = applications.PredictBatchSize

// Model is a Keras-style trainable model: a ModelFn, the GoMLX context holding its variables,
// and the backend it runs on; Compile attaches an optimizer, a loss and metrics, as Keras'
// compile() does. Several Models may share one context — e.g. a head trained on cached
// features and the full base + head model that predicts on images — since variables are found
// by name.
//
// A Model is not safe for concurrent use.
type Model struct {
	// Name is the Keras model name, recorded in checkpoints (e.g. "sequential_1").
	Name string

	ctx     *context.Context
	backend backends.Backend
	fn      ModelFn

	opt      Optimizer
	loss     Loss
	metrics  []Metric
	compiled bool
	// restoredOpt describes the optimizer whose state Load restored before the model was
	// compiled; Compile keeps that state only if it gets the same optimizer.
	restoredOpt string

	trainExec, evalExec, predictExec *context.Exec
	// app, when set, is the applications.Model whose Apply fn is: Predict goes through it, so
	// a fine-tuned VGG16 or ResNet50 predicts on the workbook's engine like the pretrained one.
	app *applications.Model
	// steps, when set, computes TrainOnBatch and TestOnBatch instead of GoMLX (see
	// engine_top.go); Compile clears it, as it was made for the previous compile's loss and
	// optimizer.
	steps stepper
}

// NewModel wraps fn. A nil backend means backend.New() (the workbook's backend choice), a
// nil ctx a new context.
func NewModel(b backends.Backend, ctx *context.Context, name string, fn ModelFn) (*Model, error) {
	if fn == nil {
		return nil, errors.New("training: NewModel: nil model function")
	}
	if b == nil {
		var err error
		if b, err = backend.New(); err != nil {
			return nil, err
		}
	}
	if ctx == nil {
		ctx = context.New()
	}
	return &Model{Name: name, ctx: ctx, backend: b, fn: fn}, nil
}

// NewApplicationModel is NewModel for a whole VGG16 or ResNet50 with whatever head was added
// to it: app.Apply on app's variables, named app.Name(). Its Predict is app.Predict, which
// runs on the workbook's engine where the backend is the pure-Go one (a fine-tuned VGG16
// predicts in a fraction of a second there instead of several seconds in GoMLX).
func NewApplicationModel(b backends.Backend, app *applications.Model) (*Model, error) {
	m, err := NewModel(b, app.Context(), app.Name(), app.Apply)
	if err != nil {
		return nil, err
	}
	m.app = app
	return m, nil
}

// MustNewApplicationModel is NewApplicationModel for notebook cells: it panics on error.
func MustNewApplicationModel(b backends.Backend, app *applications.Model) *Model {
	m, err := NewApplicationModel(b, app)
	if err != nil {
		panic(err)
	}
	return m
}

// MustNewModel is NewModel for notebook cells: it panics on error.
func MustNewModel(b backends.Backend, ctx *context.Context, name string, fn ModelFn) *Model {
	m, err := NewModel(b, ctx, name, fn)
	if err != nil {
		panic(err)
	}
	return m
}

// Context is the GoMLX context holding the model's variables (and the optimizer state, under
// OptimizerScope).
func (m *Model) Context() *context.Context { return m.ctx }

// Backend is the GoMLX backend the model runs on.
func (m *Model) Backend() backends.Backend { return m.backend }

// Optimizer returns the optimizer given to Compile (nil before).
func (m *Model) Optimizer() Optimizer { return m.opt }

// MetricNames are the names Fit logs, in order: "loss" then the metrics' names — Keras'
// model.metrics_names.
func (m *Model) MetricNames() []string {
	names := []string{"loss"}
	for _, mt := range m.metrics {
		names = append(names, mt.Name)
	}
	return names
}

// Compile is Keras' compile(optimizer, loss, metrics): it sets what training uses and — like
// compile() — takes a snapshot of which variables are trainable (freeze or unfreeze first, then
// compile). A new optimizer starts fresh: its state (moments, step count) is cleared, as a
// newly created Keras optimizer has none — unless Load restored state saved with an optimizer
// of the same description since the last Compile (resuming training).
func (m *Model) Compile(opt Optimizer, loss Loss, metrics ...Metric) error {
	if opt == nil || loss.PerSample == nil {
		return errors.New("training: Compile needs an optimizer and a loss")
	}
	for _, mt := range metrics {
		if mt.PerSample == nil || mt.Name == "" || mt.Name == "loss" {
			return fmt.Errorf("training: Compile: invalid metric %q", mt.Name)
		}
	}
	if m.restoredOpt == "" || m.restoredOpt != opt.String() {
		if err := ClearOptimizerState(m.ctx); err != nil {
			return err
		}
	}
	m.restoredOpt = ""
	m.opt, m.loss, m.metrics = opt, loss, append([]Metric(nil), metrics...)
	m.compiled = true
	m.steps = nil
	m.resetExecs()
	return nil
}

// MustCompile is Compile for notebook cells: it panics on error.
func (m *Model) MustCompile(opt Optimizer, loss Loss, metrics ...Metric) {
	if err := m.Compile(opt, loss, metrics...); err != nil {
		panic(err)
	}
}

func (m *Model) resetExecs() {
	for _, e := range []*context.Exec{m.trainExec, m.evalExec, m.predictExec} {
		if e != nil {
			e.Finalize()
		}
	}
	m.trainExec, m.evalExec, m.predictExec = nil, nil, nil
}

// StepResult is what one training or test step computed on one batch.
type StepResult struct {
	Size int     // samples in the batch
	Loss float32 // the batch's mean loss (before the update, for a training step)
	// MetricSums holds, per compiled metric, the sum of its per-sample values over the batch.
	MetricSums []float32
}

// TrainOnBatch runs one training step on a batch: forward pass in training mode, loss, metric
// sums, and the optimizer update of every trainable variable. x is (batch, …) float32, y the
// (batch,) labels.
func (m *Model) TrainOnBatch(x, y *kernelext.Array) (StepResult, error) {
	if !m.compiled {
		return StepResult{}, errors.New("training: the model must be compiled before training (call Compile)")
	}
	if m.steps != nil {
		return m.steps.trainStep(x, y)
	}
	if m.trainExec == nil {
		e, err := context.NewExec(m.backend, m.ctx, func(ctx *context.Context, x, y *Node) []*Node {
			ctx.SetTraining(x.Graph(), true)
			outs, loss := m.lossAndMetricsGraph(ctx, x, y)
			m.opt.UpdateGraph(ctx, x.Graph(), loss)
			return outs
		})
		if err != nil {
			return StepResult{}, fmt.Errorf("training: %w", err)
		}
		m.trainExec = e
	}
	return m.step(m.trainExec, x, y)
}

// TestOnBatch computes loss and metric sums on a batch in inference mode, changing nothing.
func (m *Model) TestOnBatch(x, y *kernelext.Array) (StepResult, error) {
	if !m.compiled {
		return StepResult{}, errors.New("training: the model must be compiled before evaluation (call Compile)")
	}
	if m.steps != nil {
		return m.steps.testStep(x, y)
	}
	if m.evalExec == nil {
		e, err := context.NewExec(m.backend, m.ctx, func(ctx *context.Context, x, y *Node) []*Node {
			ctx.SetTraining(x.Graph(), false)
			outs, _ := m.lossAndMetricsGraph(ctx, x, y)
			return outs
		})
		if err != nil {
			return StepResult{}, fmt.Errorf("training: %w", err)
		}
		m.evalExec = e
	}
	return m.step(m.evalExec, x, y)
}

func (m *Model) lossAndMetricsGraph(ctx *context.Context, x, y *Node) (outs []*Node, loss *Node) {
	pred := m.fn(ctx, x)
	loss = ReduceAllMean(m.loss.PerSample(y, pred))
	outs = []*Node{loss}
	for _, mt := range m.metrics {
		outs = append(outs, ReduceAllSum(mt.PerSample(y, pred)))
	}
	return outs, loss
}

func (m *Model) step(e *context.Exec, x, y *kernelext.Array) (StepResult, error) {
	xt, err := toTensor(x)
	if err != nil {
		return StepResult{}, err
	}
	b := x.Shape[0]
	if y == nil || y.Size() != b || len(y.Data) != b {
		return StepResult{}, fmt.Errorf("training: a batch of %d inputs needs %d labels, got %v", b, b, shapeOf(y))
	}
	if b == 0 {
		return StepResult{}, errors.New("training: empty batch")
	}
	yt := tensors.FromFlatDataAndDimensions(y.Data, b)
	defer finalizeAll([]*tensors.Tensor{xt, yt}) // a VGG16 batch is 19 MB: free it now, not at GC
	outs, err := e.Exec(xt, yt)
	if err != nil {
		return StepResult{}, fmt.Errorf("training: %w", err)
	}
	defer finalizeAll(outs)
	r := StepResult{Size: b, Loss: tensors.ToScalar[float32](outs[0])}
	for _, o := range outs[1:] {
		r.MetricSums = append(r.MetricSums, tensors.ToScalar[float32](o))
	}
	return r, nil
}

// Predict is Keras' model.predict(x): the model output for every row of x, computed in
// inference mode with applications.PredictInBatches' batching and empty-batch rules (for a
// VGG16 or ResNet50, applications.Model.Predict is the same rules on the workbook's engine).
func (m *Model) Predict(x *kernelext.Array) (*kernelext.Array, error) {
	if m.app != nil {
		y, err := m.app.Predict(x)
		if err != nil {
			return nil, fmt.Errorf("training: predict: %w", err)
		}
		return y, nil
	}
	run := func(b *kernelext.Array) (*kernelext.Array, error) {
		if m.predictExec == nil {
			e, err := context.NewExec(m.backend, m.ctx, func(ctx *context.Context, x *Node) *Node {
				ctx.SetTraining(x.Graph(), false)
				return m.fn(ctx, x)
			})
			if err != nil {
				return nil, err
			}
			m.predictExec = e
		}
		t := tensors.FromFlatDataAndDimensions(b.Data, b.Shape...)
		res, err := m.predictExec.Exec(t)
		_ = t.FinalizeAll()
		if err != nil {
			return nil, err
		}
		defer finalizeAll(res)
		y := kernelext.NewArray(res[0].Shape().Dimensions...)
		return y, tensors.ConstFlatData(res[0], func(flat []float32) { copy(y.Data, flat) })
	}
	// An empty batch's row shape is the output shape of one row.
	emptyRow := func() ([]int, error) {
		y, err := run(kernelext.NewArray(append([]int{1}, x.Shape[1:]...)...))
		if err != nil {
			return nil, err
		}
		return y.Shape[1:], nil
	}
	y, err := applications.PredictInBatches(x, emptyRow, run)
	if err != nil {
		return nil, fmt.Errorf("training: predict: %w", err)
	}
	return y, nil
}

// MustPredict is Predict for notebook cells: it panics on error.
func (m *Model) MustPredict(x *kernelext.Array) *kernelext.Array {
	y, err := m.Predict(x)
	if err != nil {
		panic(err)
	}
	return y
}

func toTensor(x *kernelext.Array) (*tensors.Tensor, error) {
	if x == nil || len(x.Shape) < 1 {
		return nil, fmt.Errorf("training: input must be a batch (N, …), got %v", shapeOf(x))
	}
	if len(x.Data) != x.Size() {
		return nil, fmt.Errorf("training: input has %d values for shape %s", len(x.Data), x.ShapeString())
	}
	return tensors.FromFlatDataAndDimensions(x.Data, x.Shape...), nil
}

func shapeOf(a *kernelext.Array) string {
	if a == nil {
		return "nil"
	}
	return a.ShapeString()
}

func finalizeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		_ = t.FinalizeAll()
	}
}
