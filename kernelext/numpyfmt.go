package kernelext

import (
	"math"
	"strconv"
	"strings"
)

// This file reproduces NumPy 1.24's default printing of float32 values, so that a notebook cell
// showing an Array (or a prediction score) prints the very characters the book's Jupyter
// output shows. The rules are those of numpy/core/arrayprint.py (FloatingFormat, _formatArray,
// array_repr) with the default print options: precision 8, floatmode 'maxprec', threshold
// 1000, edgeitems 3, linewidth 75, suppress False, sign '-'; and of the scalar repr in
// numpy/core/src/multiarray/scalartypes.c.src. Digit generation is NumPy's Dragon4 in "unique"
// mode, which yields the shortest digits that round-trip to the same float32 — what Go's
// strconv produces with bitSize 32.

const (
	printThreshold = 1000
	printEdgeItems = 3
	printLineWidth = 75
	printPrecision = 8
)

// Float32Repr formats f as Python's repr(np.float32(f)) does under NumPy 1.24: the shortest
// digits that round-trip, positional for 1e-4 ≤ |f| < 1e16 (and zero) with at least one
// fractional digit ("0.97680503", "1.0"), scientific otherwise without trailing zeros
// ("1e-05", "1.5e-07"); "nan", "inf", "-inf" for non-finite values.
func Float32Repr(f float32) string {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	a := math.Abs(v)
	if a == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(v, 'f', -1, 32)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	return strconv.FormatFloat(v, 'e', -1, 32)
}

// positional returns f's shortest round-trip digits in positional notation, correctly rounded
// to at most precision fractional digits (Dragon4 unique mode with a cutoff), with trailing
// zeros removed but the decimal point kept ("5.", "0.25").
func positional(f float32, precision int) string {
	s := strconv.FormatFloat(float64(f), 'f', -1, 32)
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > precision {
		s = strconv.FormatFloat(float64(f), 'f', precision, 64)
		s = strings.TrimRight(s, "0")
	}
	if !strings.Contains(s, ".") {
		s += "."
	}
	return s
}

// scientific returns f's shortest round-trip digits in scientific notation split into the
// mantissa's integer part, its fractional digits and the exponent digits with sign ("+05").
// A float32 never needs more than 9 significant digits, so NumPy's default precision of 8
// fractional digits never cuts these.
func scientific(f float32) (intPart, frac, exp string) {
	s := strconv.FormatFloat(float64(f), 'e', -1, 32)
	mant, exp, _ := strings.Cut(s, "e")
	intPart, frac, _ = strings.Cut(mant, ".")
	return intPart, frac, exp
}

// floatFormat is NumPy's FloatingFormat after fillFormat has looked at the (summarized) data.
type floatFormat struct {
	exp       bool
	precision int // exp: fractional digits of every mantissa
	padLeft   int
	padRight  int
	expSize   int
}

func newFloatFormat(vals []float32) floatFormat {
	var ff floatFormat
	var finite []float32
	for _, v := range vals {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			finite = append(finite, v)
		}
	}
	var maxAbs, minAbs float32
	nonZero := 0
	for _, v := range finite {
		if v == 0 {
			continue
		}
		a := float32(math.Abs(float64(v)))
		if nonZero == 0 || a > maxAbs {
			maxAbs = a
		}
		if nonZero == 0 || a < minAbs {
			minAbs = a
		}
		nonZero++
	}
	if nonZero > 0 {
		// NumPy compares float32 scalars against Python floats (in double precision), but
		// divides the two float32 scalars in float32.
		ratio := maxAbs / minAbs
		if float64(maxAbs) >= 1e8 || float64(minAbs) < 0.0001 || float64(ratio) > 1000 {
			ff.exp = true
		}
	}
	switch {
	case len(finite) == 0:
		ff.padLeft, ff.padRight, ff.expSize = 0, 0, -1
	case ff.exp:
		ff.expSize = 0
		for _, v := range finite {
			i, f, e := scientific(v)
			ff.expSize = max(ff.expSize, len(e)-1)
			ff.precision = max(ff.precision, len(f))
			ff.padLeft = max(ff.padLeft, len(i))
		}
		ff.padRight = ff.expSize + 2 + ff.precision
	default:
		ff.expSize = -1
		for _, v := range finite {
			i, f, _ := strings.Cut(positional(v, printPrecision), ".")
			ff.padLeft = max(ff.padLeft, len(i))
			ff.padRight = max(ff.padRight, len(f))
		}
	}
	if len(finite) != len(vals) {
		negInf := false
		for _, v := range vals {
			if math.IsInf(float64(v), -1) {
				negInf = true
			}
		}
		infLen := 3
		if negInf {
			infLen = 4
		}
		offset := ff.padRight + 1
		ff.padLeft = max(ff.padLeft, 3-offset, infLen-offset)
	}
	return ff
}

