package kernelext

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// imagenetClassIndex is Keras' imagenet_class_index.json (what keras.applications downloads on
// first use of decode_predictions): class number → [WordNet ID, label].
//
//go:embed imagenet_class_index.json
var imagenetClassIndex []byte

// NumClasses is the number of ImageNet classes the pretrained VGG16 and ResNet50 predict.
const NumClasses = 1000

var (
	classIndexOnce sync.Once
	classIndex     [NumClasses][2]string
	classIndexErr  error
)

func loadClassIndex() error {
	classIndexOnce.Do(func() {
		var m map[string][2]string
		if err := json.Unmarshal(imagenetClassIndex, &m); err != nil {
			classIndexErr = fmt.Errorf("kernelext: embedded imagenet_class_index.json: %w", err)
			return
		}
		for i := 0; i < NumClasses; i++ {
			e, ok := m[strconv.Itoa(i)]
			if !ok {
				classIndexErr = fmt.Errorf("kernelext: embedded imagenet_class_index.json lacks class %d", i)
				return
			}
			classIndex[i] = e
		}
	})
	return classIndexErr
}

// Prediction is one entry of DecodePredictions' result: Keras' (wnid, label, score) tuple.
type Prediction struct {
	WNID  string  // WordNet ID, e.g. "n07873807"
	Label string  // human-readable label with underscores, e.g. "pizza"
	Score float32 // the model's output for this class
}

// String prints the prediction as Python prints Keras' tuple, e.g.
// ('n07873807', 'pizza', 0.97680503), the score written as NumPy writes a float32.
func (p Prediction) String() string {
	return "(" + pyStrRepr(p.WNID) + ", " + pyStrRepr(p.Label) + ", " + Float32Repr(p.Score) + ")"
}

// DecodePredictions is Keras' decode_predictions: for each row of preds (shape (samples,
// 1000)), the top classes by score, highest first.
//
// Entries come in exactly Keras' order, ties included: Keras takes the last top indices of
// NumPy's argsort (an unstable introsort whose tie order this function reproduces), reverses
// them and then stable-sorts by score. A top larger than 1000 yields all 1000 classes, as
// Python's slicing does; a top below 1 is an error.
func DecodePredictions(preds *Array, top int) ([][]Prediction, error) {
	if preds == nil || len(preds.Shape) != 2 || preds.Shape[1] != NumClasses {
		shape := "None"
		if preds != nil {
			shape = TupleString(preds.Shape)
		}
		return nil, fmt.Errorf("kernelext: `decode_predictions` expects a batch of predictions "+
			"(i.e. a 2D array of shape (samples, 1000)). Found array with shape: %s", shape)
	}
	if top < 1 {
		return nil, fmt.Errorf("kernelext: decode_predictions: top must be at least 1, got %d", top)
	}
	if len(preds.Data) != preds.Size() {
		return nil, fmt.Errorf("kernelext: decode_predictions: array of shape %s holds %d values",
			TupleString(preds.Shape), len(preds.Data))
	}
	if err := loadClassIndex(); err != nil {
		return nil, err
	}
	top = min(top, NumClasses)
	results := make([][]Prediction, preds.Shape[0])
	for s := range results {
		row := preds.Data[s*NumClasses : (s+1)*NumClasses]
		order := argsort(row)
		result := make([]Prediction, top)
		for i := range result {
			c := order[NumClasses-1-i]
			result[i] = Prediction{WNID: classIndex[c][0], Label: classIndex[c][1], Score: row[c]}
		}
		sortByScoreDescending(result)
		results[s] = result
	}
	return results, nil
}

// MustDecodePredictions is DecodePredictions for notebook cells: it panics on error.
func MustDecodePredictions(preds *Array, top int) [][]Prediction {
	r, err := DecodePredictions(preds, top)
	if err != nil {
		panic(err)
	}
	return r
}

// FormatPredictions prints DecodePredictions' result as a Jupyter cell shows Keras' result
// (IPython's pretty printer, 79 columns), e.g.
//
//	[[('n07873807', 'pizza', 0.97680503),
//	  ('n07871810', 'meat_loaf', 0.012848727)]]
func FormatPredictions(preds [][]Prediction) string {
	p := newPrettyPrinter(79)
	p.pretty(func() {
		p.seq("[", "]", len(preds), func(i int) {
			p.pretty(func() {
				p.seq("[", "]", len(preds[i]), func(j int) {
					e := preds[i][j]
					p.pretty(func() {
						p.seq("(", ")", 3, func(k int) {
							p.pretty(func() {
								p.reprText([]string{pyStrRepr(e.WNID), pyStrRepr(e.Label), Float32Repr(e.Score)}[k])
							})
						})
					})
				})
			})
		})
	})
	return p.String()
}

// npLess is NumPy's ordering for floats: NaN sorts after everything.
func npLess(a, b float32) bool {
	return a < b || (b != b && a == a)
}

