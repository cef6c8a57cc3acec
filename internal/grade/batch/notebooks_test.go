package batch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/grade"
)

// Synthetic submissions. Until the course's notebooks exist, the tests grade small notebooks
// written from this template: the setup cell, then cells that declare the contract variables
// (transformedImage, yPred, label) at the top level the way the book's steps compute them, and
// print the top class as the book does. Each mistake or attack is a textual variant of it.

const cellImage = `import (
	"path/filepath"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
)

var newImage = kernelext.MustLoadImg(filepath.Join(datasets.MustPredictionDir(), "IMAGE"), kernelext.TargetSize(224, 224))
var transformedImage = kernelext.PreprocessInput(kernelext.ExpandDims(kernelext.ImgToArray(newImage), 0))

%%
fmt.Println(transformedImage.ShapeString())
`

const cellPredict = `import (
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

var yPred = predict(transformedImage)
var label = kernelext.MustDecodePredictions(yPred, 5)

// predict runs the model once per input; the next cells, which declare yPred again, read the
// cached result.
func predict(x *kernelext.Array) *kernelext.Array {
	probs := nbcache.MustCached("test-submission/CTOR/"+nbcache.HashFloat32s(x.Data), func() ([]float32, error) {
		m, err := applications.CTOR()
		if err != nil {
			return nil, err
		}
		y, err := m.Predict(x)
		if err != nil {
			return nil, err
		}
		return y.Data, nil
	})
	return &kernelext.Array{Shape: []int{x.Shape[0], len(probs) / x.Shape[0]}, Data: probs}
}

%%
fmt.Println(yPred.ShapeString())
`

const cellPrint = `%%
decodedLabel := label[0][0]
fmt.Printf("%s (%.2f%%)\n", decodedLabel.Label, float64(decodedLabel.Score)*100)
`

// solvedCells returns a correct notebook's cells for spec.
func solvedCells(spec *grade.Spec) []string {
	ctor := "VGG16"
	if spec.Model == "resnet50" {
		ctor = "ResNet50"
	}
	return []string{
		"# " + spec.Title,
		SetupCell,
		strings.ReplaceAll(cellImage, "IMAGE", spec.Image),
		strings.ReplaceAll(cellPredict, "CTOR", ctor),
		cellPrint,
	}
}

// variant applies string replacements to the cells; every old string must occur.
func variant(t *testing.T, cells []string, pairs ...string) []string {
	t.Helper()
	out := append([]string(nil), cells...)
	for i := 0; i < len(pairs); i += 2 {
		found := false
		for j := range out {
			if strings.Contains(out[j], pairs[i]) {
				out[j] = strings.ReplaceAll(out[j], pairs[i], pairs[i+1])
				found = true
			}
		}
		if !found {
			t.Fatalf("variant: %q is in no cell", pairs[i])
		}
	}
	return out
}

// notebookJSON writes cells as an nbformat 4.5 notebook ("# " cells become markdown). outputs,
// if given, are stored in the last code cell (to check that saved outputs are never graded).
func notebookJSON(cells []string, outputs ...string) []byte {
	var cs []map[string]any
	for i, c := range cells {
		cell := map[string]any{"id": fmt.Sprintf("cell-%d", i+1), "metadata": map[string]any{}, "source": c}
		if strings.HasPrefix(c, "# ") {
			cell["cell_type"] = "markdown"
		} else {
			cell["cell_type"] = "code"
			cell["outputs"] = []any{}
			cell["execution_count"] = nil
		}
		cs = append(cs, cell)
	}
	if len(outputs) > 0 {
		last := cs[len(cs)-1]
		var outs []any
		for _, o := range outputs {
			outs = append(outs, map[string]any{"output_type": "stream", "name": "stdout", "text": o})
		}
		last["outputs"] = outs
		last["execution_count"] = 4
	}
	b, err := json.MarshalIndent(map[string]any{
		"nbformat": 4, "nbformat_minor": 5, "cells": cs,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "gonb", "display_name": "Go (gonb)", "language": "go"}},
	}, "", " ")
	if err != nil {
		panic(err)
	}
	return b
}

func writeNotebook(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name+".ipynb")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
