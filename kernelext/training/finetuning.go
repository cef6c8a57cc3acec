package training

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// FineTuning is a whole fine-tuning run, Exercise 8.03 and its sequel: a pretrained network
// without its classifier, frozen, plus Dense(1, sigmoid), compiled with Adam and binary
// cross-entropy and trained with fit_generator on a training_set/ and test_set/ of two classes;
// then, with Stage2Epochs, the top of the base unfrozen and trained on with a small learning
// rate. The zero value (plus a Schedule) is the book's exercise on the shipped sample.
//
// Where the frozen base can run on the workbook's own engine (see engine.go) the head trains
// apart from it in GoMLX, on features the engine computes from the same freshly augmented
// batches: the same History to float32 rounding as training the whole model in GoMLX, for a
// fraction of the time. Cached computes the base's features once per image instead (fast, but
// no fresh augmentation per step). Stage 2 changes the base: the layers below the first unfrozen
// one still run on the engine, and the layers above train on it too where it trains them
// (VGG16's block5 and the Dense layers, see engine_top.go), else in GoMLX.
type FineTuning struct {
	Network  string   // "vgg16" (the book's, default) or "resnet50"
	Weights  string   // "imagenet" (default), a .h5 file, or "none" (Keras' random initialisation)
	Size     int      // input height and width; 0 means 224
	Seed     int64    // seed of the head, the shuffles and the augmentation; the book's is 42
	Data     string   // folder with training_set/ and test_set/; "" means $WORKBOOK_DATA, else the shipped sample
	Schedule Schedule // the zero value means BookSchedule

	Stage2Epochs int     // epochs with Unfreeze trainable after stage 1 (0: the exercise alone)
	Unfreeze     string  // a layer-name prefix, or "from=LAYER"; "" means block5_ (VGG16) or stage 5 (ResNet50)
	LR2          float64 // Adam's learning rate in stage 2; 0 means 1e-5

	Cached       bool // train the head on features computed once per image
	CachedCopies int  // with Cached: K fixed augmented copies per training image (0: unaugmented)

	// Dir, if set, is the run folder: the settings and a checkpoint after every epoch of each
	// stage. Resume continues the run saved there (and refuses one made with other settings);
	// without it a folder holding a run is refused.
	Dir    string
	Resume bool

	CheckImages bool      // decode every image once before training, naming the unreadable ones
	Summary     bool      // print model.summary() before training
	Out         io.Writer // the log; nil means os.Stdout
	Display     Display   // the progress bar's display
	LineEvery   int       // see FitOptions.LineEvery

	// OnEpochEnd, if set, runs after every epoch of either stage ("stage1", "stage2"); an error
	// stops the run as a crash would, after that epoch's checkpoint was written.
	OnEpochEnd func(stage string, epoch int) error
	// Callbacks run in both stages, after OnEpochEnd (e.g. to time the steps).
	Callbacks []Callback
	// BaseInGoMLX trains the whole model in GoMLX even where the frozen base could run on the
	// engine (to compare the two).
	BaseInGoMLX bool
}

// FineTuned is a finished run: the trained model (the whole network with its head), its
// History, and the class names (index 1 is what the sigmoid's 1 means).
type FineTuned struct {
	*FineTuneModel
	Model   *Model
	History *History
	Classes []string
	// TrainSamples and TestSamples count the images of training_set/ and test_set/.
	TrainSamples, TestSamples int
}

// Exercise803 is the book's Exercise 8.03 with schedule s: VGG16 up to fc2, ImageNet weights,
// 224×224, seed 42, the book's generators, no stage 2.
func Exercise803(s Schedule) FineTuning {
	return FineTuning{Network: "vgg16", Weights: "imagenet", Size: 224, Seed: 42, Schedule: s}
}

func (f FineTuning) withDefaults() FineTuning {
	if f.Network == "" {
		f.Network = "vgg16"
	}
	if f.Weights == "" {
		f.Weights = "imagenet"
	}
	if f.Size == 0 {
		f.Size = 224
	}
	if f.Schedule == (Schedule{}) {
		f.Schedule = BookSchedule
	}
	if f.Unfreeze == "" {
		f.Unfreeze = map[string]string{"vgg16": "block5_", "resnet50": "from=res5a_branch2a"}[f.Network]
	}
	if f.LR2 == 0 {
		f.LR2 = 1e-5
	}
	if f.Out == nil {
		f.Out = os.Stdout
	}
	return f
}

