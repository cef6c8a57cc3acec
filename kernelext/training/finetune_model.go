package training

import (
	"fmt"
	"io"
	"strings"

	"github.com/gomlx/gomlx/backends"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// FineTuneModel is a fine-tuning network and the names the training paths need.
type FineTuneModel struct {
	Network  string // "vgg16" or "resnet50"
	App      *applications.Model
	Head     string // the new Dense layer ("dense_1")
	BaseLast string // last layer of the pretrained base (fc2, block5_pool, avg_pool...)
	Features string // layer whose output feeds the head (what a feature cache stores)
	Weights  applications.WeightsInfo
}

// NewFineTuneModel builds the exercise's model: VGG16 without "predictions" named as the book's
// keras.Sequential (at 224×224; at other sizes without the top, plus Flatten), or ResNet50
// without the top with average pooling and BatchNormalization in inference mode; all of it
// frozen; plus Dense(1, sigmoid) initialised with seed. weightsSpec is "imagenet", a .h5 file
// or "none".
func NewFineTuneModel(b backends.Backend, network, weightsSpec string, size int, seed int64) (*FineTuneModel, error) {
	if network != "vgg16" && network != "resnet50" {
		return nil, fmt.Errorf("training: unknown network %q (want vgg16 or resnet50)", network)
	}
	spec := weightsSpec
	if spec == "none" {
		spec = ""
	}
	var opts []applications.Option
	switch {
	case network == "vgg16" && size == 224:
		opts = []applications.Option{applications.Until("fc2")}
	case network == "vgg16":
		opts = []applications.Option{applications.IncludeTop(false), applications.InputShape(size, size)}
	default:
		opts = []applications.Option{applications.IncludeTop(false), applications.Pooling("avg"),
			applications.InputShape(size, size), applications.WithBatchNormMode(applications.BatchNormInference)}
	}
	opts = append(opts, applications.WithWeights(spec), applications.WithSeed(seed))
	lazy, err := applications.NewLazy(network, opts...)
	if err != nil {
		return nil, err
	}
	info, err := lazy.Weights()
	if err != nil {
		return nil, err
	}
	if info.Path != "" {
		opts = append(opts, applications.WithWeights(info.Path))
	}
	app, err := applications.New(network, append(opts, applications.WithBackend(b))...)
	if err != nil {
		return nil, err
	}
	layers := app.Layers()
	ft := &FineTuneModel{Network: network, App: app, BaseLast: layers[len(layers)-1].Name, Weights: info}
	ft.Features = ft.BaseLast
	if network == "vgg16" {
		app.AsSequential("sequential_1") // Keras' name for the book's keras.Sequential()
	}
	if err := app.SetTrainable(false); err != nil {
		return nil, err
	}
	if network == "vgg16" && size != 224 {
		if ft.Features, err = app.AddFlatten(""); err != nil {
			return nil, err
		}
	}
	if ft.Head, err = app.AddDense("", 1, "sigmoid"); err != nil {
		return nil, err
	}
	return ft, nil
}

// Base is the pretrained part, for Freeze and Unfreeze.
func (ft *FineTuneModel) Base() Layered { return ApplicationLayers(ft.App, LayersUntil(ft.BaseLast)) }

// FeatureID names the feature extractor for a FeatureCache key: model, feature layer and input
// size, e.g. "sequential_1/fc2/224x224" (the weights are keyed separately).
func (ft *FineTuneModel) FeatureID() string {
	in := ft.App.Architecture().InputShape()
	return fmt.Sprintf("%s/%s/%dx%d", ft.App.Name(), ft.Features, in[0], in[1])
}

// UnfreezeSelector reads an unfreeze spec: "from=LAYER" (LayersFrom) or a layer-name prefix.
func UnfreezeSelector(spec string) Selector {
	if name, ok := strings.CutPrefix(spec, "from="); ok {
		return LayersFrom(name)
	}
	return LayerPrefix(spec)
}

// checkUnfreeze makes sure spec selects base layers before stage 1 runs, rather than failing at
// stage 2 after hours of training.
func (ft *FineTuneModel) checkUnfreeze(spec string) error {
	names := ft.Base().LayerNames()
	from, isFrom := strings.CutPrefix(spec, "from=")
	for _, n := range names {
		if (isFrom && n == from) || (!isFrom && strings.HasPrefix(n, spec)) {
			return nil
		}
	}
	return fmt.Errorf("training: --unfreeze %q selects no layer of %s's base (its layers run from %s to %s)", spec, ft.App.Name(), names[0], names[len(names)-1])
}

// FrozenBase freezes the base and returns its forward pass up to Features: on the workbook's
// engine where FrozenBaseOnEngine says so (a line on out says so), else in GoMLX on b.
func (ft *FineTuneModel) FrozenBase(b backends.Backend, out io.Writer) (func(*kernelext.Array) (*kernelext.Array, error), error) {
	if err := Freeze(ft.Base()); err != nil {
		return nil, err
	}
	extract, _, err := frozenBase(b, ft.Network, ft.App, ft.Features, false, out)
	return extract, err
}
