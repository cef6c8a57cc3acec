package training

import (
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Layered is a model whose layers can be frozen and unfrozen by Keras layer name. LayerNames
// lists the layers in model order (Keras' model.layers); SetTrainable sets layer.trainable on
// the named ones. The applications package's models are adapted by ApplicationLayers; plain
// context variables by ContextLayers.
//
// As in Keras, where a change takes effect at the next compile(), a change takes effect at the
// next Model.Compile: call it after freezing or unfreezing.
type Layered interface {
	LayerNames() []string
	SetTrainable(trainable bool, layers ...string) error
}

// Selector picks layers by name; see LayerNamed, LayerPrefix, LayersFrom and AllLayers.
type Selector struct {
	desc  string
	match func(names []string) ([]string, error)
}

func (s Selector) String() string { return s.desc }

// LayerNamed selects the layers with exactly these names; each must exist.
func LayerNamed(names ...string) Selector {
	return Selector{desc: fmt.Sprintf("layers %q", names), match: func(all []string) ([]string, error) {
		for _, n := range names {
			if !matchesAnyLayer(n, all) {
				return nil, fmt.Errorf("training: no layer named %q", n)
			}
		}
		return names, nil
	}}
}

// LayerPrefix selects the layers whose names start with prefix, e.g. LayerPrefix("block5_")
// for VGG16's last convolution block; at least one must match.
func LayerPrefix(prefix string) Selector {
	return Selector{desc: fmt.Sprintf("layers %q*", prefix), match: func(all []string) ([]string, error) {
		var out []string
		for _, n := range all {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("training: no layer name starts with %q", prefix)
		}
		return out, nil
	}}
}

// LayersFrom selects the named layer and every layer after it in model order — the Keras
// documentation's "layers[249:]". For ResNet50 (Keras 2.3 names) LayersFrom("res5a_branch2a")
// is stage 5 (res5*, bn5* and the activations and additions between them).
func LayersFrom(name string) Selector {
	return Selector{desc: fmt.Sprintf("layers from %q", name), match: func(all []string) ([]string, error) {
		for i, n := range all {
			if n == name {
				return append([]string(nil), all[i:]...), nil
			}
		}
		return nil, fmt.Errorf("training: no layer named %q", name)
	}}
}

// LayersUntil selects the layers up to and including the named one, in model order — e.g. the
// base of a model built as one sequence with its head: LayersUntil("fc2") for VGG16 without
// "predictions", LayersUntil("block5_pool") without the top.
func LayersUntil(name string) Selector {
	return Selector{desc: fmt.Sprintf("layers until %q", name), match: func(all []string) ([]string, error) {
		for i, n := range all {
			if n == name {
				return append([]string(nil), all[:i+1]...), nil
			}
		}
		return nil, fmt.Errorf("training: no layer named %q", name)
	}}
}

// AllLayers selects every layer.
func AllLayers() Selector {
	return Selector{desc: "all layers", match: func(all []string) ([]string, error) {
		return append([]string(nil), all...), nil
	}}
}

// Freeze sets trainable = False on the selected layers (every layer when none is given).
func Freeze(m Layered, sel ...Selector) error { return setTrainable(m, false, sel) }

// Unfreeze sets trainable = True on the selected layers (every layer when none is given).
func Unfreeze(m Layered, sel ...Selector) error { return setTrainable(m, true, sel) }

func setTrainable(m Layered, trainable bool, sel []Selector) error {
	if len(sel) == 0 {
		sel = []Selector{AllLayers()}
	}
	all := m.LayerNames()
	for _, s := range sel {
		names, err := s.match(all)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			continue
		}
		if err := m.SetTrainable(trainable, names...); err != nil {
			return err
		}
	}
	return nil
}

// ContextLayers treats the variables of ctx as layers named by their first scope component
// ("/dense_1/kernel" belongs to layer "dense_1"), in order of creation; optimizer state is not a
// layer. With selectors, only the layers they match belong to it — e.g.
// ContextLayers(ctx, LayerPrefix("block")) is a base without its head. Variables exist once a
// graph used them (run Predict once, or build the layers) before the layers can be listed.
//
// Use it for layers built with Dense or any ModelFn keeping Keras-named scopes. Do not use it
// for the applications package's models, which reset their variables' flags from their own
// layer table at every graph build: use ApplicationLayers.
func ContextLayers(ctx *context.Context, only ...Selector) Layered {
	return restrict(contextLayers{ctx}, only)
}

