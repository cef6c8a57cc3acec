package npy

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// python runs a snippet under the system Python with numpy (the oracle); tests skip when it is
// not installed.
func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	py := testenv.Python(t, "numpy")
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func seq(n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i)*0.37 - 11.25
	}
	return d
}

func TestWriteMatchesNumpySave(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		shape []int
	}{
		{"scalar", []int{}},
		{"vector", []int{5}},
		{"empty", []int{0}},
		{"matrix", []int{2, 3}},
		{"batch", []int{1, 224, 224, 3}},
		{"wide", []int{3, 1000}},
		{"bigfirst", []int{123456789012, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 1
			for _, d := range c.shape {
				n *= d
			}
			data := seq(n)
			path := filepath.Join(dir, c.name+".npy")
			if err := WriteFile(path, c.shape, data); err != nil {
				t.Fatal(err)
			}
			// numpy must load our file to the same values, and np.save of those values must be
			// byte-identical to our file.
			ref := filepath.Join(dir, c.name+".ref.npy")
			out := python(t, `
import sys, numpy as np
a = np.load(sys.argv[1])
assert a.dtype == np.float32, a.dtype
n = a.size
want = (np.arange(n, dtype=np.float32) * np.float32(0.37) - np.float32(11.25)).reshape(a.shape)
print(a.shape, bool(np.array_equal(a, want)))
np.save(sys.argv[2], a)
`, path, ref)
			if !strings.HasSuffix(strings.TrimSpace(out), "True") {
				t.Fatalf("numpy disagrees: %s", out)
			}
			got, _ := os.ReadFile(path)
			want, _ := os.ReadFile(ref)
			if !bytes.Equal(got, want) {
				t.Errorf("bytes differ from np.save:\n got %q\nwant %q", head(got), head(want))
			}
			shape, back, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(shape, c.shape) || !reflect.DeepEqual(back, data) {
				t.Errorf("round trip: shape %v, %d values", shape, len(back))
			}
		})
	}
}

func head(b []byte) []byte {
	if len(b) > 160 {
		return b[:160]
	}
	return b
}

func TestReadWhatNumpyWrites(t *testing.T) {
	dir := t.TempDir()
	python(t, `
import sys, os, numpy as np
from numpy.lib import format as fmt
d = sys.argv[1]
x = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7.0 - 1.5)
np.save(os.path.join(d, 'f8.npy'), x)
np.save(os.path.join(d, 'f4.npy'), x.astype(np.float32))
np.save(os.path.join(d, 'f4be.npy'), x.astype('>f4'))
np.save(os.path.join(d, 'f8be.npy'), x.astype('>f8'))
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(x.astype(np.float32)))
with open(os.path.join(d, 'v2.npy'), 'wb') as f:
    fmt.write_array(f, x.astype(np.float32), version=(2, 0))
with open(os.path.join(d, 'v3.npy'), 'wb') as f:
    fmt.write_array(f, x.astype(np.float32), version=(3, 0))
np.save(os.path.join(d, 'scalar.npy'), np.float32(2.5))
np.save(os.path.join(d, 'special.npy'), np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4028235e38], np.float32))
`, dir)
	want := make([]float32, 24)
	for i := range want {
		want[i] = float32(float64(i)/7.0 - 1.5)
	}
	for _, name := range []string{"f8", "f4", "f4be", "f8be", "fortran", "v2", "v3"} {
		shape, data, err := ReadFile(filepath.Join(dir, name+".npy"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(shape, []int{2, 3, 4}) {
			t.Errorf("%s: shape %v", name, shape)
		}
		if !reflect.DeepEqual(data, want) {
			t.Errorf("%s: data %v, want %v", name, data, want)
		}
	}
	shape, data, err := ReadFile(filepath.Join(dir, "scalar.npy"))
	if err != nil || len(shape) != 0 || !reflect.DeepEqual(data, []float32{2.5}) {
		t.Errorf("scalar: %v %v %v", shape, data, err)
	}
	_, data, err = ReadFile(filepath.Join(dir, "special.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(data[0])) || !math.IsInf(float64(data[1]), 1) || !math.IsInf(float64(data[2]), -1) ||
		math.Float32bits(data[3]) != 0x80000000 || math.Float32bits(data[4]) != 1 || data[5] != math.MaxFloat32 {
		t.Errorf("special values: %v", data)
	}
}

func TestReadErrors(t *testing.T) {
	var good bytes.Buffer
	if err := Write(&good, []int{2, 2}, []float32{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":       {nil, "truncated"},
		"bad magic":   {[]byte("PK\x03\x04 hello world"), "bad magic"},
		"truncated":   {g[:len(g)-3], "truncated"},
		"header only": {g[:40], "truncated"},
		"version":     {append([]byte("\x93NUMPY\x09\x00"), g[8:]...), "version 9.0"},
		"dtype":       {bytes.Replace(g, []byte("<f4"), []byte("<i4"), 1), `unsupported dtype "<i4"`},
		"shape":       {bytes.Replace(g, []byte("(2, 2)"), []byte("(2, x)"), 1), "shape"},
		"huge":        {bytes.Replace(g, []byte("(2, 2), }"), []byte("(9999999, 9999999,)}"), 1), "too large"},
	}
	for name, c := range cases {
		_, _, err := Read(bytes.NewReader(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "npy: ") {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
	if err := Write(&bytes.Buffer{}, []int{3}, []float32{1}); err == nil {
		t.Error("Write accepted a shape that does not match the data")
	}
}

func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.npy")
	if err := WriteFile(path, []int{2}, []float32{1, 2}); err != nil {
		t.Fatal(err)
	}
	// A failing write must leave the previous file intact and no temporary behind.
	if err := WriteFile(path, []int{3}, []float32{1}); err == nil {
		t.Fatal("expected an error")
	} else if !strings.Contains(err.Error(), `"`+path+`"`) {
		t.Errorf("error does not name the file: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
	_, data, err := ReadFile(path)
	if err != nil || !reflect.DeepEqual(data, []float32{1, 2}) {
		t.Errorf("previous file damaged: %v %v", data, err)
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("missing file error: %v", err)
	}
}
