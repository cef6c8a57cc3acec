package training

import (
	"errors"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/internal/engine"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// stepper computes a Model's training and test steps outside GoMLX; Model.TrainOnBatch and
// TestOnBatch hand their batches to it when one is set (Fit and Evaluate stay the one loop).
type stepper interface {
	trainStep(x, y *kernelext.Array) (StepResult, error)
	testStep(x, y *kernelext.Array) (StepResult, error)
}

// engineTop trains the top of a fine-tuned network — the layers after a frozen cut, e.g.
// VGG16's block5 convolutions, pooling, fc1, fc2 and the Dense(1, sigmoid) head — on the
// workbook's engine (engine.Trainer) instead of GoMLX's pure-Go backend, whose convolution
// gradients run at under 1 GFLOP/s: binary cross-entropy on the logits and binary accuracy
// as BinaryCrossentropy and Accuracy compute them, and Keras' Adam (Adam.updateValues).
//
// The model's GoMLX variables stay the only state: every step reads the weights and the
// optimizer's slots from the context and writes the updated ones back as new tensors (about
// 85 MB for block5 — a few tens of milliseconds against seconds of arithmetic), so
// checkpoints, resume, Predict and the full model see each step as after a GoMLX step.
type engineTop struct {
	ctx    *context.Context
	opt    *Adam
	table  []engine.Layer
	layers []*applications.Layer
	// vars[i] are layer i's kernel and bias (nil for layers without weights); trainable is
	// the Compile-time snapshot of which of them the optimizer updates.
	vars      [][2]*context.Variable
	trainable [][2]bool
	want      []bool
	tr        *engine.Trainer
	trIn      [3]int
}

// newEngineTop prepares app's layers after cut for training on the engine with opt, or says
// why they cannot be: a layer kind the engine does not train, a head other than Dense(1,
// sigmoid), an optimizer other than Adam, nothing trainable.
func newEngineTop(app *applications.Model, ctx *context.Context, cut string, opt Optimizer) (*engineTop, error) {
	adam, ok := opt.(*Adam)
	if !ok {
		return nil, fmt.Errorf("the engine trains with Adam only, not %s", opt)
	}
	table, layers, _, err := app.TopTable(cut)
	if err != nil {
		return nil, err
	}
	last := table[len(table)-1]
	if last.Op != engine.Dense || last.Out != 1 || last.Activation != "sigmoid" {
		return nil, fmt.Errorf("the engine trains a Dense(1, sigmoid) head only, not %s", layers[len(layers)-1].Name)
	}
	e := &engineTop{ctx: ctx, opt: adam, table: table, layers: layers,
		vars: make([][2]*context.Variable, len(table)), trainable: make([][2]bool, len(table)), want: make([]bool, len(table))}
	someTrainable := false
	for i, l := range layers {
		if l.Op != applications.OpConv2D && l.Op != applications.OpDense {
			if len(l.Weights) > 0 {
				return nil, fmt.Errorf("the engine does not train layer %s (%s)", l.Name, l.Class)
			}
			continue
		}
		sc := ctx.In(l.Name)
		for j, key := range []string{"kernel", "bias"} {
			v := sc.GetVariableByScopeAndName(sc.Scope(), key)
			if v == nil {
				return nil, fmt.Errorf("the model has no variable %s/%s", l.Name, key)
			}
			if v.DType() != dtypes.Float32 {
				return nil, fmt.Errorf("variable %s is %s, the engine needs float32", v.ScopeAndName(), v.DType())
			}
			e.vars[i][j], e.trainable[i][j] = v, v.Trainable
			e.want[i] = e.want[i] || v.Trainable
			someTrainable = someTrainable || v.Trainable
		}
	}
	if !someTrainable {
		return nil, errors.New("the model has no trainable variable (is everything frozen?)")
	}
	// A first trainer checks the chain (layer kinds, shapes) before training starts.
	in := layers[0].Inbound
	if len(in) != 1 || in[0] != cut {
		return nil, fmt.Errorf("layer %s does not read %s", layers[0].Name, cut)
	}
	shape := app.Architecture().Layer(cut).OutputShape
	if len(shape) == 3 && shape[0] > 0 && shape[1] > 0 && shape[2] > 0 {
		if _, err := e.trainer(shape[0], shape[1], shape[2]); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// trainer is the engine's trainer for inputs of h×w×c, planned again when the size changes.
func (e *engineTop) trainer(h, w, c int) (*engine.Trainer, error) {
	if e.tr == nil || e.trIn != [3]int{h, w, c} {
		tr, err := engine.NewTrainer(e.table, h, w, c)
		if err != nil {
			return nil, err
		}
		e.tr, e.trIn = tr, [3]int{h, w, c}
	}
	return e.tr, nil
}

// forward runs the batch through the top and returns the logits and the labels, checked.
func (e *engineTop) forward(x, y *kernelext.Array) (logits []float32, err error) {
	if x == nil || len(x.Shape) != 4 || len(x.Data) != x.Size() {
		return nil, fmt.Errorf("training: the engine's top needs a batch of feature maps (N, H, W, C), got %v", shapeOf(x))
	}
	b := x.Shape[0]
	if y == nil || y.Size() != b || len(y.Data) != b {
		return nil, fmt.Errorf("training: a batch of %d inputs needs %d labels, got %v", b, b, shapeOf(y))
	}
	if b == 0 {
		return nil, errors.New("training: empty batch")
	}
	tr, err := e.trainer(x.Shape[1], x.Shape[2], x.Shape[3])
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	weights := make([]engine.Weights, len(e.table))
	for i, vs := range e.vars {
		if vs[0] != nil {
			if err := flatValues(vs[:], []*[]float32{&weights[i].Kernel, &weights[i].Bias}); err != nil {
				return nil, err
			}
		}
	}
	logits, err = tr.Forward(x.Data, b, weights)
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	return logits, nil
}

// result is the batch's mean loss and accuracy sum: binary cross-entropy on the logits z,
// max(z, 0) − z·y + log(1 + e^−|z|) (BinaryCrossentropy's form for a sigmoid output), and
// y == round(sigmoid(z)) with ties to even (Accuracy), as those compute them in float32.
func bceResult(logits, labels []float32) StepResult {
	var sum, hits float32
	for i, z := range logits {
		y := labels[i]
		sum += max(z, 0) - z*y + float32(math.Log1p(math.Exp(-math.Abs(float64(z)))))
		if y == roundHalfEven(sigmoid(z)) {
			hits++
		}
	}
	return StepResult{Size: len(logits), Loss: sum / float32(len(logits)), MetricSums: []float32{hits}}
}

func sigmoid(z float32) float32 { return float32(1 / (1 + math.Exp(-float64(z)))) }

// roundHalfEven is RoundHalfEven on one value: tf.round.
func roundHalfEven(p float32) float32 { return float32(math.RoundToEven(float64(p))) }

func (e *engineTop) testStep(x, y *kernelext.Array) (StepResult, error) {
	logits, err := e.forward(x, y)
	if err != nil {
		return StepResult{}, err
	}
	return bceResult(logits, y.Data), nil
}

// trainStep is one step: forward, loss, backward (the mean loss's gradient with respect to
// the logits is (sigmoid(z) − y)/N), then Adam on the trainable variables.
func (e *engineTop) trainStep(x, y *kernelext.Array) (StepResult, error) {
	logits, err := e.forward(x, y)
	if err != nil {
		return StepResult{}, err
	}
	r := bceResult(logits, y.Data)
	n := float32(len(logits))
	dz := make([]float32, len(logits))
	for i, z := range logits {
		dz[i] = (sigmoid(z) - y.Data[i]) / n
	}
	grads, err := e.tr.Backward(dz, e.want)
	if err != nil {
		return StepResult{}, fmt.Errorf("training: %w", err)
	}
	vars, gs := e.trained(grads)
	if err := e.opt.updateValues(e.ctx, vars, gs); err != nil {
		return StepResult{}, err
	}
	return r, nil
}

// trained lists the variables the optimizer updates, layer by layer (kernel, then bias), and,
// when grads is not nil, the gradient of each.
func (e *engineTop) trained(grads []engine.Weights) (vars []*context.Variable, gs [][]float32) {
	for i, vs := range e.vars {
		for j, v := range vs {
			if v != nil && e.trainable[i][j] {
				vars = append(vars, v)
				if grads != nil {
					gs = append(gs, [][]float32{grads[i].Kernel, grads[i].Bias}[j])
				}
			}
		}
	}
	return vars, gs
}
