package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// runCLI runs the dispatcher in-process and returns the exit status and what was printed.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	stdout, stderr = &out, &errOut
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := run(args)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	if code != 0 || !strings.Contains(out, "preprocess") || !strings.Contains(out, "help") {
		t.Errorf("help: status %d, output:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "help", "preprocess")
	if code != 0 || !strings.Contains(out, "-model") || !strings.Contains(out, "-out") {
		t.Errorf("help preprocess: status %d, output:\n%s", code, out)
	}
	if code, _, errOut := runCLI(t); code != 2 || !strings.Contains(errOut, "Commands:") {
		t.Errorf("no arguments: status %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: status %d, stderr:\n%s", code, errOut)
	}
}

func TestPreprocessUsageErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.npy")
	img := filepath.Join("..", "..", "kernelext", "testdata", "images", "small_64.jpg")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"preprocess", "--out", out, img}, 2, "--model is required"},
		{[]string{"preprocess", "--model", "inception", "--out", out, img}, 2, `unknown model "inception"`},
		{[]string{"preprocess", "--model", "vgg16", img}, 2, "--out is required"},
		{[]string{"preprocess", "--model", "vgg16", "--out", out}, 2, "no images given"},
		{[]string{"preprocess", "--model", "vgg16", "--bogus", "--out", out, img}, 2, "flag provided but not defined"},
		{[]string{"preprocess", "--model", "vgg16", "--out", out, img, "missing.jpg"}, 1, `kernelext: load "missing.jpg": no such file`},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run left an output file")
	}
}

// TestPreprocessMatchesKeras runs "workbook preprocess" and compares the batch it writes,
// bit for bit, with the one the real Keras functions (keras-preprocessing's load_img and
// img_to_array, keras-applications' preprocess_input, through kernelext/testdata/keras_libs.py) build.
func TestPreprocessMatchesKeras(t *testing.T) {
	py := testenv.Python(t, "numpy", "PIL", "keras_preprocessing", "keras_applications")
	images := []string{
		filepath.Join("..", "..", "kernelext", "testdata", "images", "odd_420.jpg"),
		filepath.Join("..", "..", "kernelext", "testdata", "images", "rgba.png"),
		filepath.Join("..", "..", "kernelext", "testdata", "images", "palette_trns.gif"),
	}
	book := filepath.Join("..", "..", "..", "shared", "data", "keras-workshop-ch08", "Prediction")
	for _, name := range []string{"pizza.jpg", "test_image_3.jpg"} {
		if _, err := os.Stat(filepath.Join(book, name)); err == nil {
			images = append(images, filepath.Join(book, name))
		} else {
			t.Logf("book image %s not available; testing without it", name)
		}
	}
	for _, model := range []string{"vgg16", "resnet50"} {
		out := filepath.Join(t.TempDir(), "batch.npy")
		code, stdoutText, errOut := runCLI(t, append([]string{"preprocess", "--model", model, "--out", out}, images...)...)
		if code != 0 {
			t.Fatalf("status %d: %s", code, errOut)
		}
		if !strings.Contains(stdoutText, "(5, 224, 224, 3)") && !strings.Contains(stdoutText, "(3, 224, 224, 3)") {
			t.Errorf("unexpected report: %s", stdoutText)
		}
		script := `
import sys, os
import numpy as np
sys.path.insert(0, os.path.join('..', '..', 'kernelext', 'testdata'))
from keras_libs import load_img, img_to_array, preprocess_input
want = np.vstack([preprocess_input(np.expand_dims(img_to_array(load_img(p, target_size=(224, 224))), axis=0))
                  for p in sys.argv[2:]])
got = np.load(sys.argv[1])
assert got.dtype == np.float32 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
print(want.shape, diff.max(), int((got.view(np.uint32) != want.view(np.uint32)).sum()))
`
		cmd := exec.Command(py, append([]string{"-c", script, out}, images...)...)
		var pyErr bytes.Buffer
		cmd.Stderr = &pyErr
		res, err := cmd.Output()
		if err != nil {
			t.Fatalf("oracle: %v\n%s", err, pyErr.String())
		}
		fields := strings.Fields(string(res))
		t.Logf("%s: shape, max abs diff, values differing in bits: %s", model, strings.TrimSpace(string(res)))
		if len(fields) < 2 || fields[len(fields)-2] != "0.0" || fields[len(fields)-1] != "0" {
			t.Errorf("%s: batch differs from Keras: %s", model, res)
		}
	}
}
