package training

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// OptimizerScope is the absolute context scope holding the optimizer's state: the step counter
// "iterations" (int64, Keras' optimizer.iterations) and one slot variable per trained variable
// and moment, at OptimizerScope/<slot>/<variable scope>/<variable name>.
const OptimizerScope = "/optimizer"

// Optimizer is a GoMLX optimizer (usable with Model or with GoMLX's own train.Trainer) that
// also describes its hyperparameters, so a checkpoint can tell whether its optimizer state
// belongs to the optimizer a model is compiled with.
type Optimizer interface {
	optimizers.Interface
	// String names the optimizer and its hyperparameters the way Keras' get_config lists
	// them, e.g. "Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, decay=0)".
	String() string
}

// Adam is keras.optimizers.Adam of Keras 2.3 (amsgrad=False). At step t = 1, 2, …, for every
// trainable variable p with gradient g, in float32 as TensorFlow computes it:
//
//	lr_t = lr · √(1 − β2^t) / (1 − β1^t)      (lr decayed by 1/(1 + decay·(t−1)) when decay > 0)
//	m    = β1·m + (1 − β1)·g
//	v    = β2·v + (1 − β2)·g²
//	p    = p − lr_t·m / (√v + ε)
//
// GoMLX's optimizers.Adam has the same defaults but puts ε next to the bias-corrected second
// moment, p −= lr·m̂/(√v̂ + ε): that is Keras' update with ε replaced by ε·√(1 − β2^t) —
// about 3% of Keras' ε at t = 1 — which changes steps whenever √v is not large compared to ε
// (small or sparse gradients, the first steps of a fresh head). Hence this implementation.
//
// Create it with NewAdam (Keras' defaults) and set the fields to change them.
type Adam struct {
	LearningRate float64 // Keras default 0.001
	Beta1        float64 // Keras default 0.9
	Beta2        float64 // Keras default 0.999
	Epsilon      float64 // Keras default K.epsilon() = 1e-7 (Keras 2.0 used 1e-8)
	Decay        float64 // Keras default 0: time-based learning-rate decay per step
}

// NewAdam returns Adam with Keras 2.3's defaults: what compile(optimizer='adam') uses.
func NewAdam() *Adam {
	return &Adam{LearningRate: 0.001, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}
}

// AdamWithLearningRate is NewAdam with another learning rate, e.g. Adam(1e-5) for fine-tuning.
func AdamWithLearningRate(lr float64) *Adam {
	a := NewAdam()
	a.LearningRate = lr
	return a
}

// String implements Optimizer.
func (o *Adam) String() string {
	return fmt.Sprintf("Adam(learning_rate=%s, beta_1=%s, beta_2=%s, epsilon=%s, decay=%s)",
		pyFloat(o.LearningRate), pyFloat(o.Beta1), pyFloat(o.Beta2), pyFloat(o.Epsilon), pyFloat(o.Decay))
}

// UpdateGraph implements optimizers.Interface: it builds one Keras Adam step for every
// trainable variable the loss's graph uses.
func (o *Adam) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	if o.LearningRate <= 0 || o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 || o.Epsilon < 0 || o.Decay < 0 {
		panic(fmt.Errorf("training: invalid %s", o))
	}
	vars, grads := trainableGradients(ctx, g, loss)
	lr, it := stepLearningRate(ctx, g, o.LearningRate, o.Decay)
	t := AddScalar(ConvertDType(it, dtypes.Float32), 1)
	beta1 := Scalar(g, dtypes.Float32, o.Beta1)
	beta2 := Scalar(g, dtypes.Float32, o.Beta2)
	lrT := Mul(lr, Div(Sqrt(OneMinus(Pow(beta2, t))), OneMinus(Pow(beta1, t))))
	for i, v := range vars {
		grad := grads[i]
		m := slotVariable(ctx, "m", v)
		s := slotVariable(ctx, "v", v)
		mT := Add(Mul(beta1, m.ValueGraph(g)), Mul(OneMinus(beta1), grad))
		vT := Add(Mul(beta2, s.ValueGraph(g)), Mul(OneMinus(beta2), Square(grad)))
		m.SetValueGraph(mT)
		s.SetValueGraph(vT)
		step := Div(Mul(lrT, mT), AddScalar(Sqrt(vT), o.Epsilon))
		v.SetValueGraph(Sub(v.ValueGraph(g), step))
	}
}

