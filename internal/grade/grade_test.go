package grade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/kernelext"
)

const validSpec = `{
  "id": "9.99", "aliases": ["exercise-9.99"], "title": "Test", "model": "vgg16", "image": "pizza.jpg",
  "target_size": [224, 224], "top": 2,
  "checks": [
    {"id": "x-shape", "name": "shape", "points": 1, "kind": "shape-equal", "variable": "x", "shape": [1, 2, 2, 3], "feedback": "f"},
    {"id": "x-values", "name": "values", "points": 2, "kind": "array-equal", "variable": "x", "reference": "preprocessed", "feedback": "f"},
    {"id": "y-close", "name": "close", "points": 1, "kind": "allclose", "variable": "y", "reference": "probabilities", "rtol": 1e-5, "atol": 1e-8, "hidden": true, "feedback": "f"},
    {"id": "top", "name": "top", "points": 1, "kind": "top5-equal", "variable": "label", "reference": "top", "rtol": 1e-5, "atol": 1e-8, "feedback": "f"},
    {"id": "print", "name": "print", "points": 1, "kind": "output-contains", "pattern": "(?m)^\\s*{{label 0}} \\({{percent 0}}%\\)\\s*$", "example": "{{label 0}} ({{percent 0}}%)", "hidden": true, "feedback": "f"}
  ]
}`

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(validSpec))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Variables(); strings.Join(got, ",") != "x,y,label" {
		t.Errorf("Variables() = %v", got)
	}
	if s.TotalPoints() != 6 || !s.Matches("EXERCISE-9.99") || s.Matches("9.9") {
		t.Errorf("TotalPoints %v, Matches wrong", s.TotalPoints())
	}
	bad := map[string][2]string{
		"unknown field":   {`"top": 2,`, `"top": 2, "tolerance": 1,`},
		"unknown kind":    {`"kind": "shape-equal"`, `"kind": "shape-equals"`},
		"no feedback":     {`"shape": [1, 2, 2, 3], "feedback": "f"`, `"shape": [1, 2, 2, 3], "feedback": ""`},
		"duplicate id":    {`"id": "x-values"`, `"id": "x-shape"`},
		"bad reference":   {`"reference": "preprocessed"`, `"reference": "logits"`},
		"zero tolerance":  {`"rtol": 1e-5, "atol": 1e-8, "hidden"`, `"hidden"`},
		"bad template":    {`{{label 0}} \\(`, `{{label 0 \\(`},
		"bad model":       {`"model": "vgg16"`, `"model": "vgg19"`},
		"image with path": {`"image": "pizza.jpg"`, `"image": "../pizza.jpg"`},
		"no points":       {`"points": 2`, `"points": 0`},
	}
	for name, r := range bad {
		if !strings.Contains(validSpec, r[0]) {
			t.Fatalf("%s: %q not in the spec", name, r[0])
		}
		if _, err := ParseSpec([]byte(strings.Replace(validSpec, r[0], r[1], 1))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// testRef is a small hand-made reference: a (1, 2, 2, 3) image and three classes.
func testRef(t *testing.T) *Reference {
	s, err := ParseSpec([]byte(validSpec))
	if err != nil {
		t.Fatal(err)
	}
	raw := &kernelext.Array{Shape: []int{1, 2, 2, 3}, Data: []float32{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}}
	ref := &Reference{Spec: s, Raw: raw, Preprocessed: kernelext.PreprocessInput(raw)}
	probs := kernelext.NewArray(1, kernelext.NumClasses)
	probs.Data[963], probs.Data[1], probs.Data[2] = 0.97680503, 0.02, 0.0031
	if err := ref.SetProbabilities(probs); err != nil {
		t.Fatal(err)
	}
	return ref
}

func arr(a *kernelext.Array) *Value { return &Value{Name: "x", Type: TypeArrayPtr, Array: a} }

func TestEvaluateArrays(t *testing.T) {
	ref := testRef(t)
	s := ref.Spec
	shape, equal := &s.Checks[0], &s.Checks[1]
	cases := []struct {
		name   string
		check  *Check
		v      *Value
		pass   bool
		detail string
	}{
		{"shape ok", shape, arr(ref.Preprocessed), true, "has shape (1, 2, 2, 3)"},
		{"shape without batch", shape, arr(&kernelext.Array{Shape: []int{2, 2, 3}, Data: ref.Preprocessed.Data}), false, "has shape (2, 2, 3); expected (1, 2, 2, 3)"},
		{"wrong type", shape, &Value{Name: "x", Type: "[]float32"}, false, "has type []float32"},
		{"nil", shape, &Value{Name: "x", Type: TypeArrayPtr}, false, "x is nil"},
		{"missing", shape, &Value{Name: "x", Missing: "x is not defined"}, false, "x is not defined"},
		{"equal", equal, arr(ref.Preprocessed.Clone()), true, "all 12 values"},
		{"value type", equal, &Value{Name: "x", Type: TypeArray, Array: ref.Preprocessed}, true, "all 12 values"},
		{"not preprocessed", equal, arr(ref.Raw), false, "before preprocess_input"},
		{"preprocessed twice", equal, arr(kernelext.PreprocessInput(ref.Preprocessed)), false, "preprocessed twice"},
		{"RGB order", equal, arr(reverseChannels(ref.Preprocessed)), false, "RGB order"},
		{"BGR without means", equal, arr(reverseChannels(ref.Raw)), false, "means were not subtracted"},
		{"inconsistent", equal, arr(&kernelext.Array{Shape: []int{1, 2, 2, 3}, Data: []float32{1}}), false, "inconsistent"},
	}
	off := ref.Preprocessed.Clone()
	off.Data[7] = math.Nextafter32(off.Data[7], 0)
	cases = append(cases, struct {
		name   string
		check  *Check
		v      *Value
		pass   bool
		detail string
	}{"one ulp", equal, arr(off), false, "1 of 12 values of x differ from the reference; the first at (0, 1, 0, 1)"})
	for _, c := range cases {
		got := Evaluate(c.check, c.v, ref, "")
		if got.Passed != c.pass || !strings.Contains(got.Detail, c.detail) {
			t.Errorf("%s: %+v; want passed=%v and %q", c.name, got, c.pass, c.detail)
		}
	}
}

// allclose must decide exactly as numpy.allclose (the oracle), NaN and infinities included.
func TestAllCloseMatchesNumPy(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		if os.Getenv("WORKBOOK_REQUIRE_ORACLES") != "" {
			t.Fatalf("numpy: %v %s", err, out)
		}
		t.Skip("numpy is not installed")
	}
	ref := testRef(t)
	check := &ref.Spec.Checks[2] // rtol 1e-5, atol 1e-8
	want := []float32{0.5, 1e-9, 0, 1, 3.5e-3, 100}
	ref.Probabilities = &kernelext.Array{Shape: []int{1, len(want)}, Data: want}
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	trials := [][]float32{
		{0.5, 1e-9, 0, 1, 3.5e-3, 100},
		{0.500005, 1e-9, 0, 1, 3.5e-3, 100},
		{0.5000051, 1e-9, 0, 1, 3.5e-3, 100},
		{0.5, 1.5e-8, 0, 1, 3.5e-3, 100},
		{0.5, 1e-9, 1.1e-8, 1, 3.5e-3, 100},
		{0.5, 1e-9, 0, 1.00001, 3.5e-3, 100.001},
		{0.5, 1e-9, 0, 1, 3.5e-3, 100.0011},
		{0.5, 1e-9, nan, 1, 3.5e-3, 100},
		{0.5, 1e-9, 0, inf, 3.5e-3, 100},
	}
	var ts [][]string
	for _, tr := range trials {
		ts = append(ts, floatStrings(tr))
	}
	in, err := json.Marshal(map[string]any{"want": floatStrings(want), "trials": ts})
	if err != nil {
		t.Fatal(err)
	}
	script := `import json, sys, numpy as np
d = json.load(sys.stdin)
f32 = lambda v: np.array([float(x) for x in v], dtype=np.float32)
b = f32(d["want"])
print(json.dumps([bool(np.allclose(f32(t), b, rtol=1e-5, atol=1e-8)) for t in d["trials"]]))`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var oracle []bool
	if err := json.Unmarshal(out, &oracle); err != nil {
		t.Fatal(err)
	}
	for i, tr := range trials {
		v := &Value{Name: "y", Type: TypeArrayPtr, Array: &kernelext.Array{Shape: []int{1, len(tr)}, Data: tr}}
		if got := Evaluate(check, v, ref, "").Passed; got != oracle[i] {
			t.Errorf("trial %d %v: allclose %v, numpy says %v", i, tr, got, oracle[i])
		}
	}
}

// floatStrings writes float32 values as the shortest strings that parse back to them; JSON has no
// NaN or infinity, Python's float() reads "NaN" and "+Inf".
func floatStrings(v []float32) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return out
}