type contextLayers struct{ ctx *context.Context }

func (c contextLayers) LayerNames() []string {
	var names []string
	seen := map[string]bool{}
	for v := range c.ctx.IterVariables() {
		if inOptimizerScope(v.Scope()) {
			continue
		}
		if n := topScope(v.Scope()); n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

func (c contextLayers) SetTrainable(trainable bool, layers ...string) error {
	for _, l := range layers {
		found := false
		for v := range c.ctx.IterVariables() {
			if !inOptimizerScope(v.Scope()) && topScope(v.Scope()) == l {
				v.SetTrainable(trainable)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("training: no variables under layer %q", l)
		}
	}
	return nil
}

// restrict limits l to the layers the selectors match (all of l without selectors).
func restrict(l Layered, only []Selector) Layered {
	if len(only) == 0 {
		return l
	}
	return restricted{l, only}
}

type restricted struct {
	Layered
	only []Selector
}

func (r restricted) LayerNames() []string {
	all := r.Layered.LayerNames()
	keep := map[string]bool{}
	for _, s := range r.only {
		matched, _ := s.match(all)
		for _, n := range matched {
			keep[n] = true
		}
	}
	var out []string
	for _, n := range all {
		if keep[n] {
			out = append(out, n)
		}
	}
	return out
}

func (r restricted) SetTrainable(trainable bool, layers ...string) error {
	mine := r.LayerNames()
	for _, l := range layers {
		if !matchesAnyLayer(l, mine) {
			return fmt.Errorf("training: layer %q is not one of %q", l, mine)
		}
	}
	return r.Layered.SetTrainable(trainable, layers...)
}

// topScope returns the first component of an absolute scope: "/dense_1/x" → "dense_1".
func topScope(scope string) string {
	s := strings.TrimPrefix(scope, context.ScopeSeparator)
	if i := strings.Index(s, context.ScopeSeparator); i >= 0 {
		s = s[:i]
	}
	return s
}

// TrainableSummary counts the trainable and non-trainable parameters of ctx's model variables
// (optimizer state excluded), the two totals Keras' summary() prints.
func TrainableSummary(ctx *context.Context) (trainable, nonTrainable int) {
	for v := range ctx.IterVariables() {
		if inOptimizerScope(v.Scope()) || topScope(v.Scope()) == "" {
			continue
		}
		if v.Trainable {
			trainable += v.Shape().Size()
		} else {
			nonTrainable += v.Shape().Size()
		}
	}
	return trainable, nonTrainable
}

// VariableChange counts how many values of one layer variable differ between two models.
type VariableChange struct {
	Layer, Name   string // e.g. "block5_conv1", "kernel"
	Size, Changed int
}

// CompareVariables compares, value by value (bit for bit), every model variable of a that b
// also has (optimizer state excluded), in a's order: a frozen layer shows 0 changed values —
// not updated by zero, not touched at all.
func CompareVariables(a, b *Model) ([]VariableChange, error) {
	var out []VariableChange
	for v := range a.Context().IterVariables() {
		if inOptimizerScope(v.Scope()) || topScope(v.Scope()) == "" {
			continue
		}
		w := b.Context().InspectVariable(v.Scope(), v.Name())
		if w == nil {
			continue
		}
		va, err := v.Value()
		if err != nil {
			return nil, err
		}
		vb, err := w.Value()
		if err != nil {
			return nil, err
		}
		fa, err := tensors.CopyFlatData[float32](va)
		if err != nil {
			return nil, err
		}
		fb, err := tensors.CopyFlatData[float32](vb)
		if err != nil {
			return nil, err
		}
		if len(fa) != len(fb) {
			return nil, fmt.Errorf("training: %s/%s has %d values in one model, %d in the other", v.Scope(), v.Name(), len(fa), len(fb))
		}
		c := VariableChange{Layer: topScope(v.Scope()), Name: v.Name(), Size: len(fa)}
		for i := range fa {
			if math.Float32bits(fa[i]) != math.Float32bits(fb[i]) {
				c.Changed++
			}
		}
		out = append(out, c)
	}
	return out, nil
}
