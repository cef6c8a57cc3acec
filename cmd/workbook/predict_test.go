package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
)

func TestSummaryCommand(t *testing.T) {
	golden := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "kernelext", "applications", "testdata", "summary_"+name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		args   []string
		golden string
	}{
		{[]string{"summary", "--model", "vgg16"}, "vgg16"},
		{[]string{"summary", "--model", "resnet50"}, "resnet50"},
		{[]string{"summary", "--model", "resnet50", "--include-top=false"}, "resnet50_notop"},
		{[]string{"summary", "--model", "vgg16", "--include-top=false", "--pooling", "avg"}, "vgg16_notop_avg"},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != 0 || out != golden(c.golden) {
			t.Errorf("%v: status %d, stderr %q, output matches golden %s: %v", c.args, code, errOut, c.golden,
				out == golden(c.golden))
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"summary"}, "--model is required"},
		{[]string{"summary", "--model", "vgg19"}, `unknown model "vgg19"`},
		{[]string{"summary", "--model", "vgg16", "--pooling", "avg"}, "--include-top=false"},
		{[]string{"summary", "--model", "vgg16", "--include-top=false", "--pooling", "mean"}, `"mean"`},
	} {
		if code, _, errOut := runCLI(t, c.args...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: status %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

func TestPredictUsageErrors(t *testing.T) {
	img := filepath.Join("..", "..", "kernelext", "testdata", "images", "small_64.jpg")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"predict", img}, 2, "--model is required"},
		{[]string{"predict", "--model", "inception", img}, 2, `unknown model "inception"`},
		{[]string{"predict", "--model", "vgg16"}, 2, "no images given"},
		{[]string{"predict", "--model", "vgg16", "--top", "0", img}, 2, "--top must be at least 1"},
		{[]string{"predict", "--model", "vgg16", "--weights", "", img}, 2, "--weights"},
		{[]string{"predict", "--model", "vgg16", "--weights", "missing.h5", img}, 1, "missing.h5"},
		{[]string{"predict", "--model", "vgg16", "missing.jpg"}, 1, `kernelext: load "missing.jpg"`},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestPredictCommand runs "workbook predict" with the reference ResNet50 checkpoint (seeded
// random weights) on two book images and compares the saved probabilities with PyTorch's for
// the same images, then checks the printed decode_predictions and top-1 lines against those
// probabilities.
func TestPredictCommand(t *testing.T) {
	testenv.Long(t, "runs ResNet50 on the pure-Go backend")
	dir := reference.Dir(t)
	manifest, err := reference.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	book := filepath.Join("..", "..", "..", "shared", "data", "keras-workshop-ch08", "Prediction")
	names := []string{"pizza.jpg", "test_image_3.jpg"}
	var images []string
	var rows []int
	for _, name := range names {
		p := filepath.Join(book, name)
		if _, err := os.Stat(p); err != nil {
			testenv.SkipMissing(t, "book image %s not available", p)
		}
		images = append(images, p)
		row := -1
		for i, im := range manifest.Images {
			if im.Name == name {
				row = i
			}
		}
		if row < 0 {
			t.Fatalf("%s not in the reference manifest", name)
		}
		rows = append(rows, row)
	}
	_, refData, err := npy.ReadFile(filepath.Join(dir, reference.ResNet50Probs))
	if err != nil {
		t.Fatal(err)
	}

	probsFile := filepath.Join(t.TempDir(), "probs.npy")
	args := append([]string{"predict", "--model", "resnet50", "--weights", filepath.Join(dir, reference.ResNet50Weights),
		"--top", "3", "--save-probs", probsFile}, images...)
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("status %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "weights: "+filepath.Join(dir, reference.ResNet50Weights)) || !strings.Contains(errOut, "backend: ") {
		t.Errorf("stderr does not say which weights and backend were used:\n%s", errOut)
	}
	shape, got, err := npy.ReadFile(probsFile)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(shape) != fmt.Sprint([]int{len(images), 1000}) {
		t.Fatalf("saved probabilities have shape %v", shape)
	}
	maxDiff := 0.0
	for i, row := range rows {
		for j := 0; j < 1000; j++ {
			d := float64(got[i*1000+j]) - float64(refData[row*1000+j])
			maxDiff = max(maxDiff, d, -d)
		}
	}
	t.Logf("max |p_cli - p_torch| = %.3g", maxDiff)
	if maxDiff > 1e-5 {
		t.Errorf("saved probabilities differ from the reference by %.3g", maxDiff)
	}

	// The text output: per image its name, decode_predictions(top=3) as IPython prints it, and
	// the book's top-1 line; all derived here from the saved probabilities.
	probs := &kernelext.Array{Shape: shape, Data: got}
	decoded := kernelext.MustDecodePredictions(probs, 3)
	var want strings.Builder
	for i := range images {
		if i > 0 {
			want.WriteString("\n")
		}
		fmt.Fprintf(&want, "%s:\n%s\n%s\n", images[i], kernelext.FormatPredictions([][]kernelext.Prediction{decoded[i]}),
			top1Line(decoded[i][0]))
		refTop := argmax(refData[rows[i]*1000 : (rows[i]+1)*1000])
		if !strings.Contains(decoded[i][0].String(), fmt.Sprintf("'%s'", classLabel(t, refTop))) {
			t.Errorf("image %s: top-1 %v, reference top-1 class %d", images[i], decoded[i][0], refTop)
		}
	}
	if out != want.String() {
		t.Errorf("output:\n%s\nwant:\n%s", out, want.String())
	}

	code, out, errOut = runCLI(t, append([]string{"predict", "--model", "resnet50", "--weights",
		filepath.Join(dir, reference.ResNet50Weights), "--top", "2", "--json"}, images[:1]...)...)
	if code != 0 {
		t.Fatalf("--json: status %d: %s", code, errOut)
	}
	var js []predictionJSON
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(js) != 1 || len(js[0].Predictions) != 2 || js[0].Predictions[0].Label != decoded[0][0].Label ||
		js[0].Top1 != top1Line(decoded[0][0]) {
		t.Errorf("--json output %+v", js)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func classLabel(t *testing.T, class int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "data", "imagenet_class_index.json"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join("..", "..", "kernelext", "imagenet_class_index.json"))
	}
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string][2]string
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx[fmt.Sprint(class)][1]
}

// TestTop1LineMatchesPython compares the book's print('%s (%.2f%%)' % (label, score*100)),
// evaluated by Python on NumPy float32 scores, with top1Line.
func TestTop1LineMatchesPython(t *testing.T) {
	py := testenv.Python(t, "numpy")
	// Scores whose percentage sits on or near a rounding boundary, plus the book's own.
	scores := []float32{0.9768050, 0.30517, 0.80126, 0.84334, 0.5, 0.123449996, 0.12345, 0.99995,
		0.00005, 0.000049999, 1, 0, 0.0123450005, 0.6789499}
	for i := 1; i < 200; i++ {
		scores = append(scores, float32(i)/199*0.9999+float32(i%7)*1e-7)
	}
	var args []string
	for _, s := range scores {
		args = append(args, fmt.Sprintf("%.9g", s))
	}
	script := `
import sys
import numpy as np
for a in sys.argv[1:]:
    s = np.float32(a)
    print('%s (%.2f%%)' % ('pizza', s * 100))
`
	out, err := exec.Command(py, append([]string{"-c", script}, args...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(want) != len(scores) {
		t.Fatalf("python printed %d lines for %d scores", len(want), len(scores))
	}
	for i, s := range scores {
		if got := top1Line(kernelext.Prediction{Label: "pizza", Score: s}); got != want[i] {
			t.Errorf("score %.9g: %q, Python %q", s, got, want[i])
		}
	}
}
