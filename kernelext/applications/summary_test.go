package applications

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The goldens are written by testdata/gen_summary_goldens.py, which runs the real
// keras-applications 1.0.8 model definitions on a re-creation of Keras 2.3's layer ordering
// and print_summary (Keras core is not packaged in Debian), independently of this package.
func TestSummaryGoldens(t *testing.T) {
	cases := []struct {
		golden       string
		model        string
		includeTop   bool
		pooling      string
		inputShape   []int
		trainableFom string
		edit         func(a *Architecture) error
	}{
		{"vgg16", "vgg16", true, "", nil, "", nil},
		{"vgg16_notop", "vgg16", false, "", nil, "", nil},
		{"vgg16_notop_avg", "vgg16", false, "avg", nil, "", nil},
		{"vgg16_notop_224_max", "vgg16", false, "max", []int{224, 224, 3}, "", nil},
		{"vgg16_block5_trainable", "vgg16", true, "", nil, "block5_conv1", nil},
		{"resnet50", "resnet50", true, "", nil, "", nil},
		{"resnet50_notop", "resnet50", false, "", nil, "", nil},
		{"resnet50_notop_224_avg", "resnet50", false, "avg", []int{224, 224}, "", nil},
		{"resnet50_frozen", "resnet50", true, "", nil, "fc1000", nil},
		// Exercise 8.03: VGG16's layers but the last in a Sequential, frozen, plus Dense(1).
		{"exercise_8_03", "vgg16", true, "", nil, "", func(a *Architecture) error {
			if err := a.Until("fc2"); err != nil {
				return err
			}
			_ = a.SetTrainable(false)
			a.AsSequential("sequential_1")
			_, err := a.AddDense("", 1, "sigmoid")
			return err
		}},
		{"resnet50_notop_gap_dense", "resnet50", false, "", []int{224, 224}, "", func(a *Architecture) error {
			_ = a.SetTrainable(false)
			a.Name = "model_1"
			if _, err := a.AddGlobalPooling("", "avg"); err != nil {
				return err
			}
			_, err := a.AddDense("", 1, "sigmoid")
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			arch, err := ArchitectureByName(c.model, c.includeTop, c.pooling, c.inputShape)
			if err != nil {
				t.Fatal(err)
			}
			if c.edit != nil {
				if err := c.edit(arch); err != nil {
					t.Fatal(err)
				}
			}
			if c.trainableFom != "" {
				if err := arch.SetTrainableFrom(c.trainableFom); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(filepath.Join("testdata", "summary_"+c.golden+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			got := arch.Summary()
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("summary differs from golden at line %d:\n got %q\nwant %q", i+1, g, w)
					}
				}
			}
		})
	}
}

