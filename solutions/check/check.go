// Package check lets students check their Chapter 8 notebooks as they go, with the same visible
// checks the instructor's grader runs (solutions/checks):
//
//	import "github.com/transfer-learning-go/workbook/solutions/check"
//
//	%%
//	check.Exercise801(transformedImage, yPred, label)
//	check.Exercise803(history, result, prediction)
//
// prints, for each visible check, whether it passes and, if not, what was found and what to do.
// Hidden checks are never run or described here; the report only says how many there are.
//
// The reference values are computed in the notebook by the workbook's own packages, on this
// machine, with the same weights file the notebook's model loads: the first call runs the model
// once (a few seconds on the CPU), later calls read the result from the notebook cache
// (kernelext/nbcache).
package check

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/solutions/checks"
	"github.com/transfer-learning-go/workbook/weights"
)

// Output receives the printed report (os.Stdout: the notebook cell's output).
var Output io.Writer = os.Stdout

// Vars maps the notebook's variable names to their values.
type Vars map[string]any

// Report is the outcome of a self-check.
type Report struct {
	Exercise string
	Passed   int // visible checks that pass
	Visible  int // visible checks run
	Hidden   int // checks only the instructor's grader runs
	// Lines are the printed lines, one per visible check plus a summary.
	Lines []string
}

// String is the report as printed.
func (r *Report) String() string { return strings.Join(r.Lines, "\n") + "\n" }

// Exercise801 checks Exercise 8.01 (VGG16, pizza.jpg).
func Exercise801(transformedImage, yPred *kernelext.Array, label [][]kernelext.Prediction) *Report {
	return mustRun("8.01", transformedImage, yPred, label)
}

// Activity801 checks Activity 8.01 (VGG16, test_image_1.jpg).
func Activity801(transformedImage, yPred *kernelext.Array, label [][]kernelext.Prediction) *Report {
	return mustRun("A8.01", transformedImage, yPred, label)
}

// Exercise802 checks Exercise 8.02 (VGG16, stick_insect.jpg).
func Exercise802(transformedImage, yPred *kernelext.Array, label [][]kernelext.Prediction) *Report {
	return mustRun("8.02", transformedImage, yPred, label)
}

// Exercise804 checks Exercise 8.04 (ResNet50, test_image_3.jpg).
func Exercise804(transformedImage, yPred *kernelext.Array, label [][]kernelext.Prediction) *Report {
	return mustRun("8.04", transformedImage, yPred, label)
}

// Activity802 checks Activity 8.02 (ResNet50, test_image_4.jpg).
func Activity802(transformedImage, yPred *kernelext.Array, label [][]kernelext.Prediction) *Report {
	return mustRun("A8.02", transformedImage, yPred, label)
}

// Exercise803 checks Exercise 8.03 (fine-tuning VGG16 on cars and flowers): history is what Fit
// returned, result the classifier's output for test_image_2.jpg, prediction the book's sentence.
// It checks their form; comparing them with a reference training run is left to the grader,
// as that run would cost as long as the notebook's own training.
func Exercise803(history *training.History, result *kernelext.Array, prediction string) *Report {
	r, err := Run("8.03", Vars{"history": history, "result": result, "prediction": prediction})
	if err != nil {
		panic(err)
	}
	return r
}

func mustRun(id string, transformedImage, yPred *kernelext.Array, label [][]kernelext.Prediction) *Report {
	r, err := Run(id, Vars{"transformedImage": transformedImage, "yPred": yPred, "label": label})
	if err != nil {
		panic(err)
	}
	return r
}

// Run runs the visible checks of the exercise called id ("8.01", "A8.01", "exercise-8.01", ...)
// on vars, prints the report to Output and returns it. The error is for problems of the checker
// itself (unknown exercise, weights or image missing), never for a failing check.
func Run(id string, vars Vars) (*Report, error) {
	spec, err := checks.Find(id)
	if err != nil {
		return nil, err
	}
	finetune := spec.Task == grade.TaskFinetune
	ref := &grade.Reference{Spec: spec}
	if !finetune {
		if ref, err = computeReference(spec); err != nil {
			return nil, err
		}
	}
	r := &Report{Exercise: spec.ID}
	r.Lines = append(r.Lines, fmt.Sprintf("%s — self-check", spec.Title))
	for i := range spec.Checks {
		c := &spec.Checks[i]
		if c.Hidden {
			r.Hidden++
			continue
		}
		if c.Kind == grade.KindOutputContains {
			// Printed output belongs to other cells; only the grader sees all of it.
			r.Lines = append(r.Lines, fmt.Sprintf("  · %s (checked when graded)", c.Name))
			continue
		}
		if c.NeedsTraining() && c.Kind != grade.KindHistoryKeys {
			r.Lines = append(r.Lines, fmt.Sprintf("  · %s (checked when graded, against a reference training run)", c.Name))
			continue
		}
		r.Visible++
		oc := grade.Evaluate(c, valueOf(c.Variable, vars), ref, "")
		if oc.Passed {
			r.Passed++
			r.Lines = append(r.Lines, fmt.Sprintf("  ✓ %s", c.Name))
			continue
		}
		r.Lines = append(r.Lines, fmt.Sprintf("  ✗ %s\n      found: %s\n      to do: %s", c.Name, oc.Detail, c.Feedback))
	}
	summary := fmt.Sprintf("%d of %d visible checks pass.", r.Passed, r.Visible)
	if r.Hidden > 0 {
		summary += fmt.Sprintf(" %d hidden check(s) are run by your instructor.", r.Hidden)
	}
	r.Lines = append(r.Lines, summary)
	if !finetune && !ref.Weights.MD5Verified {
		r.Lines = append(r.Lines, "  (the reference uses the same stand-in weights as your notebook, not the ImageNet ones: values differ from the book)")
	}
	fmt.Fprint(Output, r.String())
	return r, nil
}

// valueOf turns a notebook variable into what the checks read, as the grader's export does.
func valueOf(name string, vars Vars) *grade.Value {
	x, ok := vars[name]
	if !ok {
		return &grade.Value{Name: name, Missing: name + " was not passed to the self-check"}
	}
	v := &grade.Value{Name: name, Type: fmt.Sprintf("%T", x)}
	switch t := x.(type) {
	case *kernelext.Array:
		v.Array = t
	case kernelext.Array:
		v.Array = &t
	case [][]kernelext.Prediction:
		v.Predictions = t
	case *training.History:
		v.History = t
	case string:
		v.Text = t
	}
	return v
}

// computeReference computes the exercise's reference, the model's prediction cached across cells.
func computeReference(spec *grade.Spec) (*grade.Reference, error) {
	ctx := context.Background()
	src, err := weights.Fetch(ctx, spec.ImagenetCheckpoint())
	if err != nil {
		return nil, err
	}
	plan, err := backend.PlanFromEnvironment()
	if err != nil {
		return nil, err
	}
	ref, err := grade.ReferenceInput(spec, "")
	if err != nil {
		return nil, err
	}
	ref.Weights = src
	// Through the notebook's own prediction cache: a notebook whose model cell predicted the
	// reference's input (a correct one) already holds the answer, and the check does not load
	// the model a second time.
	model, err := applications.NewLazy(spec.Model)
	if err != nil {
		return nil, err
	}
	probs, err := model.PredictCached(ref.Preprocessed)
	if err != nil {
		return nil, err
	}
	ref.Backend = plan.Config
	return ref, ref.SetProbabilities(probs)
}
