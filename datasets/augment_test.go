package datasets

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// ulpDiff is the distance between two float32 values in units in the last place.
func ulpDiff(a, b float32) int64 {
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia < 0x80000000 != (ib < 0x80000000) {
		// Different signs: distance through zero.
		return (ia &^ 0x80000000) + (ib &^ 0x80000000)
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}

func decodeF32(t *testing.T, b64 string) []float32 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// goldenInput regenerates the inputs gen_affine.py feeds to SciPy.
func goldenInput(h, w, c int, seed uint32, integer bool) []float32 {
	rs := NewRandomState(seed)
	x := make([]float32, h*w*c)
	for i := range x {
		u := rs.RandomSample()
		if integer {
			x[i] = float32(math.Floor(u * 256))
		} else {
			x[i] = float32(u * 255)
		}
	}
	return x
}

func TestAffineMatchesSciPy(t *testing.T) {
	raw, err := os.ReadFile("testdata/affine_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			H, W, C   int
			InputSeed uint32 `json:"input_seed"`
			Integer   bool
			Shear     string
			Zx, Zy    string
			Out       string
		}
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no cases")
	}
	var worst int64
	exact, total := 0, 0
	for ci, cs := range g.Cases {
		src := goldenInput(cs.H, cs.W, cs.C, cs.InputSeed, cs.Integer)
		want := decodeF32(t, cs.Out)
		p := TransformParams{Shear: parseF(t, cs.Shear), Zx: parseF(t, cs.Zx), Zy: parseF(t, cs.Zy)}
		dst := make([]float32, len(src))
		if err := (ImageDataGenerator{}).Apply(src, cs.H, cs.W, cs.C, p, dst); err != nil {
			t.Fatal(err)
		}
		if len(want) != len(dst) {
			t.Fatalf("case %d: golden has %d values, want %d", ci, len(want), len(dst))
		}
		for i := range dst {
			d := ulpDiff(dst[i], want[i])
			if d > worst {
				worst = d
			}
			if d == 0 {
				exact++
			}
			total++
			if d > 1 {
				t.Fatalf("case %d (%dx%dx%d, %+v) value %d: Go %v, SciPy %v (%d ulp)", ci, cs.H, cs.W, cs.C, p, i, dst[i], want[i], d)
			}
		}
	}
	t.Logf("%d cases, %d values: %d bit-identical, worst %d ulp", len(g.Cases), total, exact, worst)
}

func TestApplyFlipsAndRescale(t *testing.T) {
	// 2×3 image, 2 channels: value = 10·row + col, channel adds 100.
	h, w, c := 2, 3, 2
	src := make([]float32, h*w*c)
	for r := 0; r < h; r++ {
		for q := 0; q < w; q++ {
			for k := 0; k < c; k++ {
				src[(r*w+q)*c+k] = float32(10*r + q + 100*k)
			}
		}
	}
	g := ImageDataGenerator{Rescale: 1.0 / 255}
	dst := make([]float32, len(src))
	if err := g.Apply(src, h, w, c, TransformParams{Zx: 1, Zy: 1, FlipHorizontal: true, FlipVertical: true}, dst); err != nil {
		t.Fatal(err)
	}
	scale := float32(1.0 / 255)
	for r := 0; r < h; r++ {
		for q := 0; q < w; q++ {
			for k := 0; k < c; k++ {
				want := float32(10*(h-1-r)+(w-1-q)+100*k) * scale
				if got := dst[(r*w+q)*c+k]; got != want {
					t.Fatalf("(%d,%d,%d) = %v, want %v", r, q, k, got, want)
				}
			}
		}
	}
	if src[0] != 0 {
		t.Fatal("Apply modified its input")
	}
	if err := g.Apply(src, h, w, c, TransformParams{Zx: 1, Zy: 1}, dst[:3]); err == nil {
		t.Fatal("want a size error")
	}
}

func TestRandomTransformDrawOrder(t *testing.T) {
	// Keras: shear, zx, zy, flip_h random(), flip_v random() — flips always drawn.
	g := ImageDataGenerator{ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}
	rs := NewRandomState(7)
	ref := NewRandomState(7)
	p := g.RandomTransform(rs)
	if want := ref.Uniform(-0.2, 0.2); p.Shear != want {
		t.Fatalf("shear %v want %v", p.Shear, want)
	}
	z := Zoom(0.2)
	if zx, zy := ref.Uniform(z[0], z[1]), ref.Uniform(z[0], z[1]); p.Zx != zx || p.Zy != zy {
		t.Fatalf("zoom %v,%v want %v,%v", p.Zx, p.Zy, zx, zy)
	}
	if want := ref.RandomSample() < 0.5; p.FlipHorizontal != want {
		t.Fatal("flip")
	}
	ref.RandomSample()
	if p.FlipVertical {
		t.Fatal("vertical flip is off")
	}
	if rs.Uint32() != ref.Uint32() {
		t.Fatal("draw count differs")
	}

	// No augmentation at all: still exactly two draws per image.
	rs, ref = NewRandomState(9), NewRandomState(9)
	p = ImageDataGenerator{}.RandomTransform(rs)
	ref.RandomSample()
	ref.RandomSample()
	if p != (TransformParams{Zx: 1, Zy: 1}) || rs.Uint32() != ref.Uint32() {
		t.Fatalf("identity generator: %+v or wrong draw count", p)
	}
}

func TestGeneratorValidate(t *testing.T) {
	bad := []ImageDataGenerator{
		{ShearRange: -1},
		{ShearRange: math.NaN()},
		{ZoomRange: [2]float64{1.2, 0.8}},
		{ZoomRange: [2]float64{0, 2}},
		{Rescale: math.Inf(1)},
	}
	for _, g := range bad {
		if err := g.validate(); err == nil {
			t.Errorf("%+v: want error", g)
		}
	}
	if err := (ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}).validate(); err != nil {
		t.Fatal(err)
	}
}