// Data opens the run's two generators — the book's flow_from_directory on training_set/ (augmented)
// and test_set/ (rescaled), both with the run's seed — after checking the folders.
func (f FineTuning) data() (train, test *datasets.DirectoryIterator, err error) {
	trainDir, testDir, err := datasets.TrainTestDirs(f.Data, f.Out)
	if err != nil {
		return nil, nil, err
	}
	flow := datasets.FlowOptions{TargetSize: [2]int{f.Size, f.Size}, BatchSize: f.Schedule.Batch,
		ClassMode: datasets.Binary, Seed: datasets.Seed(f.Seed), Out: f.Out}
	if train, err = BookTrainAugmentation.FlowFromDirectory(trainDir, flow); err != nil {
		return nil, nil, err
	}
	if test, err = BookTestPreprocessing.FlowFromDirectory(testDir, flow); err != nil {
		train.Close()
		return nil, nil, err
	}
	if err = datasets.CheckBinaryPair(train, test); err == nil && f.CheckImages {
		err = datasets.CheckReadable(append(slices.Clone(train.Filepaths()), test.Filepaths()...), flow.TargetSize, f.Out)
	}
	if err != nil {
		train.Close()
		test.Close()
		return nil, nil, err
	}
	return train, test, nil
}

// Run trains: stage 1 (and stage 2 if asked), with checkpoints in Dir when set.
func (f FineTuning) Run() (*FineTuned, error) {
	f = f.withDefaults()
	if err := f.Schedule.Validate(); err != nil {
		return nil, err
	}
	if f.Resume && f.Dir == "" {
		return nil, fmt.Errorf("training: FineTuning.Resume needs a Dir")
	}
	train, test, err := f.data()
	if err != nil {
		return nil, err
	}
	defer train.Close()
	defer test.Close()
	s := f.Schedule
	trainDraws, trainDistinct := datasets.ScheduleDraws(train.Samples(), s.Batch, (s.Epochs+f.Stage2Epochs)*s.Steps)
	valDraws, valDistinct := datasets.ScheduleDraws(test.Samples(), s.Batch, (s.Epochs+f.Stage2Epochs)*s.ValSteps)
	fmt.Fprintf(f.Out, "Schedule: %d epoch(s) × %d steps (+ %d validation steps) of batch %d: %s training and %s validation images drawn, %s + %s distinct.\n",
		s.Epochs+f.Stage2Epochs, s.Steps, s.ValSteps, s.Batch, applications.Thousands(trainDraws), applications.Thousands(valDraws),
		applications.Thousands(trainDistinct), applications.Thousands(valDistinct))

	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f.Out, "Backend: %s\n", backend.Describe(b))
	ft, err := NewFineTuneModel(b, f.Network, f.Weights, f.Size, f.Seed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(f.Out, ft.Weights)
	if f.Stage2Epochs > 0 {
		if err := ft.checkUnfreeze(f.Unfreeze); err != nil {
			return nil, err
		}
	}
	if f.Summary {
		fmt.Fprint(f.Out, ft.App.Summary())
	}
	headApart := f.Cached || (!f.BaseInGoMLX && FrozenBaseOnEngine(b, f.Network))
	if f.Dir != "" {
		if err := f.prepareDir(ft, train, test, headApart); err != nil {
			return nil, err
		}
	}
	r := &ftRun{f: f, b: b, ft: ft, train: NewSequenceGenerator(train, false), val: NewSequenceGenerator(test, false)}
	defer r.train.Close()
	defer r.val.Close()
	if r.full, err = NewApplicationModel(b, ft.App); err != nil {
		return nil, err
	}
	var hist *History
	switch {
	case f.Cached:
		hist, err = r.cached(train, test)
	case headApart:
		hist, err = r.split()
	default:
		hist, err = r.whole()
	}
	if err != nil {
		return nil, err
	}
	return &FineTuned{FineTuneModel: ft, Model: r.full, History: hist, Classes: train.ClassNames(),
		TrainSamples: train.Samples(), TestSamples: test.Samples()}, nil
}