// argsort returns the indices that sort v ascending exactly as numpy.argsort(v) does with its
// default kind ('quicksort', which NumPy 1.24 implements as an introsort:
// numpy/core/src/npysort/quicksort.cpp aquicksort_ and heapsort.cpp aheapsort_). The algorithm
// is not stable, so equal scores come out in an order only this very procedure reproduces.
func argsort(v []float32) []int {
	num := len(v)
	tosort := make([]int, num)
	for i := range tosort {
		tosort[i] = i
	}
	if num < 2 {
		return tosort
	}
	const smallQuicksort = 15 // SMALL_QUICKSORT in npysort_common.h
	type span struct{ pl, pr, depth int }
	var stack []span
	pl, pr := 0, num-1
	cdepth := 0
	for n := num; n > 1; n >>= 1 {
		cdepth++
	}
	cdepth *= 2
	for {
		if cdepth < 0 {
			aheapsort(v, tosort[pl:pr+1])
		} else {
			for pr-pl > smallQuicksort {
				pm := pl + (pr-pl)>>1
				if npLess(v[tosort[pm]], v[tosort[pl]]) {
					tosort[pm], tosort[pl] = tosort[pl], tosort[pm]
				}
				if npLess(v[tosort[pr]], v[tosort[pm]]) {
					tosort[pr], tosort[pm] = tosort[pm], tosort[pr]
				}
				if npLess(v[tosort[pm]], v[tosort[pl]]) {
					tosort[pm], tosort[pl] = tosort[pl], tosort[pm]
				}
				vp := v[tosort[pm]]
				pi, pj := pl, pr-1
				tosort[pm], tosort[pj] = tosort[pj], tosort[pm]
				for {
					for pi++; npLess(v[tosort[pi]], vp); pi++ {
					}
					for pj--; npLess(vp, v[tosort[pj]]); pj-- {
					}
					if pi >= pj {
						break
					}
					tosort[pi], tosort[pj] = tosort[pj], tosort[pi]
				}
				pk := pr - 1
				tosort[pi], tosort[pk] = tosort[pk], tosort[pi]
				// Push the larger partition, continue with the smaller.
				cdepth--
				if pi-pl < pr-pi {
					stack = append(stack, span{pi + 1, pr, cdepth})
					pr = pi - 1
				} else {
					stack = append(stack, span{pl, pi - 1, cdepth})
					pl = pi + 1
				}
			}
			// Insertion sort.
			for pi := pl + 1; pi <= pr; pi++ {
				vi := tosort[pi]
				vp := v[vi]
				pj := pi
				for pj > pl && npLess(vp, v[tosort[pj-1]]) {
					tosort[pj] = tosort[pj-1]
					pj--
				}
				tosort[pj] = vi
			}
		}
		if len(stack) == 0 {
			break
		}
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pl, pr, cdepth = top.pl, top.pr, top.depth
	}
	return tosort
}

// aheapsort is NumPy's aheapsort_ on the index slice tosort.
func aheapsort(v []float32, tosort []int) {
	n := len(tosort)
	a := func(i int) *int { return &tosort[i-1] } // 1-based, as in NumPy
	for l := n >> 1; l > 0; l-- {
		tmp := *a(l)
		i, j := l, l<<1
		for j <= n {
			if j < n && npLess(v[*a(j)], v[*a(j + 1)]) {
				j++
			}
			if npLess(v[tmp], v[*a(j)]) {
				*a(i) = *a(j)
				i = j
				j += j
			} else {
				break
			}
		}
		*a(i) = tmp
	}
	for n > 1 {
		tmp := *a(n)
		*a(n) = *a(1)
		n--
		i, j := 1, 2
		for j <= n {
			if j < n && npLess(v[*a(j)], v[*a(j + 1)]) {
				j++
			}
			if npLess(v[tmp], v[*a(j)]) {
				*a(i) = *a(j)
				i = j
				j += j
			} else {
				break
			}
		}
		*a(i) = tmp
	}
}

// sortByScoreDescending is Python's list.sort(key=score, reverse=True). For lists of up to 64
// entries CPython's timsort is a single run detection plus binary insertion sort, reproduced
// here step by step so that even NaN scores (which compare false both ways) land where Python
// puts them. Longer lists use a stable sort, which is equivalent whenever no score is NaN.
func sortByScoreDescending(r []Prediction) {
	n := len(r)
	if n < 2 {
		return
	}
	if n > 64 {
		sort.SliceStable(r, func(i, j int) bool { return r[i].Score > r[j].Score })
		return
	}
	reversePredictions(r) // reverse=True: reverse, stable ascending sort, reverse back.
	lt := func(a, b Prediction) bool { return a.Score < b.Score }
	// count_run (CPython 3.11): a strictly descending run is reversed in place.
	run := 2
	if lt(r[1], r[0]) {
		for run < n && lt(r[run], r[run-1]) {
			run++
		}
		reversePredictions(r[:run])
	} else {
		for run < n && !lt(r[run], r[run-1]) {
			run++
		}
	}
	// binarysort of the rest into the run.
	for start := run; start < n; start++ {
		pivot := r[start]
		l, h := 0, start
		for l < h {
			p := l + (h-l)>>1
			if lt(pivot, r[p]) {
				h = p
			} else {
				l = p + 1
			}
		}
		copy(r[l+1:start+1], r[l:start])
		r[l] = pivot
	}
	reversePredictions(r)
}

func reversePredictions(r []Prediction) {
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
}

// pyStrRepr quotes s as Python's repr() does: single quotes unless the string contains a
// single quote and no double quote ("jack-o'-lantern").
func pyStrRepr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r > 0x7f && !strconv.IsPrint(r):
			if r <= 0xff {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else if r <= 0xffff {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
