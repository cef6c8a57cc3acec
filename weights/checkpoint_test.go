package weights

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// python is Debian's interpreter, which has python3-h5py; a python3 earlier on PATH may not.
const python = "/usr/bin/python3"

var (
	ckptOnce sync.Once
	ckptDir  string
	ckptErr  error
	ckptSkip string
)

// checkpoints runs testdata/make_checkpoints.py once per test binary; tests skip without h5py.
func checkpoints(t *testing.T) string {
	t.Helper()
	ckptOnce.Do(func() {
		if err := exec.Command(python, "-c", "import h5py, numpy").Run(); err != nil {
			ckptSkip = "h5py not available (" + python + " -c 'import h5py' failed: " + err.Error() + ")"
			return
		}
		if ckptDir, ckptErr = os.MkdirTemp("", "weights-test-"); ckptErr != nil {
			return
		}
		if out, err := exec.Command(python, "testdata/make_checkpoints.py", ckptDir).CombinedOutput(); err != nil {
			ckptErr = errors.New("make_checkpoints.py: " + err.Error() + "\n" + string(out))
		}
	})
	if ckptSkip != "" {
		testenv.SkipMissing(t, "%s", ckptSkip)
	}
	if ckptErr != nil {
		t.Fatal(ckptErr)
	}
	return ckptDir
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperProcess())
	}
	code := m.Run()
	if ckptDir != "" {
		os.RemoveAll(ckptDir)
	}
	os.Exit(code)
}

type expArray struct {
	Shape  []int    `json:"shape"`
	Values []string `json:"values"`
}

type expLayer struct {
	Name   string              `json:"name"`
	Keys   []string            `json:"keys"`
	Arrays map[string]expArray `json:"arrays"`
}

type expFile struct {
	Layout       string     `json:"layout"`
	KerasVersion string     `json:"keras_version"`
	Backend      string     `json:"backend"`
	Arch         string     `json:"arch"`
	Layers       []expLayer `json:"layers"`
	NaN          int        `json:"nan"`
	Inf          int        `json:"inf"`
}

func loadExpected(t *testing.T, dir string) map[string]expFile {
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]expFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOpenLayouts opens each Keras-layout file make_checkpoints.py writes and compares layer
// order, canonical keys, shapes and every value with what the script wrote.
func TestOpenLayouts(t *testing.T) {
	dir := checkpoints(t)
	for name, want := range loadExpected(t, dir) {
		t.Run(name, func(t *testing.T) {
			c, err := Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if c.Layout != want.Layout || c.KerasVersion != want.KerasVersion || c.Backend != want.Backend {
				t.Errorf("layout %q, keras_version %q, backend %q; want %q, %q, %q",
					c.Layout, c.KerasVersion, c.Backend, want.Layout, want.KerasVersion, want.Backend)
			}
			if got := c.Architecture(); got != want.Arch {
				t.Errorf("Architecture() = %q, want %q", got, want.Arch)
			}
			var gotNames, wantNames []string
			for _, l := range c.Layers() {
				gotNames = append(gotNames, l.Name)
			}
			for _, l := range want.Layers {
				wantNames = append(wantNames, l.Name)
			}
			if !reflect.DeepEqual(gotNames, wantNames) {
				t.Fatalf("layers %v\nwant %v", gotNames, wantNames)
			}
			for _, wl := range want.Layers {
				l, ok := c.Layer(wl.Name)
				if !ok {
					t.Fatalf("Layer(%q) missing", wl.Name)
				}
				if len(wl.Keys) == 0 {
					wl.Keys = nil
				}
				if !reflect.DeepEqual(l.Keys, wl.Keys) {
					t.Errorf("layer %s: keys %v, want %v", wl.Name, l.Keys, wl.Keys)
				}
				for key, wa := range wl.Arrays {
					got, err := c.Expect(wl.Name, key, wa.Shape...)
					if err != nil {
						t.Errorf("%v", err)
						continue
					}
					for i, s := range wa.Values {
						v, _ := strconv.ParseFloat(s, 64)
						g := float64(got.Data[i])
						if g != v && !(math.IsNaN(g) && math.IsNaN(v)) {
							t.Errorf("layer %s %s[%d] = %v, want %v", wl.Name, key, i, g, v)
							break
						}
					}
				}
			}
			nan, inf := 0, 0
			for _, w := range c.Warnings() {
				var n, i, total int
				if _, err := fmtSscanWarning(w, &n, &i, &total); err == nil {
					nan, inf = nan+n, inf+i
				}
			}
			if nan != want.NaN || inf != want.Inf {
				t.Errorf("warnings %q: %d NaN, %d inf; want %d, %d", c.Warnings(), nan, inf, want.NaN, want.Inf)
			}
		})
	}
}

