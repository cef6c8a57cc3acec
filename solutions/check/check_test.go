package check

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/solutions/checks"
	"github.com/transfer-learning-go/workbook/weights"
)

// The self-check passes a correct notebook's variables, explains a wrong one's, and never
// mentions a hidden check beyond their number.
func TestSelfCheck(t *testing.T) {
	t.Setenv(weights.WeightsDirEnv, reference.Dir(t))
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv(nbcache.EnvDir, t.TempDir())
	var out bytes.Buffer
	Output = &out
	defer func() { Output = os.Stdout }()

	// The notebook's computation, as Exercise 8.04's cells do it.
	img, err := kernelext.LoadImg(filepath.Join(datasets.MustPredictionDir(), "test_image_3.jpg"), kernelext.TargetSize(224, 224))
	if err != nil {
		t.Fatal(err)
	}
	x := kernelext.PreprocessInput(kernelext.ExpandDims(kernelext.ImgToArray(img), 0))
	src, err := weights.Fetch(context.Background(), weights.ResNet50)
	if err != nil {
		t.Fatal(err)
	}
	m, err := applications.ResNet50(applications.WithWeights(src.Path))
	if err != nil {
		t.Fatal(err)
	}
	yPred, err := m.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	label := kernelext.MustDecodePredictions(yPred, 5)

	r := Exercise804(x, yPred, label)
	if r.Passed != r.Visible || r.Visible != 4 || r.Hidden != 2 {
		t.Errorf("correct variables: %+v\n%s", r, out.String())
	}
	good := out.String()
	if !strings.Contains(good, "4 of 4 visible checks pass. 2 hidden check(s) are run by your instructor.") {
		t.Errorf("summary:\n%s", good)
	}

	out.Reset()
	r = Exercise804(kernelext.ExpandDims(kernelext.ImgToArray(img), 0), yPred, kernelext.MustDecodePredictions(yPred, 1))
	bad := out.String()
	if r.Passed != 2 || !strings.Contains(bad, "before preprocess_input") || !strings.Contains(bad, "lists 1 class;") {
		t.Errorf("wrong variables: %+v\n%s", r, bad)
	}

	t.Logf("correct:\n%s\nwrong:\n%s", good, bad)
	spec, err := checks.Find("8.04")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range spec.Checks {
		if !c.Hidden {
			continue
		}
		for _, s := range []string{c.ID, c.Name, c.Feedback} {
			if strings.Contains(good+bad, s) {
				t.Errorf("the self-check reveals hidden check %s: %q", c.ID, s)
			}
		}
	}
	if _, err := Run("9.99", nil); err == nil {
		t.Error("Run accepted an unknown exercise")
	}
}

// Exercise 8.03's self-check needs no training: it checks the variables' form, says which
// checks wait for the grader's reference run, and keeps the hidden ones hidden.
func TestSelfCheckExercise803(t *testing.T) {
	var out bytes.Buffer
	Output = &out
	defer func() { Output = os.Stdout }()
	h := &training.History{Epoch: []int{0}, Names: []string{"loss", "accuracy", "val_loss", "val_accuracy"},
		Value: map[string][]float64{"loss": {0.55}, "accuracy": {0.71}, "val_loss": {0.33}, "val_accuracy": {0.86}}}
	result := &kernelext.Array{Shape: []int{1, 1}, Data: []float32{0}}
	r := Exercise803(h, result, "It is a car")
	good := out.String()
	if r.Passed != r.Visible || r.Visible != 3 || r.Hidden != 2 ||
		!strings.Contains(good, "val_accuracy after the first epoch agrees with the reference run to one significant digit (checked when graded, against a reference training run)") {
		t.Errorf("correct variables: %+v\n%s", r, good)
	}
	out.Reset()
	noVal := &training.History{Epoch: []int{0}, Names: []string{"loss", "accuracy"}, Value: map[string][]float64{"loss": {0.55}, "accuracy": {0.71}}}
	r = Exercise803(noVal, &kernelext.Array{Shape: []int{1}, Data: []float32{0}}, "car")
	bad := out.String()
	if r.Passed != 0 || !strings.Contains(bad, `has no "val_loss" or "val_accuracy"`) || !strings.Contains(bad, "has shape (1,); expected (1, 1)") ||
		!strings.Contains(bad, `prediction is "car"`) {
		t.Errorf("wrong variables: %+v\n%s", r, bad)
	}
	t.Logf("correct:\n%s\nwrong:\n%s", good, bad)
	spec, err := checks.Find("8.03")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range spec.Checks {
		if c.Hidden && (strings.Contains(good+bad, c.Name) || strings.Contains(good+bad, c.Feedback)) {
			t.Errorf("the self-check reveals hidden check %s", c.ID)
		}
	}
}