// updateValues is UpdateGraph's step for gradients computed outside a graph (by the
// workbook's engine, see engine_top.go): the same state in the same variables (the step
// counter and the m and v slots under OptimizerScope, created in the order UpdateGraph
// creates them), the same float32 operations in the same order. Every updated variable gets
// a new tensor, as a GoMLX update gives it, so readers that compare tensors (the engine of
// applications.Model.Predict) see the change.
func (o *Adam) updateValues(ctx *context.Context, vars []*context.Variable, grads [][]float32) error {
	if o.LearningRate <= 0 || o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 || o.Epsilon < 0 || o.Decay < 0 {
		return fmt.Errorf("training: invalid %s", o)
	}
	itVar := iterationsVariable(ctx)
	itT, err := itVar.Value()
	if err != nil {
		return fmt.Errorf("training: optimizer iterations: %w", err)
	}
	it, ok := itT.Value().(int64)
	if !ok {
		return fmt.Errorf("training: optimizer iterations is %s, want int64", itT.Shape())
	}
	lr := float32(o.LearningRate)
	if o.Decay > 0 {
		lr *= 1 / (float32(o.Decay)*float32(it) + 1)
	}
	t := float32(it) + 1
	beta1, beta2, eps := float32(o.Beta1), float32(o.Beta2), float32(o.Epsilon)
	pow := func(b float32) float32 { return float32(math.Pow(float64(b), float64(t))) }
	lrT := lr * (float32(math.Sqrt(float64(1-pow(beta2)))) / (1 - pow(beta1)))
	for i, v := range vars {
		g := grads[i]
		m, s := slotVariable(ctx, "m", v), slotVariable(ctx, "v", v)
		var pOld, mOld, sOld []float32
		if err := flatValues([]*context.Variable{v, m, s}, []*[]float32{&pOld, &mOld, &sOld}); err != nil {
			return err
		}
		if len(g) != len(pOld) || len(mOld) != len(pOld) || len(sOld) != len(pOld) {
			return fmt.Errorf("training: %s: %d gradient values for %d", v.ScopeAndName(), len(g), len(pOld))
		}
		pT, pNew := newFloat32Tensor(v)
		mT, mNew := newFloat32Tensor(v)
		sT, sNew := newFloat32Tensor(v)
		for j, gj := range g {
			mj := beta1*mOld[j] + (1-beta1)*gj
			sj := beta2*sOld[j] + (1-beta2)*(gj*gj)
			mNew[j], sNew[j] = mj, sj
			pNew[j] = pOld[j] - (lrT*mj)/(float32(math.Sqrt(float64(sj)))+eps)
		}
		for _, u := range []struct {
			v *context.Variable
			t *tensors.Tensor
		}{{m, mT}, {s, sT}, {v, pT}} {
			if err := u.v.SetValue(u.t); err != nil {
				return fmt.Errorf("training: %s: %w", u.v.ScopeAndName(), err)
			}
		}
	}
	if err := itVar.SetValue(tensors.FromScalar(it + 1)); err != nil {
		return fmt.Errorf("training: optimizer iterations: %w", err)
	}
	return nil
}

// newFloat32Tensor is a new tensor of v's shape and its data to fill.
func newFloat32Tensor(v *context.Variable) (*tensors.Tensor, []float32) {
	t := tensors.FromShape(v.Shape())
	var data []float32
	_ = tensors.MutableFlatData(t, func(f []float32) { data = f }) // a new float32 tensor: no error
	return t, data
}

// flatValues points each of dst at the float32 data of the matching variable's value. The
// slices stay valid while the variables keep those values: GoMLX never writes a tensor's
// data in place; an update gives the variable a new tensor.
func flatValues(vars []*context.Variable, dst []*[]float32) error {
	for i, v := range vars {
		t, err := v.Value()
		if err != nil {
			return fmt.Errorf("training: %s: %w", v.ScopeAndName(), err)
		}
		if err := tensors.ConstFlatData(t, func(f []float32) { *dst[i] = f }); err != nil {
			return fmt.Errorf("training: %s: %w", v.ScopeAndName(), err)
		}
	}
	return nil
}

// Clear implements optimizers.Interface: it deletes the optimizer state (see ClearOptimizerState).
func (o *Adam) Clear(ctx *context.Context) error { return ClearOptimizerState(ctx) }

// SGD is keras.optimizers.SGD of Keras 2.3: with velocity u (zero at first),
//
//	u = momentum·u − lr·g
//	p = p + u                         (nesterov: p = p + momentum·u − lr·g)
//
// with lr decayed by 1/(1 + decay·(t−1)) when decay > 0. Create it with NewSGD.
type SGD struct {
	LearningRate float64 // Keras default 0.01
	Momentum     float64 // Keras default 0
	Nesterov     bool
	Decay        float64
}

// NewSGD returns SGD(learning_rate=lr, momentum=momentum), e.g. NewSGD(1e-4, 0.9) — the
// Keras documentation's fine-tuning recipe.
func NewSGD(lr, momentum float64) *SGD { return &SGD{LearningRate: lr, Momentum: momentum} }

// String implements Optimizer.
func (o *SGD) String() string {
	return fmt.Sprintf("SGD(learning_rate=%s, momentum=%s, nesterov=%s, decay=%s)",
		pyFloat(o.LearningRate), pyFloat(o.Momentum), pyBool(o.Nesterov), pyFloat(o.Decay))
}