// fmtSscanWarning extracts the counts from a warning "...: N NaN and M infinite values of T".
func fmtSscanWarning(w string, nan, inf, total *int) (int, error) {
	i := strings.LastIndex(w, ": ")
	if i < 0 {
		return 0, errors.New("no counts")
	}
	f := strings.Fields(w[i+2:])
	if len(f) != 8 {
		return 0, errors.New("bad warning " + w)
	}
	var err error
	if *nan, err = strconv.Atoi(f[0]); err != nil {
		return 0, err
	}
	if *inf, err = strconv.Atoi(f[3]); err != nil {
		return 0, err
	}
	*total, err = strconv.Atoi(f[7])
	return 3, err
}

func TestNaNWarningText(t *testing.T) {
	dir := checkpoints(t)
	c, err := Open(filepath.Join(dir, "nan.h5"))
	if err != nil {
		t.Fatal(err)
	}
	want := `layer "block1_conv1" kernel (/block1_conv1/block1_conv1_W_1:0): 2 NaN and 1 infinite values of 54`
	if w := c.Warnings(); len(w) != 1 || w[0] != want {
		t.Errorf("Warnings() = %q, want [%q]", w, want)
	}
}

func TestExpectErrors(t *testing.T) {
	dir := checkpoints(t)
	vgg := MustOpen(filepath.Join(dir, "keras1_vgg16.h5"))
	resnet := MustOpen(filepath.Join(dir, "keras1_resnet50.h5"))
	notop := MustOpen(filepath.Join(dir, "keras1_vgg16_notop.h5"))
	cases := []struct {
		name  string
		c     *Checkpoint
		layer string
		key   string
		shape []int
		want  string
	}{
		{"wrong shape", vgg, "fc1", Kernel, []int{2048, 1000},
			`weights: keras1_vgg16.h5: layer "fc1" kernel has shape (8, 3), model expects (2048, 1000)`},
		{"wrong rank", vgg, "fc1", Bias, []int{3, 1},
			`weights: keras1_vgg16.h5: layer "fc1" bias has shape (3,), model expects (3, 1)`},
		{"resnet layer in vgg file", vgg, "res2a_branch2a", Kernel, nil,
			`weights: keras1_vgg16.h5: no layer "res2a_branch2a": the model expects a ResNet50 checkpoint, but this file holds VGG16 layers block1_conv1, block1_conv2, block2_conv1, ..., predictions (16 layers with weights)`},
		{"vgg layer in resnet file", resnet, "block1_conv1", Kernel, nil,
			`weights: keras1_resnet50.h5: no layer "block1_conv1": the model expects a VGG16 checkpoint, but this file holds ResNet50 layers conv1, bn_conv1, res2a_branch2a, ..., fc1000 (107 layers with weights)`},
		{"top layer in notop file", notop, "fc1", Kernel, nil,
			`weights: keras1_vgg16_notop.h5: no layer "fc1": this is a VGG16 checkpoint without the classifier (a *_notop.h5 file for include_top=False); the model needs the full file`},
		{"unknown layer", vgg, "dense_7", Kernel, nil,
			`weights: keras1_vgg16.h5: no layer "dense_7" in this VGG16 checkpoint (it holds block1_conv1, block1_conv2, block2_conv1, ..., predictions (16 layers with weights))`},
		{"weightless layer", vgg, "block1_pool", Kernel, nil,
			`weights: keras1_vgg16.h5: layer "block1_pool" has no kernel (it has no weights)`},
		{"missing key", resnet, "conv1", Gamma, nil,
			`weights: keras1_resnet50.h5: layer "conv1" has no gamma (it has kernel, bias)`},
	}
	for _, tc := range cases {
		_, err := tc.c.Expect(tc.layer, tc.key, tc.shape...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.name, err, tc.want)
		}
	}
	// The conversion Keras 1 files need: running_std holds the variance, under moving_variance.
	l, _ := resnet.Layer("bn_conv1")
	if !reflect.DeepEqual(l.Keys, []string{Gamma, Beta, MovingMean, MovingVariance}) {
		t.Errorf("bn_conv1 keys %v", l.Keys)
	}
	if got := l.Datasets[MovingVariance]; got != "/bn_conv1/bn_conv1_running_std:0" {
		t.Errorf("moving_variance read from %s", got)
	}
	if s := vgg.String(); s != "keras1_vgg16.h5: VGG16, Keras 1 layout, 23 layers (16 with weights), 567 parameters" {
		t.Errorf("String() = %q", s)
	}
}

