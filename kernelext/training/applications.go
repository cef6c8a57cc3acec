package training

import (
	"strconv"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// ApplicationLayers adapts a VGG16 or ResNet50 from the applications package for Freeze and
// Unfreeze: layer names in model order, and SetTrainable going through the model's layer table
// (which the model's graphs read), so the flags survive graph rebuilds. With selectors, only
// the matched layers belong to it: for a model that carries its new head (AddDense),
// ApplicationLayers(m, LayersUntil("fc2")) is the pretrained base alone.
func ApplicationLayers(m *applications.Model, only ...Selector) Layered {
	return restrict(appLayers{m}, only)
}

type appLayers struct{ m *applications.Model }

func (a appLayers) LayerNames() []string {
	ls := a.m.Layers()
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return names
}

func (a appLayers) SetTrainable(trainable bool, layers ...string) error {
	return a.m.SetTrainable(trainable, layers...)
}

// ApplicationModelID names an applications model for a FeatureCache key: model name, last
// layer (the Until cut) and input size, e.g. "vgg16/fc2/224x224"; pair it with a weights
// identity such as the weights file's hash.
func ApplicationModelID(m *applications.Model) string {
	ls := m.Layers()
	in := m.Architecture().InputShape()
	return m.Name() + "/" + ls[len(ls)-1].Name + "/" + dim(in[0]) + "x" + dim(in[1])
}

func dim(d int) string {
	if d == applications.None {
		return "None"
	}
	return strconv.Itoa(d)
}

// ApplicationBase is a ModelFn computing m's output at layer until (e.g. "fc2" or
// "block5_pool") on m's variables, in inference mode when run by Predict: the feature extractor
// for a FeatureCache when m also carries its new head (AddDense). Run it in a Model on
// m.Context():
//
//	extractor := training.MustNewModel(b, app.Context(), "vgg16", training.ApplicationBase(app, "fc2"))
//	cache := &training.FeatureCache{Extract: extractor.Predict, …}
//
// A head trained on the cached features with Dense(name, …) under the name AddDense gave it
// uses the very variables the full model (app.Apply) reads.
func ApplicationBase(m *applications.Model, until string) ModelFn {
	return func(ctx *context.Context, x *Node) *Node {
		return applications.ArchitectureGraph(ctx, x, m.Architecture()).Until(until).StopGradientAtFrozen(true).Done()
	}
}

// ApplicationTop is a ModelFn computing m's layers after layer from, its input being from's
// output (computed elsewhere, e.g. by the engine for a frozen bottom), on m's variables: the
// trainable top of a model in stage 2 of fine-tuning.
func ApplicationTop(m *applications.Model, from string) ModelFn {
	return func(ctx *context.Context, x *Node) *Node {
		return applications.ArchitectureGraph(ctx, x, m.Architecture()).From(from).StopGradientAtFrozen(true).Done()
	}
}