func TestParamTotals(t *testing.T) {
	cases := []struct {
		model                      string
		includeTop                 bool
		total, train, nonTrainable int
		layers                     int
	}{
		{"vgg16", true, 138357544, 138357544, 0, 23},
		{"vgg16", false, 14714688, 14714688, 0, 19},
		{"resnet50", true, 25636712, 25583592, 53120, 177},
		{"resnet50", false, 23587712, 23534592, 53120, 175},
	}
	for _, c := range cases {
		arch, err := ArchitectureByName(c.model, c.includeTop, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		total, train, non := arch.Params()
		if total != c.total || train != c.train || non != c.nonTrainable || len(arch.Layers) != c.layers {
			t.Errorf("%s include_top=%v: params %d/%d/%d, %d layers; want %d/%d/%d, %d layers", c.model,
				c.includeTop, total, train, non, len(arch.Layers), c.total, c.train, c.nonTrainable, c.layers)
		}
	}
}

func TestSummaryLineRules(t *testing.T) {
	cols := []int{32, 53, 65, 98}
	cases := []struct {
		fields []string
		want   string
	}{
		// A name longer than its column is cut at the column end, and its last kept character
		// is replaced by the separating space.
		{[]string{"bn2a_branch2a (BatchNormalization)", "(None, 56, 56, 64)", "256", "res2a_branch2a[0][0]"},
			"bn2a_branch2a (BatchNormalizati (None, 56, 56, 64)   256         res2a_branch2a[0][0]             "},
		// A field exactly as wide as its column loses its last character the same way.
		{[]string{strings.Repeat("a", 32), "b", "c", "d"},
			strings.Repeat("a", 31) + " b" + strings.Repeat(" ", 20) + "c" + strings.Repeat(" ", 11) + "d" + strings.Repeat(" ", 32)},
		// Continuation rows of "Connected to": three empty fields; trailing spaces are kept.
		{[]string{"", "", "", "bn2a_branch1[0][0]"},
			strings.Repeat(" ", 65) + "bn2a_branch1[0][0]" + strings.Repeat(" ", 98-65-18)},
		// A shape wider than its column: "(None, None, None, 2048)" cut at 53.
		{[]string{"activation_49 (Activation)", "(None, None, None, 2048)", "0", "add_16[0][0]"},
			"activation_49 (Activation)      (None, None, None, 2 0           add_16[0][0]                     "},
	}
	for _, c := range cases {
		got := SummaryLine(c.fields, cols)
		if got != c.want {
			t.Errorf("SummaryLine(%q)\n got %q\nwant %q", c.fields, got, c.want)
		}
		if len(got) != 98 {
			t.Errorf("SummaryLine(%q) has %d characters, want 98", c.fields, len(got))
		}
	}
	if got := SummaryLine([]string{"Layer (type)", "Output Shape", "Param #"}, []int{29, 55, 65}); got !=
		"Layer (type)                 Output Shape              Param #   " {
		t.Errorf("sequential header: %q", got)
	}
}

func TestPythonFormatting(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {53120, "53,120"}, {138357544, "138,357,544"}, {-1234, "-1,234"}} {
		if got := Thousands(c.n); got != c.want {
			t.Errorf("Thousands(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		dims []int
		want string
	}{{[]int{None, 224, 224, 3}, "(None, 224, 224, 3)"}, {[]int{None}, "(None,)"}, {[]int{None, None, None, 64}, "(None, None, None, 64)"}, {nil, "()"}} {
		if got := PythonTuple(c.dims); got != c.want {
			t.Errorf("PythonTuple(%v) = %q, want %q", c.dims, got, c.want)
		}
	}
}

func TestArchitectureEdits(t *testing.T) {
	arch, err := VGG16Architecture(true, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := arch.Until("fc2"); err != nil {
		t.Fatal(err)
	}
	if got := arch.Output().Name; got != "fc2" || len(arch.Layers) != 22 {
		t.Errorf("Until(fc2): output %s, %d layers", got, len(arch.Layers))
	}
	total, _, _ := arch.Params()
	if total != 138357544-4097000 {
		t.Errorf("VGG16 without predictions has %d params", total)
	}
	if err := arch.SetTrainable(false, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("SetTrainable on a missing layer: %v", err)
	}

	res, _ := ResNet50Architecture(false, "", nil)
	// Between the two branches of a conv block: res2a_branch1 would dangle.
	if err := res.Clone().Until("bn2a_branch2c"); err == nil {
		t.Error("Until(bn2a_branch2c) accepted a cut that leaves res2a_branch1 unconnected")
	}
	if err := res.Clone().Until("activation_4"); err != nil {
		t.Errorf("Until(activation_4): %v", err)
	}
	for _, c := range []struct {
		top     bool
		pooling string
		shape   []int
	}{{false, "mean", nil}, {true, "", []int{112, 112, 3}}, {false, "", []int{16, 16, 3}}, {false, "", []int{64, 64, 1}}} {
		if _, err := VGG16Architecture(c.top, c.pooling, c.shape); err == nil {
			t.Errorf("VGG16Architecture(%v, %q, %v) accepted", c.top, c.pooling, c.shape)
		}
	}
}
