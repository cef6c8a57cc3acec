package grade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/weights"
)

// Schedule is a fine-tuning run's length; Exercise 8.03 is defined once, in training.
type Schedule = training.Schedule

// The book's schedule and the notebook's WORKBOOK_QUICK=1 one.
var (
	BookSchedule  = training.BookSchedule
	QuickSchedule = training.QuickSchedule
)

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
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	// The run the solved notebook makes (training.Exercise803), as fast as the command's.
	f := training.Exercise803(opt.Schedule)
	f.Weights, f.Data, f.Out = src.Path, data, log
	f.Display, f.LineEvery = training.DisplayLines, max(1, opt.Schedule.Steps/4)
	run, err := f.Run()
	if err != nil {
		return fail(err)
	}
	if b, err := backend.New(); err == nil {
		ref.Backend = backend.Describe(b)
	}
	ref.History = run.History
	if ref.Result, err = run.Model.Predict(ref.Raw); err != nil {
		return fail(err)
	}
	if len(ref.Result.Data) != 1 {
		return fail(fmt.Errorf("the classifier's output has shape %s; want (1, 1)", kernelext.TupleString(ref.Result.Shape)))
	}
	ref.Prediction = BookDecision(ref.Result.Data[0])
	ref.BookNote = ref.compareWithBook(run.TrainSamples, run.TestSamples)
	return ref, nil
}

// BookDecision is Exercise 8.03's step 11 (training.BookDecision).
func BookDecision(result float32) string { return training.BookDecision(result) }

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