// MustRun is Run for notebook cells: it panics on error.
func (f FineTuning) MustRun() *FineTuned {
	t, err := f.Run()
	if err != nil {
		panic(err)
	}
	return t
}

// ftRun is one Run's state.
type ftRun struct {
	f          FineTuning
	b          backends.Backend
	ft         *FineTuneModel
	full       *Model
	train, val *SequenceGenerator
}

func (r *ftRun) fitOptions(stage string, epochs int, file string) FitOptions {
	o := FitOptions{Epochs: epochs, StepsPerEpoch: r.f.Schedule.Steps, ValidationData: r.val, ValidationSteps: r.f.Schedule.ValSteps,
		LineEvery: r.f.LineEvery, Display: r.f.Display, Out: r.f.Out, Resume: r.f.Resume}
	if r.f.Dir != "" {
		o.Checkpoint = filepath.Join(r.f.Dir, file)
	}
	if hook := r.f.OnEpochEnd; hook != nil {
		o.Callbacks = []Callback{{OnEpochEnd: func(epoch int, _ map[string]float64) error { return hook(stage, epoch) }}}
	}
	o.Callbacks = append(o.Callbacks, r.f.Callbacks...)
	return o
}

// whole trains the whole model in GoMLX, both stages (FineTune).
func (r *ftRun) whole() (*History, error) {
	opts := FineTuneOptions{Base: r.ft.Base(), Stage1: r.fitOptions("stage1", r.f.Schedule.Epochs, stage1Whole),
		Stage2: r.fitOptions("stage2", r.f.Stage2Epochs, stage2File), Stage2Optimizer: AdamWithLearningRate(r.f.LR2)}
	if r.f.Stage2Epochs > 0 {
		opts.Unfreeze = []Selector{UnfreezeSelector(r.f.Unfreeze)}
	}
	return FineTune(r.full, r.train, opts)
}

// split is the book's way with the frozen base on the engine: every step draws the same freshly
// augmented batch from the same generator as the whole model would (validation likewise), the
// engine maps it to the base's features, and only the head trains in GoMLX — the book's
// computation (the base is frozen, and VGG16 has neither dropout nor batch normalisation) to
// float32 rounding. The head trains and checkpoints in a context of its own, then goes into the
// full model, which predicts, is saved and trains stage 2.
func (r *ftRun) split() (*History, error) {
	extract, err := r.frozenBase()
	if err != nil {
		return nil, err
	}
	head, err := r.newHead()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.f.Out, "Stage 1: base frozen, training the head with %s.\n", head.Optimizer())
	s1 := r.fitOptions("stage1", r.f.Schedule.Epochs, stage1Head)
	s1.ValidationData = NewExtractGenerator(r.val, extract)
	hist, err := head.Fit(NewExtractGenerator(r.train, extract), s1)
	if err != nil {
		return hist, err
	}
	return r.stage2(head, hist, false)
}