func TestEvaluateTopAndOutput(t *testing.T) {
	ref := testRef(t)
	s := ref.Spec
	top, printed := &s.Checks[3], &s.Checks[4]
	good := [][]kernelext.Prediction{append([]kernelext.Prediction(nil), ref.Top[0]...)}
	if got := Evaluate(top, &Value{Name: "label", Type: TypePredictions, Predictions: good}, ref, ""); !got.Passed {
		t.Errorf("top: %+v", got)
	}
	short := [][]kernelext.Prediction{good[0][:1]}
	if got := Evaluate(top, &Value{Name: "label", Type: TypePredictions, Predictions: short}, ref, ""); got.Passed || !strings.Contains(got.Detail, "lists 1 class;") {
		t.Errorf("top-1: %+v", got)
	}
	swapped := [][]kernelext.Prediction{{good[0][1], good[0][0]}}
	if got := Evaluate(top, &Value{Name: "label", Type: TypePredictions, Predictions: swapped}, ref, ""); got.Passed || !strings.Contains(got.Detail, "label[0][0]") {
		t.Errorf("swapped: %+v", got)
	}
	if got := Evaluate(top, &Value{Name: "label", Type: "[]kernelext.Prediction"}, ref, ""); got.Passed || !strings.Contains(got.Detail, "[][]kernelext.Prediction") {
		t.Errorf("flat: %+v", got)
	}
	// 0.97680503*100: NumPy (float64 product) prints 97.68 as does the float32 product here;
	// both forms are accepted, and the line must stand alone.
	for out, pass := range map[string]bool{
		"pizza (97.68%)\n":            true,
		"x\npizza (97.68%)  \nmore\n": true,
		"pizza (97.7%)\n":             false,
		"a pizza (97.68%)\n":          false,
		"meat_loaf (97.68%)\n":        false,
		"":                            false,
	} {
		if got := Evaluate(printed, nil, ref, out); got.Passed != pass {
			t.Errorf("output %q: %+v, want passed=%v", out, got, pass)
		}
	}
	if got := Evaluate(printed, nil, ref, "nothing"); !strings.Contains(got.Detail, `"pizza (97.68%)"`) {
		t.Errorf("example: %q", got.Detail)
	}
	// A score whose float32 and float64 products round differently: both spellings match.
	ref.Top[0][0].Score = 0.30045 // 30.05 as float32 product, 30.04 as float64
	re, err := OutputPattern(printed.Pattern, ref)
	if err != nil {
		t.Fatal(err)
	}
	f32 := fmt.Sprintf("pizza (%.2f%%)", ref.Top[0][0].Score*100)
	f64 := fmt.Sprintf("pizza (%.2f%%)", float64(ref.Top[0][0].Score)*100)
	if f32 == f64 {
		t.Fatalf("the test needs a score whose two products print differently, both print %q", f32)
	}
	if !re.MatchString(f32) || !re.MatchString(f64) {
		t.Errorf("%s should match %q and %q", re, f32, f64)
	}
}

