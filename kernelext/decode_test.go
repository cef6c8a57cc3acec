package kernelext

import (
	"crypto/md5"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// The book's printed result of decode_predictions for pizza.jpg (an output produced by Keras
// and IPython, not by this package).
const bookPizza = `[[('n07873807', 'pizza', 0.97680503),
  ('n07871810', 'meat_loaf', 0.012848727),
  ('n07880968', 'burrito', 0.0019428912),
  ('n04270147', 'spatula', 0.0019108421),
  ('n03887697', 'paper_towel', 0.0009799759)]]`

func TestFormatPredictionsMatchesBook(t *testing.T) {
	preds := [][]Prediction{{
		{"n07873807", "pizza", 0.97680503},
		{"n07871810", "meat_loaf", 0.012848727},
		{"n07880968", "burrito", 0.0019428912},
		{"n04270147", "spatula", 0.0019108421},
		{"n03887697", "paper_towel", 0.0009799759},
	}}
	if got := FormatPredictions(preds); got != bookPizza {
		t.Errorf("got\n%s\nwant\n%s", got, bookPizza)
	}
	if got := preds[0][0].String(); got != "('n07873807', 'pizza', 0.97680503)" {
		t.Errorf("Prediction.String() = %s", got)
	}
	if got := (Prediction{"n03590841", "jack-o'-lantern", 1e-5}).String(); got != `('n03590841', "jack-o'-lantern", 1e-05)` {
		t.Errorf("Prediction.String() = %s", got)
	}
}

func ExampleDecodePredictions() {
	preds := NewArray(1, NumClasses)
	preds.Data[963] = 0.97680503 // pizza
	preds.Data[962] = 0.012848727
	preds.Data[965] = 0.0019428912
	top, err := DecodePredictions(preds, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(FormatPredictions(top))
	fmt.Printf("%s (%.2f%%)\n", top[0][0].Label, top[0][0].Score*100)
	_, err = DecodePredictions(NewArray(1000), 5)
	fmt.Println(err)
	// Output:
	// [[('n07873807', 'pizza', 0.97680503),
	//   ('n07871810', 'meat_loaf', 0.012848727),
	//   ('n07880968', 'burrito', 0.0019428912)]]
	// pizza (97.68%)
	// kernelext: `decode_predictions` expects a batch of predictions (i.e. a 2D array of shape (samples, 1000)). Found array with shape: (1000,)
}

// kerasDecode imports the real keras_applications.imagenet_utils.decode_predictions
// (keras-applications 1.0.8, Debian's python3-keras-applications) through testdata/keras_libs.py,
// which hands it the embedded class index instead of a download.
const kerasDecode = `
import sys, os, json, numpy as np
sys.path.insert(0, 'testdata')
from keras_libs import decode_predictions
`

func TestDecodePredictionsMatchesKeras(t *testing.T) {
	testenv.Python(t, "numpy", "keras_applications")
	dir := t.TempDir()
	// Rows full of ties (values from a handful of levels), a softmax-like row, a constant row,
	// rows with NaN, sorted and periodic rows.
	runPython(t, `
import sys, os, numpy as np
d = sys.argv[1]
rng = np.random.RandomState(3)
rows = []
for levels in (2, 3, 5, 17, 1000):
    for _ in range(6):
        rows.append(rng.randint(0, levels, size=1000).astype(np.float32) / levels)
e = np.exp(rng.randn(1000) * 4); rows.append((e / e.sum()).astype(np.float32))
rows.append(np.full(1000, 0.001, np.float32))
r = rng.rand(1000).astype(np.float32); r[[5, 500, 999]] = np.nan; rows.append(r)
r = rng.randint(0, 4, size=1000).astype(np.float32); r[rng.rand(1000) < 0.1] = np.nan; rows.append(r)
rows.append(np.arange(1000, dtype=np.float32) % 7)
rows.append(np.sort(rng.randint(0, 9, size=1000)).astype(np.float32))
rows.append(np.sort(rng.randint(0, 9, size=1000))[::-1].astype(np.float32))
rows.append(np.tile(np.array([3, 1, 2, 3, 3, 0, 1], np.float32), 143)[:1000])
a = np.stack(rows)
np.save(os.path.join(d, 'preds.npy'), a)
`, dir)
	shape, data, err := npy.ReadFile(filepath.Join(dir, "preds.npy"))
	if err != nil {
		t.Fatal(err)
	}
	preds := &Array{Shape: shape, Data: data}
	tops := []int{1, 3, 5, 10, 17, 64, 65, 200, 1000, 1500}
	want := runPython(t, kerasDecode+`
a = np.load(sys.argv[1])
out = {}
for top in (1, 3, 5, 10, 17, 64, 65, 200, 1000, 1500):
    res = decode_predictions(a, top=top)
    out[top] = [[[w, l, repr(s)] for (w, l, s) in r] for r in res]
print(json.dumps(out))
`, filepath.Join(dir, "preds.npy"))
	var wantByTop map[string][][][3]string
	if err := json.Unmarshal([]byte(want), &wantByTop); err != nil {
		t.Fatal(err)
	}
	for _, top := range tops {
		wantRows := wantByTop[fmt.Sprint(top)]
		got, err := DecodePredictions(preds, top)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(wantRows) {
			t.Fatalf("top=%d: %d rows, want %d", top, len(got), len(wantRows))
		}
		for r := range got {
			hasNaN := false
			for _, p := range got[r] {
				hasNaN = hasNaN || math.IsNaN(float64(p.Score))
			}
			if hasNaN && top > 64 {
				continue // documented: NaN ordering is reproduced for top ≤ 64 only
			}
			if len(got[r]) != len(wantRows[r]) {
				t.Errorf("top=%d row %d: %d entries, want %d", top, r, len(got[r]), len(wantRows[r]))
				continue
			}
			for i, w := range wantRows[r] {
				g := got[r][i]
				if g.WNID != w[0] || g.Label != w[1] || Float32Repr(g.Score) != w[2] {
					t.Errorf("top=%d row %d entry %d: got %v, Keras %v", top, r, i, g, w)
					break
				}
			}
		}
	}
}

// TestClassIndexIsKeras checks the embedded class index against the MD5 that Keras' get_file
// verifies after downloading imagenet_class_index.json (keras_applications/imagenet_utils.py).
func TestClassIndexIsKeras(t *testing.T) {
	if got := fmt.Sprintf("%x", md5.Sum(imagenetClassIndex)); got != "c2c37ea517e94d9795004a39431a14cb" {
		t.Errorf("imagenet_class_index.json md5 %s differs from Keras' c2c37ea517e94d9795004a39431a14cb", got)
	}
	if err := loadClassIndex(); err != nil {
		t.Fatal(err)
	}
	if classIndex[386] != [2]string{"n02504458", "African_elephant"} || classIndex[619][1] != "lampshade" {
		t.Errorf("unexpected entries: %v %v", classIndex[386], classIndex[619])
	}
}

func TestDecodePredictionsErrors(t *testing.T) {
	for _, shape := range [][]int{{1000}, {1, 999}, {2, 1000, 1}, {}} {
		_, err := DecodePredictions(NewArray(shape...), 5)
		want := "Found array with shape: " + TupleString(shape)
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("shape %v: error %v", shape, err)
		}
	}
	if _, err := DecodePredictions(NewArray(1, 1000), 0); err == nil {
		t.Error("top=0 accepted")
	}
}

func TestArgsortMatchesNumpy(t *testing.T) {
	testenv.Python(t, "numpy")
	dir := t.TempDir()
	runPython(t, `
import sys, os, numpy as np
rng = np.random.RandomState(11)
for n in (1, 2, 3, 16, 17, 18, 33, 100, 1000, 4097):
    for levels in (1, 2, 3, 50, 10**6):
        v = (rng.randint(0, levels, size=n) / float(levels)).astype(np.float32)
        np.save(os.path.join(sys.argv[1], 'v_%d_%d.npy' % (n, levels)), v)
        np.save(os.path.join(sys.argv[1], 'i_%d_%d.npy' % (n, levels)), v.argsort().astype(np.float32))
        np.save(os.path.join(sys.argv[1], 'h_%d_%d.npy' % (n, levels)), v.argsort(kind='heapsort').astype(np.float32))
`, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "v_*.npy"))
	for _, f := range files {
		_, v, err := npy.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, idx, err := npy.ReadFile(strings.Replace(f, "v_", "i_", 1))
		if err != nil {
			t.Fatal(err)
		}
		got := argsort(v)
		for i := range got {
			if float32(got[i]) != idx[i] {
				t.Errorf("%s: argsort differs from numpy at %d: %d vs %v", filepath.Base(f), i, got[i], idx[i])
				break
			}
		}
		// The introsort falls back to NumPy's heapsort on deep recursion; check that one
		// against argsort(kind='heapsort'), which is the same routine.
		_, hidx, err := npy.ReadFile(strings.Replace(f, "v_", "h_", 1))
		if err != nil {
			t.Fatal(err)
		}
		heap := make([]int, len(v))
		for i := range heap {
			heap[i] = i
		}
		aheapsort(v, heap)
		for i := range heap {
			if float32(heap[i]) != hidx[i] {
				t.Errorf("%s: heapsort differs from numpy at %d: %d vs %v", filepath.Base(f), i, heap[i], hidx[i])
				break
			}
		}
	}
}

