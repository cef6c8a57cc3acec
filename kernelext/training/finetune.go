package training

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// FineTuneOptions configure FineTune's two stages.
type FineTuneOptions struct {
	// Base is the pretrained part of the model (ApplicationLayers(vgg) for instance). Stage 1
	// freezes all of it; stage 2 unfreezes Unfreeze.
	Base Layered
	// Unfreeze selects the base layers stage 2 trains: LayerPrefix("block5_") for VGG16,
	// LayersFrom("res5a_branch2a") for ResNet50's stage 5. Empty means no stage 2.
	Unfreeze []Selector

	// Loss and Metrics are compiled into both stages; the zero value means
	// BinaryCrossentropy and Accuracy (Exercise 8.03's compile arguments).
	Loss    Loss
	Metrics []Metric

	// Stage1Optimizer trains the head; nil means NewAdam() (optimizer='adam').
	Stage1Optimizer Optimizer
	// Stage1 are the head-only Fit options (Epochs, StepsPerEpoch, validation, …).
	Stage1 FitOptions
	// Stage2Optimizer trains the unfrozen layers and the head; nil means
	// AdamWithLearningRate(1e-5), the small step the current Keras guide recommends so the
	// pretrained features are adjusted, not destroyed.
	Stage2Optimizer Optimizer
	// Stage2 are stage 2's Fit options; its epochs are numbered after stage 1's (Epochs counts
	// stage 2's epochs only; InitialEpoch is set by FineTune).
	Stage2 FitOptions
	// Stage2Train, if set, replaces the training generator in stage 2 — e.g. the image
	// generator when stage 1 trained from a FeatureCache, which stage 2 cannot use.
	Stage2Train Generator
}

// FineTune runs the freeze-then-unfreeze recipe on m, whose ModelFn applies Base then a new
// head: stage 1 freezes the whole base and trains the head (Exercise 8.03 is stage 1 alone);
// stage 2 unfreezes the selected top layers of the base, recompiles with a small learning rate
// (a fresh optimizer, as Keras' recompile gives) and trains on. It returns both stages' history
// as one, epochs numbered continuously.
//
// BatchNormalization (ResNet50) should stay in inference mode throughout — build the model
// with applications.WithBatchNormMode(applications.BatchNormInference) — or the unfrozen
// layers learn against batch statistics that inference will not use. Keras 2.3 itself
// normalised frozen BatchNormalization layers with batch statistics while training
// (applications.BatchNormKeras2), the behaviour that made fine-tuning ResNet50 there misbehave.
func FineTune(m *Model, train Generator, opts FineTuneOptions) (*History, error) {
	if opts.Base == nil {
		return nil, errors.New("training: FineTune needs the Base layers")
	}
	loss := opts.Loss
	if loss.PerSample == nil {
		loss = BinaryCrossentropy
	}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = []Metric{Accuracy}
	}
	opt1 := opts.Stage1Optimizer
	if opt1 == nil {
		opt1 = NewAdam()
	}
	out := opts.Stage1.Out
	if out == nil {
		out = os.Stdout
	}

	if err := Freeze(opts.Base); err != nil {
		return nil, err
	}
	if err := m.Compile(opt1, loss, metrics...); err != nil {
		return nil, err
	}
	say(out, opts.Stage1.Verbose, "Stage 1: base frozen, training the head with %s.\n", opt1)
	hist, err := m.Fit(train, opts.Stage1)
	if err != nil || len(opts.Unfreeze) == 0 {
		return hist, err
	}

	if err := Unfreeze(opts.Base, opts.Unfreeze...); err != nil {
		return hist, err
	}
	opt2 := opts.Stage2Optimizer
	if opt2 == nil {
		opt2 = AdamWithLearningRate(1e-5)
	}
	if err := m.Compile(opt2, loss, metrics...); err != nil {
		return hist, err
	}
	stage1Epochs := max(opts.Stage1.Epochs, 1)
	s2 := opts.Stage2
	s2.InitialEpoch = stage1Epochs
	s2.Epochs = stage1Epochs + max(opts.Stage2.Epochs, 1)
	train2 := train
	if opts.Stage2Train != nil {
		train2 = opts.Stage2Train
	}
	out2 := s2.Out
	if out2 == nil {
		out2 = os.Stdout
	}
	say(out2, s2.Verbose, "Stage 2: %v unfrozen, training with %s.\n", opts.Unfreeze, opt2)
	h2, err := m.Fit(train2, s2)
	hist.extend(h2)
	return hist, err
}

func say(w io.Writer, v Verbosity, format string, args ...any) {
	if v != Silent {
		fmt.Fprintf(w, format, args...)
	}
}