func TestCheckBook(t *testing.T) {
	ref := testRef(t)
	ref.Spec.BookExpectation = &BookExpectation{Source: "test", Top: []ExpectedPrediction{{WNID: "n07873807", Label: "pizza", Score: 0.9768, ATol: 1e-4}}}
	if applied, err := ref.CheckBook(); applied || err != nil {
		t.Errorf("stand-in weights: applied=%v err=%v; want neither", applied, err)
	}
	ref.Weights.MD5Verified = true
	if applied, err := ref.CheckBook(); !applied || err != nil {
		t.Errorf("published weights, matching: applied=%v err=%v", applied, err)
	}
	ref.Spec.BookExpectation.Top[0].Score = 0.9
	if _, err := ref.CheckBook(); err == nil || !strings.Contains(err.Error(), "pizza") {
		t.Errorf("published weights, mismatch: %v", err)
	}
	ref.Spec.BookExpectation.Top[0] = ExpectedPrediction{WNID: "n07873807", Label: "pizza", MinScore: 0.99}
	if _, err := ref.CheckBook(); err == nil || !strings.Contains(err.Error(), "at least 0.99") {
		t.Errorf("min score: %v", err)
	}
}

// The export cell, compiled as an ordinary Go program against this checkout, writes values that
// ReadExport reads back bit for bit (NaN, -0 and all).
func TestExportCellRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	root, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cell, err := ExportCell("transformedImage")
	if err != nil {
		t.Fatal(err)
	}
	decl, _, ok := strings.Cut(cell, "%%")
	if !ok {
		t.Fatal("no %% in the export cell")
	}
	prog := "package main\n\n" + decl + `
var (
	transformedImage = &wbgradeKX.Array{Shape: []int{1, 2}, Data: []float32{float32(wbgradeMath.NaN()), float32(wbgradeMath.Copysign(0, -1))}}
	yPred            = wbgradeKX.Array{Shape: []int{2}, Data: []float32{1.5, float32(wbgradeMath.Inf(-1))}}
	label            = [][]wbgradeKX.Prediction{{{WNID: "n1", Label: "a b", Score: 0.25}}, {}}
	flat             = []float32{1}
	nilArray         *wbgradeKX.Array
)

func main() {
	wbgradeExport("transformedImage", transformedImage)
	wbgradeExport("yPred", yPred)
	wbgradeExport("label", label)
	wbgradeExport("flat", flat)
	wbgradeExport("nilArray", nilArray)
}
`
	dir := t.TempDir()
	mod := "module exporttest\n\ngo 1.26\n\nrequire github.com/transfer-learning-go/workbook v0.0.0\n\nreplace github.com/transfer-learning-go/workbook => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum, "main.go": []byte(prog)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "-mod=mod", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), ExportEnv+"="+out, "GOFLAGS=-mod=mod", "GOPROXY=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export program: %v\n%s", err, b)
	}
	x, err := ReadExport(out, "transformedImage")
	if err != nil {
		t.Fatal(err)
	}
	if x.Type != TypeArrayPtr || len(x.Array.Data) != 2 || !math.IsNaN(float64(x.Array.Data[0])) || math.Float32bits(x.Array.Data[1]) != 0x80000000 {
		t.Errorf("transformedImage: %+v %v", x, x.Array)
	}
	y, err := ReadExport(out, "yPred")
	if err != nil {
		t.Fatal(err)
	}
	if y.Type != TypeArray || y.Array.Data[0] != 1.5 || !math.IsInf(float64(y.Array.Data[1]), -1) {
		t.Errorf("yPred: %+v", y)
	}
	l, err := ReadExport(out, "label")
	if err != nil {
		t.Fatal(err)
	}
	if l.Type != TypePredictions || len(l.Predictions) != 2 || l.Predictions[0][0] != (kernelext.Prediction{WNID: "n1", Label: "a b", Score: 0.25}) {
		t.Errorf("label: %+v", l)
	}
	f, err := ReadExport(out, "flat")
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != "[]float32" || f.Array != nil {
		t.Errorf("flat: %+v", f)
	}
	n, err := ReadExport(out, "nilArray")
	if err != nil {
		t.Fatal(err)
	}
	if n.Type != TypeArrayPtr || n.Array != nil {
		t.Errorf("nilArray: %+v", n)
	}
	if _, err := ReadExport(out, "absent"); err != ErrNotExported {
		t.Errorf("absent: %v", err)
	}
	if _, err := ExportCell("not an identifier"); err == nil {
		t.Error("ExportCell accepted a bad name")
	}
}
