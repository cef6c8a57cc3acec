package training

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// This file is where fine-tuning asks where a frozen base runs. The decision itself is the
// model's (applications.EngineRuns): fine-tuning only splits the model at the frozen base so
// that the base's forward pass can run there while the layers above train in GoMLX.

// FrozenBaseOnEngine reports whether a frozen base runs on the workbook's own engine rather
// than in GoMLX: exactly where applications.EngineRuns says the model's forward pass does
// (GoMLX's pure-Go backend on a CPU with the engine's instructions; XLA backends keep GoMLX),
// for VGG16 and ResNet50 alike. Fine-tuning trains in float32, Keras' floatx.
func FrozenBaseOnEngine(b backends.Backend, network string) bool {
	return (network == "vgg16" || network == "resnet50") && applications.EngineRuns(b, dtypes.Float32)
}

// frozenBase returns the frozen base's forward pass up to layer until: app's Predict on its
// prefix, which runs on the engine where FrozenBaseOnEngine says so (the same values to float32
// rounding, for a fraction of the CPU time; one line on out says so), and else a GoMLX model on
// app's variables. inGoMLX forces GoMLX.
func frozenBase(b backends.Backend, network string, app *applications.Model, until string, inGoMLX bool, out io.Writer) (
	extract func(*kernelext.Array) (*kernelext.Array, error), onEngine bool, err error) {
	if !inGoMLX && FrozenBaseOnEngine(b, network) {
		base, err := app.Prefix(until)
		if err != nil {
			return nil, false, fmt.Errorf("training: frozen base of %s: %w", network, err)
		}
		if base.OnEngine() {
			fmt.Fprintf(out, "Frozen %s base: its forward pass runs on the workbook's own engine (internal/engine; up to %s) instead of GoMLX's pure-Go backend, the layers above train in GoMLX: the same values to float32 rounding, for a fraction of the CPU time.\n",
				map[string]string{"vgg16": "VGG16", "resnet50": "ResNet50"}[network], until)
			return base.Predict, true, nil
		}
	}
	extractor, err := NewModel(b, app.Context(), app.Name(), ApplicationBase(app, until))
	if err != nil {
		return nil, false, err
	}
	return extractor.Predict, false, nil
}
