package grade

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/training"
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
	// History is set for *training.History values (nil for a nil pointer); Text for strings.
	History *training.History
	Text    string
	// Missing, when not empty, says why the variable could not be read (not defined, the
	// notebook panicked, timed out, ...); the other fields are then empty.
	Missing string
}

// Type names the checks accept.
const (
	TypeArrayPtr    = "*kernelext.Array"
	TypeArray       = "kernelext.Array"
	TypePredictions = "[][]kernelext.Prediction"
	TypeHistory     = "*training.History"
	TypeString      = "string"
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
		if !slices.Equal(a.Shape, c.Shape) {
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
	case KindHistoryKeys:
		if fail := historyOf(v); fail != "" {
			return Outcome{Detail: fail}
		}
		return historyKeys(v, c.Keys, ref.History)
	case KindSignificant:
		if fail := historyOf(v); fail != "" {
			return Outcome{Detail: fail}
		}
		return significant(v, c, ref.History)
	case KindTextEqual, KindTextOneOf:
		if v.Type != TypeString {
			return Outcome{Detail: fmt.Sprintf("%s has type %s; expected string", v.Name, v.Type)}
		}
		want := c.Values
		if c.Kind == KindTextEqual {
			if ref.Prediction == "" {
				return Outcome{Detail: "the reference has no prediction (it needs the reference training run)"}
			}
			want = []string{ref.Prediction}
		}
		for _, w := range want {
			if v.Text == w {
				return Outcome{Passed: true, Detail: fmt.Sprintf("%s is %q", v.Name, v.Text)}
			}
		}
		return Outcome{Detail: fmt.Sprintf("%s is %s; expected %s", v.Name, quoteLimited(v.Text), quoteAll(want, "or"))}
	}
	return Outcome{Detail: fmt.Sprintf("unknown check kind %q", c.Kind)}
}

func (r *Reference) array(name string) *kernelext.Array {
	switch name {
	case RefProbabilities:
		return r.Probabilities
	case RefResult:
		return r.Result
	}
	return r.Preprocessed
}

func historyOf(v *Value) string {
	if v.Type != TypeHistory {
		return fmt.Sprintf("%s has type %s; expected %s (what Fit returns)", v.Name, v.Type, TypeHistory)
	}
	if v.History == nil {
		return fmt.Sprintf("%s is nil", v.Name)
	}
	return ""
}

// historyKeys: every key recorded, all for the same number of epochs (at least one), and — when
// the reference run is known — as many epochs as it ran.
func historyKeys(v *Value, keys []string, ref *training.History) Outcome {
	var missing []string
	epochs := -1
	for _, k := range keys {
		n := len(v.History.Get(k))
		if n == 0 {
			missing = append(missing, k)
			continue
		}
		if epochs >= 0 && n != epochs {
			return Outcome{Detail: fmt.Sprintf("%s records %q for %d epochs but other keys for %d", v.Name, k, n, epochs)}
		}
		epochs = n
	}
	if len(missing) > 0 {
		return Outcome{Detail: fmt.Sprintf("%s has no %s (it records %s)", v.Name, quoteAll(missing, "or"), quoteAll(v.History.Names, "and"))}
	}
	if ref != nil {
		if want := len(ref.Get(keys[0])); want != epochs {
			return Outcome{Detail: fmt.Sprintf("%s records %s; the schedule has %s", v.Name, plural(epochs, "epoch", "epochs"), plural(want, "epoch", "epochs"))}
		}
	}
	return Outcome{Passed: true, Detail: fmt.Sprintf("%s records %s for %s", v.Name, strings.Join(keys, ", "), plural(epochs, "epoch", "epochs"))}
}

// significant compares one History value with the reference run's to c.Digits significant
// digits of the reference: |got - want| <= unit/2, where unit is the place value of want's
// Digits-th significant digit (for want = 0, 10^-Digits). The book's own test compares the first
// epoch's val_accuracy to one digit because no two training runs agree further.
func significant(v *Value, c *Check, ref *training.History) Outcome {
	what := fmt.Sprintf("%s after epoch %d", c.Metric, c.Epoch)
	got := v.History.Get(c.Metric)
	if len(got) < c.Epoch {
		return Outcome{Detail: fmt.Sprintf("%s has no %s (it records %d epochs of %q)", v.Name, what, len(got), c.Metric)}
	}
	if ref == nil || len(ref.Get(c.Metric)) < c.Epoch {
		return Outcome{Detail: "the reference run has no " + what}
	}
	g, w := got[c.Epoch-1], ref.Get(c.Metric)[c.Epoch-1]
	unit := SignificantUnit(w, c.Digits)
	tol := unit / 2
	d := fmt.Sprintf("%s is %.4f; the reference run reached %.4f", what, g, w)
	if math.Abs(g-w) <= tol*(1+1e-9) {
		return Outcome{Passed: true, Detail: fmt.Sprintf("%s: they agree to %s (within ±%g)", d, plural(c.Digits, "significant digit", "significant digits"), tol)}
	}
	return Outcome{Detail: fmt.Sprintf("%s: they differ by more than ±%g (%s)", d, tol, plural(c.Digits, "significant digit", "significant digits"))}
}

// SignificantUnit is the place value of the digits-th significant digit of x (10^-digits for 0).
func SignificantUnit(x float64, digits int) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return math.Pow(10, float64(-digits))
	}
	return math.Pow(10, math.Floor(math.Log10(math.Abs(x)))-float64(digits)+1)
}

// quoteLimited quotes s, cut to 80 characters: it comes from a student's notebook.
func quoteLimited(s string) string {
	if r := []rune(s); len(r) > 80 {
		return strconv.Quote(string(r[:80])) + "…"
	}
	return strconv.Quote(s)
}

func quoteAll(ss []string, conj string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	if len(q) == 0 {
		return "nothing"
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
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

// compareArrays is numpy.array_equal (exact) or numpy.allclose(a, want, rtol, atol).
func compareArrays(name string, a, want *kernelext.Array, rtol, atol float64, exact bool, ref *Reference, refName string) Outcome {
	if !slices.Equal(a.Shape, want.Shape) {
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
	if refName != RefPreprocessed || ref.Raw == nil || !slices.Equal(a.Shape, ref.Raw.Shape) {
		return ""
	}
	switch {
	case slices.Equal(a.Data, ref.Raw.Data):
		return "It equals the image before preprocess_input: apply PreprocessInput"
	case slices.Equal(a.Data, kernelext.PreprocessInput(ref.Preprocessed).Data):
		return "It looks preprocessed twice: apply PreprocessInput once"
	case slices.Equal(a.Data, reverseChannels(ref.Raw).Data):
		return "Its channels are reversed (BGR) but the ImageNet means were not subtracted"
	case slices.Equal(a.Data, reverseChannels(ref.Preprocessed).Data):
		return "Its channels are in RGB order with the means subtracted: preprocess_input reverses RGB to BGR before subtracting"
	}
	return ""
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
//	prediction the reference's printed decision ("It is a car"), regexp-quoted (fine-tuning)
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
		"prediction": func() (string, error) {
			if ref == nil || ref.Prediction == "" {
				return "", errors.New("the reference has no prediction")
			}
			return quote(ref.Prediction), nil
		},
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
		"prediction": func() string { return "" },
	}
	t, err := template.New("pattern").Funcs(dummy).Parse(pattern)
	if err != nil {
		return nil, fmt.Errorf("output template %q: %v", pattern, err)
	}
	return t, nil
}
