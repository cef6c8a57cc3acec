package grade

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strings"
	"text/template"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// Value is one of the notebook's variables as the grader read it.
type Value struct {
	Name string
	// Type is the variable's Go type as fmt's %T prints it ("*kernelext.Array").
	Type string
	// Array is set for *kernelext.Array and kernelext.Array values (nil for a nil pointer);
	// Predictions for [][]kernelext.Prediction.
	Array       *kernelext.Array
	Predictions [][]kernelext.Prediction
	// Missing, when not empty, says why the variable could not be read (not defined, the
	// notebook panicked, timed out, ...); the other fields are then empty.
	Missing string
}

// Type names the checks accept.
const (
	TypeArrayPtr    = "*kernelext.Array"
	TypeArray       = "kernelext.Array"
	TypePredictions = "[][]kernelext.Prediction"
)

// Outcome is the result of one check.
type Outcome struct {
	Passed bool
	// Detail says what was found: why it failed, or what matched. It may quote reference values,
	// so it is shown to students only for visible checks.
	Detail string
}

// Evaluate runs one check. v is the check's variable (nil for output checks); output is the
// text the notebook printed (for output checks).
func Evaluate(c *Check, v *Value, ref *Reference, output string) Outcome {
	if c.Kind == KindOutputContains {
		return evalOutput(c, ref, output)
	}
	if v == nil {
		return Outcome{Detail: fmt.Sprintf("%s was not read", c.Variable)}
	}
	if v.Missing != "" {
		return Outcome{Detail: v.Missing}
	}
	switch c.Kind {
	case KindShapeEqual:
		a, fail := arrayOf(v)
		if fail != "" {
			return Outcome{Detail: fail}
		}
		if !equalInts(a.Shape, c.Shape) {
			return Outcome{Detail: fmt.Sprintf("%s has shape %s; expected %s", v.Name, kernelext.TupleString(a.Shape), kernelext.TupleString(c.Shape))}
		}
		return Outcome{Passed: true, Detail: fmt.Sprintf("%s has shape %s", v.Name, kernelext.TupleString(a.Shape))}
	case KindArrayEqual, KindAllClose:
		a, fail := arrayOf(v)
		if fail != "" {
			return Outcome{Detail: fail}
		}
		want := ref.array(c.Reference)
		if c.Kind == KindArrayEqual {
			return compareArrays(v.Name, a, want, 0, 0, true, ref, c.Reference)
		}
		return compareArrays(v.Name, a, want, c.RTol, c.ATol, false, ref, c.Reference)
	case KindTopEqual:
		if v.Type != TypePredictions {
			return Outcome{Detail: fmt.Sprintf("%s has type %s; expected %s (DecodePredictions' result)", v.Name, v.Type, TypePredictions)}
		}
		return compareTop(v.Name, v.Predictions, ref.Top, ref.Spec.Top, c.RTol, c.ATol)
	}
	return Outcome{Detail: fmt.Sprintf("unknown check kind %q", c.Kind)}
}

func (r *Reference) array(name string) *kernelext.Array {
	if name == RefProbabilities {
		return r.Probabilities
	}
	return r.Preprocessed
}