func (ff floatFormat) format(f float32) string {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s := "nan"
		if math.IsInf(v, 1) {
			s = "inf"
		} else if math.IsInf(v, -1) {
			s = "-inf"
		}
		return padLeft(s, ff.padLeft+ff.padRight+1)
	}
	if ff.exp {
		i, frac, e := scientific(f)
		if len(frac) < ff.precision {
			// Dragon4 with min_digits keeps generating the exact value's digits (correctly
			// rounded) rather than padding with zeros.
			s := strconv.FormatFloat(v, 'e', ff.precision, 64)
			mant, exp, _ := strings.Cut(s, "e")
			i, frac, _ = strings.Cut(mant, ".")
			e = exp
		}
		sign, digits := e[:1], e[1:]
		if len(digits) < ff.expSize {
			digits = strings.Repeat("0", ff.expSize-len(digits)) + digits
		}
		return padLeft(i, ff.padLeft) + "." + frac + "e" + sign + digits
	}
	i, frac, _ := strings.Cut(positional(f, printPrecision), ".")
	return padLeft(i, ff.padLeft) + "." + frac + strings.Repeat(" ", ff.padRight-len(frac))
}

func padLeft(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat(" ", width-len(s)) + s
}

// String prints the array as NumPy 1.24 prints repr() of a float32 array, e.g.
//
//	array([[[[ -70.939, -63.779, ...
//
// including summarization of arrays with more than 1000 elements (3 leading and 3 trailing
// items per axis, "..." between), line wrapping at 75 columns and the trailing
// "dtype=float32". This is what a Jupyter cell shows for a preprocessed image.
func (a *Array) String() string {
	if a == nil {
		return "<nil>"
	}
	size := a.Size()
	if size == 0 {
		if len(a.Shape) == 1 {
			return "array([], dtype=float32)"
		}
		return "array([], shape=" + TupleString(a.Shape) + ", dtype=float32)"
	}
	summarize := size > printThreshold
	ff := newFloatFormat(a.summaryValues(summarize))
	strides := make([]int, len(a.Shape))
	s := 1
	for i := len(a.Shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= a.Shape[i]
	}
	p := &arrayPrinter{a: a, ff: ff, strides: strides, summarize: summarize}
	const prefix = "array("
	// array2string is told the line is one character shorter, for the "," suffix.
	body := p.recurse(0, 0, strings.Repeat(" ", 1+len(prefix)), printLineWidth-1)
	out := prefix + body + ","
	const dtype = "dtype=float32)"
	lastLine := len(out) - (strings.LastIndexByte(out, '\n') + 1)
	if lastLine+len(dtype)+1 > printLineWidth {
		return out + "\n" + strings.Repeat(" ", len(prefix)) + dtype
	}
	return out + " " + dtype
}

// summaryValues returns the values NumPy looks at to choose the number format: all of them,
// or when summarizing only those within edgeitems of either end along every axis.
func (a *Array) summaryValues(summarize bool) []float32 {
	if !summarize {
		return a.Data
	}
	var out []float32
	var walk func(axis, offset int)
	walk = func(axis, offset int) {
		if axis == len(a.Shape) {
			out = append(out, a.Data[offset])
			return
		}
		stride := 1
		for _, d := range a.Shape[axis+1:] {
			stride *= d
		}
		n := a.Shape[axis]
		for i := 0; i < n; i++ {
			if n > 2*printEdgeItems && i == printEdgeItems {
				i = n - printEdgeItems
			}
			walk(axis+1, offset+i*stride)
		}
	}
	walk(0, 0)
	return out
}

type arrayPrinter struct {
	a         *Array
	ff        floatFormat
	strides   []int
	summarize bool
}

// recurse is NumPy's _formatArray recurser (non-legacy mode) for the sub-array at offset along
// axis; hanging is the indentation of continuation lines, width the remaining line width.
func (p *arrayPrinter) recurse(axis, offset int, hanging string, width int) string {
	if axis == len(p.a.Shape) {
		return p.ff.format(p.a.Data[offset])
	}
	const sep = ", "
	nextHanging := hanging + " "
	nextWidth := width - 1
	n := p.a.Shape[axis]
	showSummary := p.summarize && 2*printEdgeItems < n
	leading, trailing := 0, n
	if showSummary {
		leading, trailing = printEdgeItems, printEdgeItems
	}
	child := func(i int) string {
		return p.recurse(axis+1, offset+i*p.strides[axis], nextHanging, nextWidth)
	}
	var s string
	if len(p.a.Shape)-axis == 1 {
		elemWidth := width - 1 // max(len(separator.rstrip()), len(']'))
		line := hanging
		for i := 0; i < leading; i++ {
			s, line = extendLine(s, line, child(i), elemWidth, hanging)
			line += sep
		}
		if showSummary {
			s, line = extendLine(s, line, "...", elemWidth, hanging)
			line += sep
		}
		for i := trailing; i > 1; i-- {
			s, line = extendLine(s, line, child(n-i), elemWidth, hanging)
			line += sep
		}
		s, line = extendLine(s, line, child(n-1), elemWidth, hanging)
		s += line
	} else {
		lineSep := "," + strings.Repeat("\n", len(p.a.Shape)-axis-1)
		for i := 0; i < leading; i++ {
			s += hanging + child(i) + lineSep
		}
		if showSummary {
			s += hanging + "..." + lineSep
		}
		for i := trailing; i > 1; i-- {
			s += hanging + child(n-i) + lineSep
		}
		s += hanging + child(n-1)
	}
	return "[" + s[len(hanging):] + "]"
}

func extendLine(s, line, word string, width int, prefix string) (string, string) {
	needsWrap := len(line)+len(word) > width
	if len(line) <= len(prefix) {
		needsWrap = false
	}
	if needsWrap {
		s += strings.TrimRight(line, " ") + "\n"
		line = prefix
	}
	return s, line + word
}
