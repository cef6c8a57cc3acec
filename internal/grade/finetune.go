package grade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/weights"
)

// Schedule is a fine-tuning run's length, the knobs Exercise 8.03's notebook reads from the
// environment (WORKBOOK_EPOCHS, WORKBOOK_STEPS, WORKBOOK_VAL_STEPS, WORKBOOK_BATCH).
type Schedule struct {
	Epochs, Steps, ValSteps, Batch int
}

// The book's schedule (fit_generator(steps_per_epoch=100, epochs=10, validation_steps=30),
// batch_size=32) and the notebook's WORKBOOK_QUICK=1 one, which only checks that every cell runs.
var (
	BookSchedule  = Schedule{Epochs: 10, Steps: 100, ValSteps: 30, Batch: 32}
	QuickSchedule = Schedule{Epochs: 1, Steps: 2, ValSteps: 1, Batch: 2}
)

func (s Schedule) String() string {
	return fmt.Sprintf("epochs=%d steps_per_epoch=%d validation_steps=%d batch_size=%d", s.Epochs, s.Steps, s.ValSteps, s.Batch)
}

// Validate rejects non-positive values.
func (s Schedule) Validate() error {
	if s.Epochs < 1 || s.Steps < 1 || s.ValSteps < 1 || s.Batch < 1 {
		return fmt.Errorf("grade: schedule %s: every value must be at least 1", s)
	}
	return nil
}

// Env is the environment that makes the notebook run this schedule on data (empty data: the
// notebook's default, the shipped sample). A value set explicitly wins over WORKBOOK_QUICK in
// the notebook, so the submission runs exactly this schedule.
func (s Schedule) Env(data string) []string {
	env := []string{
		"WORKBOOK_EPOCHS=" + strconv.Itoa(s.Epochs), "WORKBOOK_STEPS=" + strconv.Itoa(s.Steps),
		"WORKBOOK_VAL_STEPS=" + strconv.Itoa(s.ValSteps), "WORKBOOK_BATCH=" + strconv.Itoa(s.Batch),
	}
	if data != "" {
		env = append(env, "WORKBOOK_DATA="+data)
	}
	return env
}

// Full data set sizes (the book's Dataset folder), for deciding whether the book's numbers apply.
const (
	fullTrainImages = 10764
	fullTestImages  = 2674
)

// FinetuneOptions tune ComputeFinetuneReference.
type FinetuneOptions struct {
	Schedule Schedule
	// Data holds training_set/ and test_set/ (default: the shipped sample, as in the notebook).
	Data string
	// ImageDir holds the exercise image (default: datasets.PredictionDir()).
	ImageDir string
	// Weights, if set, is the checkpoint to load instead of resolving the ImageNet file.
	Weights *weights.Source
	// Log receives the training's progress lines (nil: discarded).
	Log io.Writer
}

