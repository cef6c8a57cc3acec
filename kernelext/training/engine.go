package training

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/applications/inference"
)

// This file is the one place fine-tuning decides where a frozen base runs: the workbook's own
// SIMD engine (kernelext/applications/inference) or GoMLX. Everything else calls frozenBase.

// FrozenBaseOnEngine is the one decision where a frozen base runs; it reports whether a frozen base runs on the engine rather than in GoMLX: on GoMLX's
// pure-Go backend, which multiplies with scalar Go code, for VGG16, where the CPU has AVX2 and
// FMA. XLA backends keep GoMLX.
func FrozenBaseOnEngine(b backends.Backend, network string) bool {
	_, pureGo := b.(*simplego.Backend)
	return pureGo && network == "vgg16" && gemm.Accelerated()
}

// frozenBase returns the frozen base's forward pass up to layer until, on the engine where
// FrozenBaseOnEngine says so (the same values to float32 rounding, for a fraction of the CPU time;
// one line on out says so) and else as a GoMLX model on app's variables. inGoMLX forces GoMLX.
func frozenBase(b backends.Backend, network string, app *applications.Model, until string, inGoMLX bool, out io.Writer) (
	extract func(*kernelext.Array) (*kernelext.Array, error), onEngine bool, err error) {
	if !inGoMLX && FrozenBaseOnEngine(b, network) {
		net, err := inference.NewVGG16(app, until)
		if err != nil {
			return nil, false, err
		}
		fmt.Fprintf(out, "Frozen VGG16 base: its forward pass runs on the workbook's own %s code (kernelext/applications/inference) instead of GoMLX's pure-Go backend, the head trains in GoMLX: the same values to float32 rounding, %s\n",
			gemm.KernelName(), engineSpeedNote)
		return net.Predict, true, nil
	}
	extractor, err := NewModel(b, app.Context(), app.Name(), ApplicationBase(app, until))
	if err != nil {
		return nil, false, err
	}
	return extractor.Predict, false, nil
}

// engineSpeedNote is what BenchmarkVGG16Features (kernelext/applications/inference) measured,
// both paths in the same run at batch 8, VGG16 to fc2 at 224×224.
const engineSpeedNote = "for about a ninth of the CPU time (measured on a 2-core AMD EPYC with AVX2: 0.41 vs 3.8 CPU-seconds per 224×224 image)."