// cached trains the head on features computed once per image (FeatureCache), in a context of
// its own (its checkpoints hold the head only); stage 2, if any, trains on images.
func (r *ftRun) cached(train, test *datasets.DirectoryIterator) (*History, error) {
	nTrain, nTest, k := train.Samples(), test.Samples(), r.f.CachedCopies
	out := r.f.Out
	fmt.Fprintf(out, "Cached features: %s runs once on each image (%s training image(s) × %d + %s test image(s) = %s forward passes); the head then trains on the stored %s outputs.\n",
		r.ft.App.Name(), applications.Thousands(nTrain), max(k, 1), applications.Thousands(nTest), applications.Thousands(nTrain*max(k, 1)+nTest), r.ft.Features)
	if k == 0 {
		fmt.Fprintln(out, "Trade-off: the training features are NOT augmented — Keras draws a new shear, zoom and flip every time an image is used; here every epoch sees the same unaugmented images. Pass --cached-features=K for K fixed augmented copies per image.")
	} else {
		fmt.Fprintf(out, "Trade-off: %d fixed augmented copies per training image (one picked at random per draw) instead of a new random shear, zoom and flip at every use, as Keras does.\n", k)
	}
	extract, err := r.frozenBase()
	if err != nil {
		return nil, err
	}
	cache := &FeatureCache{Model: r.ft.FeatureID(), Weights: r.ft.Weights.Digest, Extract: extract,
		TargetSize: train.TargetSize(), Preprocess: BookTestPreprocessing, BatchSize: r.f.Schedule.Batch, Out: out}
	start := time.Now()
	var trainX []*kernelext.Array
	if k == 0 {
		x, err := cache.Features(train.Filepaths())
		if err != nil {
			return nil, err
		}
		trainX = []*kernelext.Array{x}
	} else if trainX, err = cache.Augmented(train.Filepaths(), BookTrainAugmentation, k, r.f.Seed); err != nil {
		return nil, err
	}
	testX, err := cache.Features(test.Filepaths())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Features ready in %.1f s.\n", time.Since(start).Seconds())
	gTrain, err := NewFeatureGenerator(trainX, Labels(train.Labels()), r.f.Schedule.Batch, true, uint64(r.f.Seed)+1)
	if err != nil {
		return nil, err
	}
	gTest, err := NewFeatureGenerator([]*kernelext.Array{testX}, Labels(test.Labels()), r.f.Schedule.Batch, true, uint64(r.f.Seed)+2)
	if err != nil {
		return nil, err
	}
	head, err := r.newHead()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Stage 1: base frozen, training the head on cached features with %s.\n", head.Optimizer())
	s1 := r.fitOptions("stage1", r.f.Schedule.Epochs, stage1Head)
	s1.ValidationData = gTest
	hist, err := head.Fit(gTrain, s1)
	if err != nil {
		return hist, err
	}
	return r.stage2(head, hist, true)
}

// frozenBase freezes the base and returns its forward pass up to the head's input.
func (r *ftRun) frozenBase() (func(*kernelext.Array) (*kernelext.Array, error), error) {
	if err := Freeze(r.ft.Base()); err != nil {
		return nil, err
	}
	extract, _, err := frozenBase(r.b, r.f.Network, r.ft.App, r.ft.Features, r.f.BaseInGoMLX, r.f.Out)
	return extract, err
}

// newHead is the head alone — Dense(1, sigmoid) under the full model's layer name — in a context
// of its own, compiled as the book compiles the whole model, starting from the full model's
// initial head weights (copied, so that every path starts from the same head).
func (r *ftRun) newHead() (*Model, error) {
	hctx := context.New()
	if n, err := copyVariables(r.ft.App.Context(), hctx, "/"+r.ft.Head, true); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, fmt.Errorf("training: the model has no variables under /%s to start the head from", r.ft.Head)
	}
	head, err := NewModel(r.b, hctx, r.ft.App.Name(), Dense(r.ft.Head, 1, "sigmoid"))
	if err != nil {
		return nil, err
	}
	return head, head.Compile(NewAdam(), BinaryCrossentropy, Accuracy)
}

// stage2 puts the trained head into the full model — its weights and the optimizer's state,
// with the full model compiled with the head's optimizer, as training the whole model would
// have left it (so model.save keeps the optimizer state, as Keras' does) — then, if asked,
// unfreezes the selected layers and trains the full model on images with a fresh Adam(LR2),
// its epochs numbered after stage 1's.
func (r *ftRun) stage2(head *Model, hist *History, afterCache bool) (*History, error) {
	if err := r.full.Compile(head.Optimizer(), BinaryCrossentropy, Accuracy); err != nil {
		return hist, err
	}
	if n, err := copyVariables(head.Context(), r.full.Context(), "/"+r.ft.Head, false); err != nil {
		return hist, err
	} else if n == 0 {
		return hist, fmt.Errorf("training: no trained variables under /%s", r.ft.Head)
	}
	if _, err := copyVariables(head.Context(), r.full.Context(), OptimizerScope, true); err != nil {
		return hist, err
	}
	if r.f.Stage2Epochs == 0 {
		return hist, nil
	}
	sel := UnfreezeSelector(r.f.Unfreeze)
	if err := Unfreeze(r.ft.Base(), sel); err != nil {
		return hist, err
	}
	opt2 := AdamWithLearningRate(r.f.LR2)
	if err := r.full.Compile(opt2, BinaryCrossentropy, Accuracy); err != nil {
		return hist, err
	}
	if afterCache {
		fmt.Fprintf(r.f.Out, "Stage 2: %v unfrozen, training on images with %s.\n", sel, opt2)
	} else { // FineTune's line, as the whole-model path prints it
		fmt.Fprintf(r.f.Out, "Stage 2: %v unfrozen, training with %s.\n", []Selector{sel}, opt2)
	}
	s2 := r.fitOptions("stage2", r.f.Schedule.Epochs+r.f.Stage2Epochs, stage2File)
	s2.InitialEpoch = r.f.Schedule.Epochs
	model, train, err := r.stage2Top(opt2, &s2)
	if err != nil {
		return hist, err
	}
	h2, err := model.Fit(train, s2)
	hist.extend(h2)
	return hist, err
}