// TestFormatPredictionsMatchesIPython compares FormatPredictions with IPython's pretty printer
// (what a Jupyter cell shows) on Keras' own decode_predictions output for batches of several
// sizes and lengths.
func TestFormatPredictionsMatchesIPython(t *testing.T) {
	testenv.Python(t, "numpy", "IPython", "keras_applications")
	dir := t.TempDir()
	runPython(t, `
import sys, os, numpy as np
rng = np.random.RandomState(5)
for samples in (1, 2, 3, 5):
    e = np.exp(rng.randn(samples, 1000) * rng.choice([1, 3, 6]))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    p[0, 607] = 0.25  # jack-o'-lantern, printed with double quotes
    np.save(os.path.join(sys.argv[1], 'p%d.npy' % samples), p)
`, dir)
	want := runPython(t, kerasDecode+`
from IPython.lib.pretty import pretty
for samples in (1, 2, 3, 5):
    for top in (1, 2, 3, 5, 8):
        p = np.load(os.path.join(sys.argv[1], 'p%d.npy' % samples))
        sys.stdout.write(pretty(decode_predictions(p, top=top)) + '\x00')
`, dir)
	outs := strings.Split(want, "\x00")
	k := 0
	for _, samples := range []int{1, 2, 3, 5} {
		shape, data, err := npy.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d.npy", samples)))
		if err != nil {
			t.Fatal(err)
		}
		for _, top := range []int{1, 2, 3, 5, 8} {
			got := FormatPredictions(MustDecodePredictions(&Array{Shape: shape, Data: data}, top))
			if got != outs[k] {
				t.Errorf("samples=%d top=%d:\n got:\n%s\nwant:\n%s", samples, top, got, outs[k])
			}
			k++
		}
	}
}