// UpdateGraph implements optimizers.Interface.
func (o *SGD) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	if o.LearningRate <= 0 || o.Momentum < 0 || o.Decay < 0 {
		panic(fmt.Errorf("training: invalid %s", o))
	}
	vars, grads := trainableGradients(ctx, g, loss)
	lr, _ := stepLearningRate(ctx, g, o.LearningRate, o.Decay)
	momentum := Scalar(g, dtypes.Float32, o.Momentum)
	for i, v := range vars {
		grad := grads[i]
		u := slotVariable(ctx, "moment", v)
		uT := Sub(Mul(momentum, u.ValueGraph(g)), Mul(lr, grad))
		u.SetValueGraph(uT)
		p := v.ValueGraph(g)
		if o.Nesterov {
			p = Sub(Add(p, Mul(momentum, uT)), Mul(lr, grad))
		} else {
			p = Add(p, uT)
		}
		v.SetValueGraph(p)
	}
}

// Clear implements optimizers.Interface: it deletes the optimizer state (see ClearOptimizerState).
func (o *SGD) Clear(ctx *context.Context) error { return ClearOptimizerState(ctx) }

// ClearOptimizerState deletes every variable under OptimizerScope: the next step starts with
// zero moments and t = 1, as a freshly created Keras optimizer does after compile().
func ClearOptimizerState(ctx *context.Context) error {
	var victims []*context.Variable
	for v := range ctx.IterVariables() {
		if inOptimizerScope(v.Scope()) {
			victims = append(victims, v)
		}
	}
	for _, v := range victims {
		if err := ctx.DeleteVariable(v.Scope(), v.Name()); err != nil {
			return fmt.Errorf("training: clear optimizer state: %w", err)
		}
	}
	return nil
}

// OptimizerIterations is Keras' optimizer.iterations: the number of training steps taken since
// the optimizer state was created (0 when there is none).
func OptimizerIterations(ctx *context.Context) int64 {
	v := ctx.GetVariableByScopeAndName(OptimizerScope, "iterations")
	if v == nil {
		return 0
	}
	t, err := v.Value()
	if err != nil {
		return 0
	}
	n, ok := t.Value().(int64)
	if !ok {
		return 0
	}
	return n
}

func inOptimizerScope(scope string) bool {
	return scope == OptimizerScope || len(scope) > len(OptimizerScope) &&
		scope[:len(OptimizerScope)] == OptimizerScope && scope[len(OptimizerScope)] == '/'
}

// trainableGradients returns the trainable variables the graph uses, in context order, and
// the loss gradient for each — the pairing GoMLX's BuildTrainableVariablesGradientsGraph uses.
func trainableGradients(ctx *context.Context, g *Graph, loss *Node) ([]*context.Variable, []*Node) {
	if !loss.Shape().IsScalar() || loss.DType() != dtypes.Float32 {
		panic(fmt.Errorf("training: the loss must be a float32 scalar, got %s", loss.Shape()))
	}
	var vars []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			if v.DType() != dtypes.Float32 {
				panic(fmt.Errorf("training: trainable variable %s is %s; only float32 is supported", v.ScopeAndName(), v.DType()))
			}
			vars = append(vars, v)
		}
	}
	if len(vars) == 0 {
		panic(fmt.Errorf("training: the model has no trainable variable (is everything frozen?)"))
	}
	grads := ctx.BuildTrainableVariablesGradientsGraph(loss)
	if len(grads) != len(vars) {
		panic(fmt.Errorf("training: %d gradients for %d trainable variables", len(grads), len(vars)))
	}
	return vars, grads
}

// stepLearningRate increments the optimizer's iterations counter and returns the (decayed)
// learning rate and the counter's value before the increment, as Keras reads it.
func stepLearningRate(ctx *context.Context, g *Graph, lr, decay float64) (*Node, *Node) {
	itVar := iterationsVariable(ctx)
	it := itVar.ValueGraph(g)
	itVar.SetValueGraph(Add(it, OnesLike(it)))
	rate := Scalar(g, dtypes.Float32, lr)
	if decay > 0 {
		// lr · (1 / (1 + decay · iterations)), all float32 as in Keras.
		d := Mul(Scalar(g, dtypes.Float32, decay), ConvertDType(it, dtypes.Float32))
		rate = Mul(rate, Reciprocal(AddScalar(d, 1)))
	}
	return rate, it
}

// iterationsVariable returns (creating it with 0) the optimizer's step counter.
func iterationsVariable(ctx *context.Context) *context.Variable {
	return ctx.InAbsPath(OptimizerScope).Checked(false).VariableWithValue("iterations", int64(0)).SetTrainable(false)
}

// slotVariable returns (creating it with zeros) the optimizer slot named slot for v.
func slotVariable(ctx *context.Context, slot string, v *context.Variable) *context.Variable {
	scope := OptimizerScope + "/" + slot + v.Scope()
	sc := ctx.InAbsPath(scope).Checked(false)
	s := sc.GetVariableByScopeAndName(scope, v.Name())
	if s == nil {
		s = sc.VariableWithValue(v.Name(), zerosTensor(v.Shape()))
	}
	return s.SetTrainable(false)
}

// pyFloat formats f as Python's repr(float) does for the values optimizers use: shortest
// round-trip digits, "0.001", "1e-07", "0.9", "0.0".
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