// stage2Top is what stage 2 trains: where the frozen bottom (the layers below the first
// unfrozen one) can run on the engine, a model of the layers above it, on the full model's
// variables (same context, same name: its checkpoints are the full model's), fed the engine's
// features of the same freshly augmented batches — its steps computed on the engine too where
// the top holds only layers the engine trains (newEngineTop), in GoMLX otherwise (ResNet50's
// stage 5 with its BatchNormalization); else the full model on images.
func (r *ftRun) stage2Top(opt Optimizer, s2 *FitOptions) (*Model, Generator, error) {
	names := r.ft.Base().LayerNames()
	first := len(names)
	for i, l := range r.ft.App.Layers() {
		if l.Trainable && i < first && i > 0 && slices.Contains(names, l.Name) {
			first = i
		}
	}
	if r.f.BaseInGoMLX || first >= len(names) || !FrozenBaseOnEngine(r.b, r.f.Network) {
		return r.full, r.train, nil
	}
	cut := r.ft.App.Layers()[first-1].Name
	extract, _, err := frozenBase(r.b, r.f.Network, r.ft.App, cut, false, io.Discard) // stage 1 said where the base runs
	if err != nil {
		return nil, nil, err
	}
	top, err := NewModel(r.b, r.ft.App.Context(), r.ft.App.Name(), ApplicationTop(r.ft.App, cut))
	if err != nil {
		return nil, nil, err
	}
	if err := top.Compile(opt, BinaryCrossentropy, Accuracy); err != nil {
		return nil, nil, err
	}
	// The trainable top on the engine too where it consists of layers the engine trains
	// (VGG16's block5, pooling and Dense layers); else, e.g. ResNet50's stage 5 with its
	// BatchNormalization, in GoMLX.
	if steps, err := newEngineTop(r.ft.App, r.ft.App.Context(), cut, opt); err == nil {
		top.steps = steps
		fmt.Fprintf(r.f.Out, "Stage 2: the frozen layers up to %s on the engine, the layers above trained on the engine too (internal/engine's training steps, Keras' Adam on the model's variables).\n", cut)
	} else {
		fmt.Fprintf(r.f.Out, "Stage 2: the frozen layers up to %s on the engine, the layers above in GoMLX (%v).\n", cut, err)
	}
	s2.ValidationData = NewExtractGenerator(r.val, extract)
	return top, NewExtractGenerator(r.train, extract), nil
}

// copyVariables copies the variables under scope (e.g. "/dense_1") from one context to another
// and returns how many it copied. Without create they must already exist there with the same
// shape; with create, missing ones are made (trainable as in the source).
func copyVariables(from, to *context.Context, scope string, create bool) (int, error) {
	n := 0
	for v := range from.IterVariables() {
		if v.Scope() != scope && !strings.HasPrefix(v.Scope(), scope+"/") {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return n, err
		}
		clone, err := val.LocalClone()
		if err != nil {
			return n, err
		}
		dst := to.InspectVariable(v.Scope(), v.Name())
		switch {
		case dst == nil && create:
			to.InAbsPath(v.Scope()).Checked(false).VariableWithValue(v.Name(), clone).SetTrainable(v.Trainable)
		case dst == nil:
			return n, fmt.Errorf("training: the model has no variable %s/%s to receive the trained head", v.Scope(), v.Name())
		case !dst.Shape().Equal(val.Shape()):
			return n, fmt.Errorf("training: variable %s/%s has shape %s, the receiving model's %s", v.Scope(), v.Name(), val.Shape(), dst.Shape())
		default:
			if err := dst.SetValue(clone); err != nil {
				return n, err
			}
		}
		n++
	}
	return n, nil
}
