package datasets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// RootEnv names the environment variable that, when set, says where the workbook repository
// is (the folder holding go.mod and datasets/). Notebooks run with notebooks/ as working
// directory and GoNB builds them elsewhere, so a path relative to the working directory is not
// enough to find the shipped images.
const RootEnv = "WORKBOOK_ROOT"

const (
	sampleFolder     = "cars-flowers-sample"
	predictionFolder = "prediction"
)

// Root returns the workbook repository root. It looks, in order, at $WORKBOOK_ROOT (an error if
// set but wrong: an explicit setting is never second-guessed), at the folder this package's
// source was compiled from (works for go test, go run and GoNB, including from the module
// cache), and at the working directory and its parents.
func Root() (string, error) {
	if r := os.Getenv(RootEnv); r != "" {
		if !isWorkbookRoot(r) {
			return "", fmt.Errorf("datasets: %s=%q does not contain datasets/%s", RootEnv, r, sampleFolder)
		}
		return filepath.Abs(r)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if r := filepath.Dir(filepath.Dir(file)); isWorkbookRoot(r) {
			return r, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("datasets: find the workbook root: %w", err)
	}
	for d := wd; ; {
		if isWorkbookRoot(d) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "", errors.New("datasets: cannot find the workbook folder (datasets/" + sampleFolder +
		") from the package source or the working directory; set " + RootEnv)
}

func isWorkbookRoot(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "datasets", sampleFolder))
	return err == nil && st.IsDir()
}

// SampleDir returns the shipped sample of the cars-and-flowers data set, a folder holding
// training_set/{car,flower} (40 images each) and test_set/{car,flower} (16 each), 128×128
// JPEGs from the book's Chapter 8 data.
func SampleDir() (string, error) { return shipped(sampleFolder) }

// PredictionDir returns the folder of the book's single images for prediction (pizza.jpg,
// stick_insect.jpg, test_image_1.jpg … test_image_4.jpg, gf.jpg).
func PredictionDir() (string, error) { return shipped(predictionFolder) }

// MustSampleDir is SampleDir for notebook cells: it panics on error.
func MustSampleDir() string { return must1(SampleDir()) }

// MustPredictionDir is PredictionDir for notebook cells: it panics on error.
func MustPredictionDir() string { return must1(PredictionDir()) }

func shipped(name string) (string, error) {
	r, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(r, "datasets", name), nil
}

func must1(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
