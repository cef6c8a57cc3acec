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
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/training"
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
	py := testenv.Python(t, "numpy")
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
	testenv.Long(t, "builds a program")
	root, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cell, err := ExportCell("transformedImage", "yPred", "label", "flat", "nilArray", "history", "nilHistory", "prediction")
	if err != nil {
		t.Fatal(err)
	}
	decl, body, ok := strings.Cut(cell, "%%")
	if !ok {
		t.Fatal("no %% in the export cell")
	}
	decl = strings.Replace(decl, "import (", "import (\n\ttraining \"github.com/transfer-learning-go/workbook/kernelext/training\"", 1)
	prog := "package main\n\n" + decl + `
var (
	transformedImage = &wbgradeKX.Array{Shape: []int{1, 2}, Data: []float32{float32(wbgradeMath.NaN()), float32(wbgradeMath.Copysign(0, -1))}}
	yPred            = wbgradeKX.Array{Shape: []int{2}, Data: []float32{1.5, float32(wbgradeMath.Inf(-1))}}
	label            = [][]wbgradeKX.Prediction{{{WNID: "n1", Label: "a b", Score: 0.25}}, {}}
	flat             = []float32{1}
	nilArray         *wbgradeKX.Array
	history          = &training.History{Epoch: []int{0, 1}, Names: []string{"loss", "val_accuracy"},
		Value: map[string][]float64{"loss": {0.5513, wbgradeMath.NaN()}, "val_accuracy": {0.8646, 0.1 + 0.2}}}
	nilHistory *training.History
	prediction = "It is a car\n\"quoted\""
)

func main() {` + body + `}
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
	h, err := ReadExport(out, "history")
	if err != nil {
		t.Fatal(err)
	}
	if h.Type != TypeHistory || h.History == nil || h.History.Get("val_accuracy")[1] != 0.1+0.2 ||
		h.History.Get("val_accuracy")[0] != 0.8646 || !math.IsNaN(h.History.Get("loss")[1]) || len(h.History.Names) != 2 {
		t.Errorf("history: %+v %+v", h, h.History)
	}
	nh, err := ReadExport(out, "nilHistory")
	if err != nil {
		t.Fatal(err)
	}
	if nh.Type != TypeHistory || nh.History != nil {
		t.Errorf("nilHistory: %+v", nh)
	}
	p, err := ReadExport(out, "prediction")
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != TypeString || p.Text != "It is a car\n\"quoted\"" {
		t.Errorf("prediction: %+v", p)
	}
	if _, err := ReadExport(out, "absent"); err != ErrNotExported {
		t.Errorf("absent: %v", err)
	}
	if _, err := ExportCell("yPred", "not an identifier"); err == nil {
		t.Error("ExportCell accepted a bad name")
	}
	if _, err := ExportCell(); err == nil {
		t.Error("ExportCell accepted no variable")
	}
}

// The fine-tuning kinds: a History's keys and epochs, a value to N significant digits of the
// reference run, strings.
func TestEvaluateFinetune(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "solutions", "checks", "exercise-8.03.json"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string) *Check {
		for i := range spec.Checks {
			if spec.Checks[i].ID == id {
				return &spec.Checks[i]
			}
		}
		t.Fatalf("no check %s", id)
		return nil
	}
	hist := func(valAcc ...float64) *training.History {
		h := &training.History{Names: []string{"loss", "accuracy", "val_loss", "val_accuracy"}, Value: map[string][]float64{}}
		for i, v := range valAcc {
			h.Epoch = append(h.Epoch, i)
			for _, n := range h.Names[:3] {
				h.Value[n] = append(h.Value[n], 0.5)
			}
			h.Value["val_accuracy"] = append(h.Value["val_accuracy"], v)
		}
		return h
	}
	ref := &Reference{Spec: spec, History: hist(0.8646, 0.9), Result: &kernelext.Array{Shape: []int{1, 1}, Data: []float32{0.25}},
		Prediction: "It is a car"}
	hv := func(h *training.History) *Value { return &Value{Name: "history", Type: TypeHistory, History: h} }
	sv := func(s string) *Value { return &Value{Name: "prediction", Type: TypeString, Text: s} }
	for _, tc := range []struct {
		name, check string
		v           *Value
		pass        bool
		detail      string
	}{
		// 0.8646 to one significant digit: within ±0.05 (the book's assertion, without rounding's
		// cliff at 0.85).
		{"same", "val-accuracy-epoch1", hv(hist(0.8646, 0.95)), true, "agree to 1 significant digit"},
		{"low edge", "val-accuracy-epoch1", hv(hist(0.8146, 0.95)), true, ""},
		{"too low", "val-accuracy-epoch1", hv(hist(0.8145, 0.95)), false, "differ by more than ±0.05"},
		{"high edge", "val-accuracy-epoch1", hv(hist(0.9146, 0.95)), true, ""},
		{"too high", "val-accuracy-epoch1", hv(hist(0.9147, 0.95)), false, "0.9147"},
		{"no epochs", "val-accuracy-epoch1", hv(&training.History{}), false, "has no val_accuracy after epoch 1"},
		{"nil history", "val-accuracy-epoch1", &Value{Name: "history", Type: TypeHistory}, false, "history is nil"},
		{"wrong type", "val-accuracy-epoch1", &Value{Name: "history", Type: "map[string][]float64"}, false, "expected *training.History"},
		{"keys", "history-keys", hv(hist(0.5, 0.5)), true, "for 2 epochs"},
		{"one epoch only", "history-keys", hv(hist(0.5)), false, "records 1 epoch; the schedule has 2 epochs"},
		{"no validation", "history-keys", hv(&training.History{Names: []string{"loss"}, Value: map[string][]float64{"loss": {1, 1}, "accuracy": {1, 1}}}),
			false, `has no "val_loss" or "val_accuracy"`},
		{"car", "prediction-equal", sv("It is a car"), true, ""},
		{"flower", "prediction-equal", sv("It is a flower"), false, `expected "It is a car"`},
		{"form", "prediction-form", sv("It is a flower"), true, ""},
		{"bad form", "prediction-form", sv("car"), false, `expected "It is a car" or "It is a flower"`},
		{"not a string", "prediction-form", &Value{Name: "prediction", Type: "int"}, false, "expected string"},
		{"result close", "result-values", &Value{Name: "result", Type: TypeArrayPtr, Array: &kernelext.Array{Shape: []int{1, 1}, Data: []float32{0.299}}}, true, ""},
		{"result far", "result-values", &Value{Name: "result", Type: TypeArrayPtr, Array: &kernelext.Array{Shape: []int{1, 1}, Data: []float32{0.301}}}, false, "not within"},
	} {
		oc := Evaluate(check(tc.check), tc.v, ref, "")
		if oc.Passed != tc.pass || !strings.Contains(oc.Detail, tc.detail) {
			t.Errorf("%s: passed=%v %q; want %v containing %q", tc.name, oc.Passed, oc.Detail, tc.pass, tc.detail)
		}
	}
	if oc := Evaluate(check("printed-prediction"), nil, ref, "loss\nIt is a car\n"); !oc.Passed {
		t.Errorf("printed: %s", oc.Detail)
	}
	if oc := Evaluate(check("printed-prediction"), nil, ref, "It is a car."); oc.Passed || !strings.Contains(oc.Detail, `no line like "It is a car"`) {
		t.Errorf("printed with a period: %+v", oc)
	}
	// Without the reference run (the students' self-check), history-keys still checks the
	// structure.
	if oc := Evaluate(check("history-keys"), hv(hist(0.5)), &Reference{Spec: spec}, ""); !oc.Passed {
		t.Errorf("history-keys without a reference: %s", oc.Detail)
	}
	for x, want := range map[float64]float64{0.8646: 0.1, 0.05: 0.01, 12: 10, 0: 0.1, -0.3: 0.1} {
		if got := SignificantUnit(x, 1); math.Abs(got-want) > 1e-15 {
			t.Errorf("SignificantUnit(%v, 1) = %v; want %v", x, got, want)
		}
	}
	if got := SignificantUnit(0.8646, 2); math.Abs(got-0.01) > 1e-15 {
		t.Errorf("SignificantUnit(0.8646, 2) = %v", got)
	}
}

// A fine-tuning spec must not borrow the prediction exercises' references, and the other way
// round.
func TestParseSpecFinetune(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "solutions", "checks", "exercise-8.03.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSpec(b); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][2]string{
		"probabilities in finetune": {`"reference": "result"`, `"reference": "probabilities"`},
		"unknown task":              {`"task": "finetune"`, `"task": "train"`},
		"resnet base":               {`"model": "vgg16"`, `"model": "resnet50"`},
		"bad digits":                {`"digits": 1`, `"digits": 0`},
		"bad limit":                 {`"memory": "16GiB"`, `"memory": "lots"`},
		"book top":                  {`"prediction": "It is a car"`, `"prediction": "It is a car", "top": [{"wnid": "n", "label": "l", "score": 1, "atol": 1}]`},
	} {
		bad := strings.Replace(string(b), c[0], c[1], 1)
		if bad == string(b) {
			t.Fatalf("%s: %q not in the file", name, c[0])
		}
		if _, err := ParseSpec([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad := strings.Replace(validSpec, `"reference": "preprocessed"`, `"reference": "history"`, 1)
	if _, err := ParseSpec([]byte(bad)); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("history in a prediction exercise: %v", err)
	}
	for in, want := range map[string]int64{"4GiB": 4 << 30, "512MiB": 512 << 20, "1.5G": 3 << 29, "1048576": 1 << 20, "2KB": 2048} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
