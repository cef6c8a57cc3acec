package grade

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/weights"
)

// Reference holds the values a correct notebook computes for one exercise on this machine:
// same image file, same weights file, same GoMLX backend as the submissions get.
type Reference struct {
	Spec  *Spec
	Image string // the image file read

	// Raw is the batch before preprocess_input (RGB, 0..255): not compared, only used to say
	// "preprocess_input was not applied" in feedback.
	Raw           *kernelext.Array
	Preprocessed  *kernelext.Array
	Probabilities *kernelext.Array
	Top           [][]kernelext.Prediction

	// Fine-tuning exercises (ComputeFinetuneReference): the reference training run's schedule,
	// data folder and History, the trained classifier's output for Image (the book's raw 0–255
	// pixels) and the book's decision from it.
	Schedule   Schedule
	Data       string
	History    *training.History
	Result     *kernelext.Array
	Prediction string
	// BookNote says how the run compares with the book's printed numbers, when the run is the
	// book's (published weights, full data set, the book's schedule).
	BookNote string

	// Weights is the checkpoint the model loaded; Weights.MD5Verified says whether it is the
	// published ImageNet file (only then does BookExpectation apply).
	Weights weights.Source
	// Backend describes the GoMLX backend that computed Probabilities.
	Backend string
}

// ReferenceOptions tune ComputeReference.
type ReferenceOptions struct {
	// ImageDir holds the exercise images (default: datasets.PredictionDir()).
	ImageDir string
	// Weights, if set, is the checkpoint to load instead of resolving the model's ImageNet file
	// (weights.Fetch: WORKBOOK_WEIGHTS_DIR, then Keras' cache, then a download).
	Weights *weights.Source
	// Model, if set, is used instead of building one (for callers that already hold it).
	Model *applications.Model
}

// ImagenetCheckpoint is the checkpoint file keras.applications loads for the spec's model.
func (s *Spec) ImagenetCheckpoint() string {
	if s.Model == "resnet50" {
		return weights.ResNet50
	}
	return weights.VGG16
}

// ComputeReference computes the reference by calling the workbook's packages directly — the
// pipeline the book's cells run: LoadImg(target_size) → ImgToArray → ExpandDims → PreprocessInput
// → Predict → DecodePredictions(top).
func ComputeReference(ctx context.Context, s *Spec, opt ReferenceOptions) (*Reference, error) {
	ref, err := referenceInput(s, opt.ImageDir)
	if err != nil {
		return nil, err
	}
	model := opt.Model
	if model == nil {
		src := opt.Weights
		if src == nil {
			fetched, err := weights.Fetch(ctx, s.ImagenetCheckpoint())
			if err != nil {
				return nil, fmt.Errorf("grade: reference for %s: %w", s.ID, err)
			}
			src = &fetched
		}
		ref.Weights = *src
		b, err := backend.New()
		if err != nil {
			return nil, fmt.Errorf("grade: reference for %s: %w", s.ID, err)
		}
		if model, err = applications.New(s.Model, applications.WithWeights(src.Path), applications.WithBackend(b)); err != nil {
			return nil, fmt.Errorf("grade: reference for %s: %w", s.ID, err)
		}
	} else if opt.Weights != nil {
		ref.Weights = *opt.Weights
	}
	ref.Backend = backend.Describe(model.Backend())
	probs, err := model.Predict(ref.Preprocessed)
	if err != nil {
		return nil, fmt.Errorf("grade: reference for %s: %w", s.ID, err)
	}
	return ref, ref.SetProbabilities(probs)
}

// ReferenceInput computes the image part of the reference (Raw, Preprocessed); the caller
// supplies the model output with SetProbabilities (e.g. from a cache) and fills Weights and
// Backend.
func ReferenceInput(s *Spec, imageDir string) (*Reference, error) { return referenceInput(s, imageDir) }

func referenceInput(s *Spec, dir string) (*Reference, error) {
	if dir == "" {
		var err error
		if dir, err = datasets.PredictionDir(); err != nil {
			return nil, err
		}
	}
	ref := &Reference{Spec: s, Image: filepath.Join(dir, s.Image)}
	img, err := kernelext.LoadImg(ref.Image, kernelext.TargetSize(s.TargetSize[0], s.TargetSize[1]))
	if err != nil {
		return nil, fmt.Errorf("grade: reference for %s: %w", s.ID, err)
	}
	ref.Raw = kernelext.ExpandDims(kernelext.ImgToArray(img), 0)
	ref.Preprocessed = kernelext.PreprocessInput(ref.Raw)
	return ref, nil
}

// SetProbabilities sets the model output (shape (1, 1000)) and decodes its top classes.
func (r *Reference) SetProbabilities(probs *kernelext.Array) error {
	if len(probs.Shape) != 2 || probs.Shape[0] != 1 || probs.Shape[1] != kernelext.NumClasses || len(probs.Data) != kernelext.NumClasses {
		return fmt.Errorf("grade: reference for %s: the model output has shape %s; want (1, %d)", r.Spec.ID, kernelext.TupleString(probs.Shape), kernelext.NumClasses)
	}
	r.Probabilities = probs
	var err error
	if r.Top, err = kernelext.DecodePredictions(probs, r.Spec.Top); err != nil {
		return fmt.Errorf("grade: reference for %s: %w", r.Spec.ID, err)
	}
	return nil
}

// CheckBook compares the reference with the book's printed predictions. It does nothing (nil)
// unless the weights are the published ImageNet file; then a mismatch is an error, because a
// reference that disagrees with Keras would grade every student wrongly.
func (r *Reference) CheckBook() (applied bool, err error) {
	e := r.Spec.BookExpectation
	if e == nil || !r.Weights.MD5Verified || r.Spec.Task == TaskFinetune {
		return false, nil
	}
	if len(r.Top) != 1 || len(r.Top[0]) < len(e.Top) {
		return true, fmt.Errorf("grade: %s: the reference has %d decoded rows; the book expectation needs 1 row of %d", r.Spec.ID, len(r.Top), len(e.Top))
	}
	for i, want := range e.Top {
		got := r.Top[0][i]
		ok := got.WNID == want.WNID && got.Label == want.Label
		if want.MinScore > 0 {
			ok = ok && float64(got.Score) >= want.MinScore
		} else {
			ok = ok && math.Abs(float64(got.Score)-want.Score) <= want.ATol
		}
		if !ok {
			score := fmt.Sprintf("%v ± %v", want.Score, want.ATol)
			if want.MinScore > 0 {
				score = fmt.Sprintf("at least %v", want.MinScore)
			}
			return true, fmt.Errorf("grade: %s: with the published ImageNet weights the reference's rank %d is %s; the book (%s) has %s (%s) with score %s",
				r.Spec.ID, i+1, got, e.Source, want.Label, want.WNID, score)
		}
	}
	return true, nil
}