func TestBadFiles(t *testing.T) {
	dir := checkpoints(t)
	tmp := t.TempDir()
	vgg, err := os.ReadFile(filepath.Join(dir, "keras1_vgg16.h5"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(tmp, "absent.h5"), "weights: absent.h5: cannot open: no such file or directory"},
		{"empty", write("empty.h5", nil), "weights: empty.h5: empty file (0 bytes), not an HDF5 file"},
		{"text", write("page.h5", []byte("<html>Not Found</html>\n")), "weights: page.h5: not an HDF5 file (no HDF5 signature found)"},
		{"truncated", write("cut.h5", vgg[:len(vgg)/2]), "weights: cut.h5: truncated file: superblock says"},
		{"not keras", filepath.Join(dir, "not_keras.h5"), "weights: not_keras.h5: not a Keras weights file: no layer_names attribute in / (top-level members: x)"},
		{"keras 3", filepath.Join(dir, "keras3.h5"), "Keras 3 .weights.h5 file, which this package does not read"},
	}
	for _, tc := range cases {
		_, err := Open(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	// Cutting the data short (the superblock's end-of-file check aside) must also fail cleanly:
	// patch the stored end-of-file address so only the dataset reads notice.
	cut := append([]byte(nil), vgg[:len(vgg)-100]...)
	copy(cut[40:48], le64(uint64(len(cut))))
	if _, err := Open(write("cut2.h5", cut)); err == nil || !strings.HasPrefix(err.Error(), "weights: cut2.h5: ") {
		t.Errorf("truncated data: %v", err)
	}
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

func TestCanonicalKey(t *testing.T) {
	cases := []struct{ layer, weight, want string }{
		{"block1_conv1", "block1_conv1_W_1:0", Kernel},
		{"block1_conv1", "block1_conv1_b_1:0", Bias},
		{"conv1", "conv1_W:0", Kernel},
		{"bn_conv1", "bn_conv1_running_mean:0", MovingMean},
		{"bn_conv1", "bn_conv1_running_std:0", MovingVariance},
		{"bn2a_branch2a", "bn2a_branch2a_gamma:0", Gamma},
		{"dense_1", "dense_1/kernel:0", Kernel},
		{"dense_1_1", "model_1/dense_1_1/bias:0", Bias},
		{"renamed", "old_name_W_1:0", Kernel},
		{"renamed", "old_name_beta:0", Beta},
		{"sep", "sep/depthwise_kernel:0", "depthwise_kernel"},
		{"lstm", "lstm/recurrent_kernel:0", "recurrent_kernel"},
	}
	for _, c := range cases {
		if got := canonicalKey(c.layer, c.weight); got != c.want {
			t.Errorf("canonicalKey(%q, %q) = %q, want %q", c.layer, c.weight, got, c.want)
		}
	}
}

// WithArrayMemory: every array is read into the memory the caller gives (same values as a
// plain Open), nil lets Open allocate, and memory of the wrong size is refused by name.
func TestArrayMemory(t *testing.T) {
	path := filepath.Join(checkpoints(t), "keras1_vgg16.h5")
	plain := MustOpen(path)
	given := map[string][]float32{}
	c, err := Open(path, WithArrayMemory(func(layer, key string, shape []int) []float32 {
		if key == "bias" {
			return nil
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		given[layer+"/"+key] = make([]float32, n)
		return given[layer+"/"+key]
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range plain.Layers() {
		for _, key := range l.Keys {
			want := l.Arrays[key].Data
			got := c.MustExpect(l.Name, key, l.Arrays[key].Shape...).Data
			if !slices.Equal(got, want) {
				t.Errorf("%s/%s: values differ from a plain Open", l.Name, key)
			}
			if mem, ok := given[l.Name+"/"+key]; ok != (key != "bias") || ok && &mem[0] != &got[0] {
				t.Errorf("%s/%s: read into the given memory = %v, want %v", l.Name, key, ok && &mem[0] == &got[0], key != "bias")
			}
		}
	}
	if len(given) == 0 {
		t.Fatal("no array was read into given memory")
	}
	_, err = Open(path, WithArrayMemory(func(layer, key string, shape []int) []float32 { return make([]float32, 1) }))
	if err == nil || !strings.Contains(err.Error(), "1 values provided for") {
		t.Errorf("memory of the wrong size: error %v, want one saying how many values were provided", err)
	}
}
