package kernelext

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// reprCases makes float32 arrays with numpy, saving each as NAME.npy with numpy's repr() in
// NAME.txt; the test prints the same arrays with Array.String.
const reprCases = `
import sys, os, numpy as np
d = sys.argv[1]
rng = np.random.RandomState(7)
mean = np.array([103.939, 116.779, 123.68], np.float32)
cases = {}
img = rng.randint(0, 256, size=(1, 224, 224, 3)).astype(np.float32)
cases['preprocessed'] = img[..., ::-1] - mean
cases['preprocessed_small'] = (rng.randint(0, 256, size=(1, 5, 4, 3)).astype(np.float32)[..., ::-1] - mean)
cases['hwc'] = img[0]
cases['ints'] = np.array([1, 2, 3], np.float32)
cases['scalar'] = np.array(2.5, np.float32)
cases['scalar_exp'] = np.array(1.25e-7, np.float32)
cases['empty'] = np.zeros((0,), np.float32)
cases['empty2'] = np.zeros((2, 0), np.float32)
cases['zeros'] = np.zeros((2, 3), np.float32)
cases['negzero'] = np.array([-0.0, 1.5], np.float32)
e = np.exp(rng.randn(1, 1000).astype(np.float32) * 3)
cases['softmax'] = (e / e.sum()).astype(np.float32)
cases['flat1000'] = rng.rand(1000).astype(np.float32)
cases['cube1000'] = rng.randn(10, 10, 10).astype(np.float32)
cases['cube1100'] = rng.randn(11, 10, 10).astype(np.float32)
cases['cutoff'] = rng.uniform(0.001, 0.9, size=(4, 5)).astype(np.float32)
cases['special'] = np.array([np.nan, np.inf, -np.inf, 1.5, -2.25], np.float32)
cases['special_exp'] = np.array([np.nan, 1e-9, -np.inf], np.float32)
cases['only_nan'] = np.array([np.nan, np.nan], np.float32)
cases['big'] = np.array([1e9, 2.5, -3e10], np.float32)
cases['long_row'] = rng.randn(3, 40).astype(np.float32) * 100
cases['ratio'] = np.array([0.001, 1.0, 0.0011, 1.1], np.float32)
for k in range(-6, 10, 2):
    cases['scale%+d' % k] = (rng.randn(3, 4) * 10.0 ** k).astype(np.float32)
for i in range(5):
    n = rng.randint(1, 9)
    shape = tuple(rng.randint(1, 12, size=n))
    if np.prod(shape) > 200000:
        continue
    cases['rand%d' % i] = (rng.randn(*shape) * 10.0 ** rng.randint(-3, 4)).astype(np.float32)
for name, a in cases.items():
    np.save(os.path.join(d, name + '.npy'), a)
    with open(os.path.join(d, name + '.txt'), 'w') as f:
        f.write(repr(a))
`

func TestArrayStringMatchesNumpy(t *testing.T) {
	testenv.Python(t, "numpy")
	dir := t.TempDir()
	runPython(t, reprCases, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.npy"))
	if len(files) < 20 {
		t.Fatalf("oracle produced only %d cases", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".npy")
		shape, data, err := npy.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(strings.TrimSuffix(f, ".npy") + ".txt")
		got := (&Array{Shape: shape, Data: data}).String()
		if got != string(want) {
			t.Errorf("%s: repr differs\n got:\n%s\nwant:\n%s", name, got, want)
		}
	}
}

func TestFloat32ReprMatchesNumpy(t *testing.T) {
	testenv.Python(t, "numpy")
	vals := []float32{0.97680503, 0.012848727, 0.0019428912, 0.0009799759, 1, 0, 1e-4, 1.0001e-4,
		9.999e-5, 1e-5, 1.5e-7, 1e16, 9.99e15, 123456.79, 3.4028235e38, 1.4e-45, 0.1, 0.30524516,
		float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -2.5e-6}
	// Plus a deterministic spread over many magnitudes.
	x := uint32(12345)
	for i := 0; i < 2000; i++ {
		x = x*1664525 + 1013904223
		f := math.Float32frombits(x)
		if math.IsNaN(float64(f)) {
			continue
		}
		vals = append(vals, f)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "v.npy")
	if err := npy.WriteFile(path, []int{len(vals)}, vals); err != nil {
		t.Fatal(err)
	}
	out := runPython(t, `
import sys, numpy as np
for v in np.load(sys.argv[1]):
    print(repr(v))
`, path)
	want := strings.Split(strings.TrimSpace(out), "\n")
	if len(want) != len(vals) {
		t.Fatalf("oracle printed %d lines for %d values", len(want), len(vals))
	}
	bad := 0
	for i, v := range vals {
		if got := Float32Repr(v); got != want[i] {
			if bad++; bad < 20 {
				t.Errorf("Float32Repr(%08x) = %q, numpy says %q", math.Float32bits(v), got, want[i])
			}
		}
	}
}