func arrayOf(v *Value) (*kernelext.Array, string) {
	if v.Type != TypeArrayPtr && v.Type != TypeArray {
		return nil, fmt.Sprintf("%s has type %s; expected %s", v.Name, v.Type, TypeArrayPtr)
	}
	if v.Array == nil {
		return nil, fmt.Sprintf("%s is nil", v.Name)
	}
	if n := v.Array.Size(); n != len(v.Array.Data) {
		return nil, fmt.Sprintf("%s is inconsistent: shape %s holds %d values but Data has %d", v.Name, kernelext.TupleString(v.Array.Shape), n, len(v.Array.Data))
	}
	return v.Array, ""
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// compareArrays is numpy.array_equal (exact) or numpy.allclose(a, want, rtol, atol).
func compareArrays(name string, a, want *kernelext.Array, rtol, atol float64, exact bool, ref *Reference, refName string) Outcome {
	if !equalInts(a.Shape, want.Shape) {
		return Outcome{Detail: fmt.Sprintf("%s has shape %s; expected %s", name, kernelext.TupleString(a.Shape), kernelext.TupleString(want.Shape))}
	}
	bad, first, worst := 0, -1, 0.0
	for i, x := range a.Data {
		y := want.Data[i]
		d := math.Abs(float64(x) - float64(y))
		ok := x == y // NaN never equals, as in numpy
		if !exact {
			ok = d <= atol+rtol*math.Abs(float64(y))
		}
		if !ok {
			bad++
			if first < 0 {
				first = i
			}
		}
		if d > worst || (math.IsNaN(d) && !math.IsNaN(worst)) {
			worst = d
		}
	}
	if bad == 0 {
		if exact {
			return Outcome{Passed: true, Detail: fmt.Sprintf("all %d values of %s equal the reference", len(a.Data), name)}
		}
		return Outcome{Passed: true, Detail: fmt.Sprintf("all %d values of %s are within rtol=%g, atol=%g of the reference", len(a.Data), name, rtol, atol)}
	}
	how := "differ from"
	if !exact {
		how = fmt.Sprintf("are not within rtol=%g, atol=%g of", rtol, atol)
	}
	d := fmt.Sprintf("%d of %d values of %s %s the reference; the first at %s is %s, expected %s (largest difference %.6g)",
		bad, len(a.Data), name, how, kernelext.TupleString(unravel(first, a.Shape)),
		kernelext.Float32Repr(a.Data[first]), kernelext.Float32Repr(want.Data[first]), worst)
	if hint := arrayHint(a, ref, refName); hint != "" {
		d += ". " + hint
	}
	return Outcome{Detail: d}
}

// arrayHint recognises the usual preprocessing mistakes by comparing with variants of the
// reference.
func arrayHint(a *kernelext.Array, ref *Reference, refName string) string {
	if refName != RefPreprocessed || ref.Raw == nil || !equalInts(a.Shape, ref.Raw.Shape) {
		return ""
	}
	switch {
	case sameData(a.Data, ref.Raw.Data):
		return "It equals the image before preprocess_input: apply PreprocessInput"
	case sameData(a.Data, kernelext.PreprocessInput(ref.Preprocessed).Data):
		return "It looks preprocessed twice: apply PreprocessInput once"
	case sameData(a.Data, reverseChannels(ref.Raw).Data):
		return "Its channels are reversed (BGR) but the ImageNet means were not subtracted"
	case sameData(a.Data, reverseChannels(ref.Preprocessed).Data):
		return "Its channels are in RGB order with the means subtracted: preprocess_input reverses RGB to BGR before subtracting"
	}
	return ""
}

func sameData(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func reverseChannels(a *kernelext.Array) *kernelext.Array {
	out := a.Clone()
	c := a.Shape[len(a.Shape)-1]
	for i := 0; i+c <= len(out.Data); i += c {
		for j := 0; j < c/2; j++ {
			out.Data[i+j], out.Data[i+c-1-j] = out.Data[i+c-1-j], out.Data[i+j]
		}
	}
	return out
}

func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

func compareTop(name string, got, want [][]kernelext.Prediction, top int, rtol, atol float64) Outcome {
	if len(got) != len(want) {
		return Outcome{Detail: fmt.Sprintf("%s has %d rows (one per image); expected %d", name, len(got), len(want))}
	}
	for r := range want {
		if len(got[r]) != len(want[r]) {
			return Outcome{Detail: fmt.Sprintf("%s[%d] lists %s; expected the top %d (DecodePredictions(yPred, %d))", name, r, plural(len(got[r]), "class", "classes"), top, top)}
		}
		for i := range want[r] {
			g, w := got[r][i], want[r][i]
			scoreOK := math.Abs(float64(g.Score)-float64(w.Score)) <= atol+rtol*math.Abs(float64(w.Score))
			if g.WNID != w.WNID || g.Label != w.Label || !scoreOK {
				return Outcome{Detail: fmt.Sprintf("%s[%d][%d] is %s; expected %s", name, r, i, g, w)}
			}
		}
	}
	return Outcome{Passed: true, Detail: fmt.Sprintf("%s lists the expected top %d, best first: %s", name, top, want[0][0].Label)}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func evalOutput(c *Check, ref *Reference, output string) Outcome {
	re, err := OutputPattern(c.Pattern, ref)
	if err != nil {
		return Outcome{Detail: err.Error()}
	}
	if m := re.FindString(output); m != "" {
		return Outcome{Passed: true, Detail: fmt.Sprintf("the notebook printed %q", strings.TrimSpace(m))}
	}
	if c.Example == "" {
		return Outcome{Detail: "the notebook's printed output has no line of the expected form"}
	}
	ex, err := expandTemplate(c.Example, ref, func(s string) string { return s }, true)
	if err != nil {
		return Outcome{Detail: err.Error()}
	}
	return Outcome{Detail: fmt.Sprintf("the notebook's printed output has no line like %q", ex)}
}

// OutputPattern expands an output-contains pattern into a regular expression. The template runs
// with these functions (n is the rank in the reference's top predictions, 0 = best):
//
//	label n    the class label ("pizza"), regexp-quoted
//	wnid n     the WordNet ID ("n07873807"), regexp-quoted
//	percent n  the score times 100 with two decimals: as the book's '%.2f' % (score*100) prints it
//	           (NumPy 1.24 widens the float32 score to float64 first, like Go's
//	           float64(score)*100) or from a float32 product (score*100 in Go): either is accepted
//
// Check.Example is expanded the same way, unquoted, for feedback.
func OutputPattern(pattern string, ref *Reference) (*regexp.Regexp, error) {
	s, err := expandTemplate(pattern, ref, regexp.QuoteMeta, false)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("grade: output pattern %q expands to an invalid regular expression: %v", pattern, err)
	}
	return re, nil
}

func expandTemplate(text string, ref *Reference, quote func(string) string, plain bool) (string, error) {
	pred := func(n int) (kernelext.Prediction, error) {
		if ref == nil || len(ref.Top) == 0 || n < 0 || n >= len(ref.Top[0]) {
			return kernelext.Prediction{}, fmt.Errorf("rank %d is not in the reference's top predictions", n)
		}
		return ref.Top[0][n], nil
	}
	funcs := template.FuncMap{
		"label": func(n int) (string, error) { p, err := pred(n); return quote(p.Label), err },
		"wnid":  func(n int) (string, error) { p, err := pred(n); return quote(p.WNID), err },
		"percent": func(n int) (string, error) {
			p, err := pred(n)
			if err != nil {
				return "", err
			}
			a := fmt.Sprintf("%.2f", p.Score*100)
			b := fmt.Sprintf("%.2f", float64(p.Score)*100)
			if plain || a == b {
				return quote(a), nil
			}
			return "(?:" + quote(a) + "|" + quote(b) + ")", nil
		},
	}
	t, err := template.New("pattern").Funcs(funcs).Parse(text)
	if err != nil {
		return "", fmt.Errorf("grade: output template %q: %v", text, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return "", fmt.Errorf("grade: output template %q: %v", text, err)
	}
	return buf.String(), nil
}

// parsePattern checks a template's syntax without a reference.
func parsePattern(pattern string) (*template.Template, error) {
	dummy := template.FuncMap{
		"label": func(int) string { return "" }, "wnid": func(int) string { return "" }, "percent": func(int) string { return "" },
	}
	t, err := template.New("pattern").Funcs(dummy).Parse(pattern)
	if err != nil {
		return nil, fmt.Errorf("output template %q: %v", pattern, err)
	}
	return t, nil
}