// ComputeFinetuneReference trains Exercise 8.03's classifier the way the solved notebook does —
// VGG16 up to fc2, frozen, Dense(1, sigmoid) initialised with seed 42, Adam, binary
// cross-entropy, accuracy; the book's generators with seed 42; fit_generator with shuffle=False
// — on opt.Data with opt.Schedule, then predicts Image as the book does (raw 0–255 pixels) and
// decides "It is a flower" only for an output of exactly 1.
func ComputeFinetuneReference(ctx context.Context, s *Spec, opt FinetuneOptions) (*Reference, error) {
	if s.Task != TaskFinetune {
		return nil, fmt.Errorf("grade: %s is not a fine-tuning exercise", s.ID)
	}
	if err := opt.Schedule.Validate(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Reference, error) {
		return nil, fmt.Errorf("grade: reference for %s: %w", s.ID, err)
	}
	data := opt.Data
	if data == "" {
		var err error
		if data, err = datasets.SampleDir(); err != nil {
			return fail(err)
		}
	}
	dir := opt.ImageDir
	if dir == "" {
		var err error
		if dir, err = datasets.PredictionDir(); err != nil {
			return fail(err)
		}
	}
	ref := &Reference{Spec: s, Image: filepath.Join(dir, s.Image), Schedule: opt.Schedule, Data: data}
	img, err := kernelext.LoadImg(ref.Image, kernelext.TargetSize(s.TargetSize[0], s.TargetSize[1]))
	if err != nil {
		return fail(err)
	}
	ref.Raw = kernelext.ExpandDims(kernelext.ImgToArray(img), 0)

	src := opt.Weights
	if src == nil {
		fetched, err := weights.Fetch(ctx, s.ImagenetCheckpoint())
		if err != nil {
			return fail(err)
		}
		src = &fetched
	}
	ref.Weights = *src
	b, err := backend.New()
	if err != nil {
		return fail(err)
	}
	ref.Backend = backend.Describe(b)
	vgg, err := applications.New(s.Model, applications.Until("fc2"), applications.WithSeed(42),
		applications.WithBackend(b), applications.WithWeights(src.Path))
	if err != nil {
		return fail(err)
	}
	vgg.AsSequential("sequential_1")
	if err := vgg.SetTrainable(false); err != nil {
		return fail(err)
	}
	if _, err := vgg.AddDense("", 1, "sigmoid"); err != nil {
		return fail(err)
	}
	classifier, err := training.NewModel(b, vgg.Context(), "sequential_1", vgg.Apply)
	if err != nil {
		return fail(err)
	}
	if err := classifier.Compile(training.NewAdam(), training.BinaryCrossentropy, training.Accuracy); err != nil {
		return fail(err)
	}
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	flow := datasets.FlowOptions{TargetSize: [2]int{224, 224}, BatchSize: opt.Schedule.Batch, ClassMode: datasets.Binary,
		Seed: datasets.Seed(42), Out: log}
	train, err := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}.
		FlowFromDirectory(filepath.Join(data, "training_set"), flow)
	if err != nil {
		return fail(err)
	}
	defer train.Close()
	test, err := datasets.ImageDataGenerator{Rescale: 1. / 255}.FlowFromDirectory(filepath.Join(data, "test_set"), flow)
	if err != nil {
		return fail(err)
	}
	defer test.Close()
	if err := datasets.CheckSameClasses(train, test); err != nil {
		return fail(err)
	}
	if err := train.CheckBinary(); err != nil {
		return fail(err)
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	sc := opt.Schedule
	ref.History, err = classifier.Fit(training.NewSequenceGenerator(train, false), training.FitOptions{
		Epochs: sc.Epochs, StepsPerEpoch: sc.Steps,
		ValidationData: training.NewSequenceGenerator(test, false), ValidationSteps: sc.ValSteps,
		Display: training.DisplayLines, LineEvery: max(1, sc.Steps/4), Out: log})
	if err != nil {
		return fail(err)
	}
	if ref.Result, err = classifier.Predict(ref.Raw); err != nil {
		return fail(err)
	}
	if len(ref.Result.Data) != 1 {
		return fail(fmt.Errorf("the classifier's output has shape %s; want (1, 1)", kernelext.TupleString(ref.Result.Shape)))
	}
	ref.Prediction = BookDecision(ref.Result.Data[0])
	ref.BookNote = ref.compareWithBook(train.Samples(), test.Samples())
	return ref, nil
}

// BookDecision is Exercise 8.03's step 11: `if result[0][0] == 1: 'It is a flower' else 'It is a
// car'` — exactly 1, not a threshold.
func BookDecision(result float32) string {
	if result == 1 {
		return "It is a flower"
	}
	return "It is a car"
}

// compareWithBook describes how a book-identical run compares with the book's printed numbers
// ("" when the run is not the book's: other weights, data or schedule).
func (r *Reference) compareWithBook(trainN, testN int) string {
	e := r.Spec.BookExpectation
	if e == nil || !r.Weights.MD5Verified || r.Schedule != BookSchedule || trainN != fullTrainImages || testN != fullTestImages {
		return ""
	}
	var out []error
	for _, v := range e.ValAccuracy {
		got := r.History.Get("val_accuracy")
		if len(got) < v.Epoch {
			out = append(out, fmt.Errorf("the reference run has no val_accuracy for epoch %d", v.Epoch))
			continue
		}
		if d := math.Abs(got[v.Epoch-1] - v.Value); d > v.ATol {
			out = append(out, fmt.Errorf("val_accuracy after epoch %d is %.4f; the book (%s) prints %.4f (±%g)", v.Epoch, got[v.Epoch-1], e.Source, v.Value, v.ATol))
		}
	}
	if e.Prediction != "" && r.Prediction != e.Prediction {
		out = append(out, fmt.Errorf("the prediction is %q; the book prints %q", r.Prediction, e.Prediction))
	}
	if len(out) == 0 {
		return "the reference run matches the book's printed numbers (" + e.Source + ")"
	}
	return "the reference run differs from the book: " + errors.Join(out...).Error()
}
