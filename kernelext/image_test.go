package kernelext

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// bookDir is where the book's images live: <repo>/../shared/data/... (kernelext is one level
// below the repository root).
var bookDir = filepath.Join("..", "..", "shared", "data", "keras-workshop-ch08", "Prediction")

type goldenManifest struct {
	Pillow string `json:"pillow"`
	Cases  []struct {
		Name         string `json:"name"`
		Input        string `json:"input"`
		Full         bool   `json:"full"`
		Preprocessed bool   `json:"preprocessed"`
	} `json:"cases"`
	Broken []string `json:"broken"`
}

func readManifest(t *testing.T) goldenManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m goldenManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// inputPath resolves a manifest input; book images are skipped with a message when the
// shared data folder is absent.
func inputPath(t *testing.T, input string) string {
	t.Helper()
	if name, ok := strings.CutPrefix(input, "book:"); ok {
		p := filepath.Join(bookDir, name)
		if _, err := os.Stat(p); err != nil {
			testenv.SkipMissing(t, "book image %s not available (expected the shared data folder next to the repository): %v", p, err)
		}
		return p
	}
	return filepath.Join("testdata", input)
}

// readGoldenPNG decodes an 8-bit RGB PNG written by Pillow.
func readGoldenPNG(t *testing.T, path string) *image.RGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rgba, ok := m.(*image.RGBA)
	if !ok {
		t.Fatalf("%s: golden decodes to %T, want an opaque RGB PNG", path, m)
	}
	return rgba
}

// compareRGB returns the largest per-channel difference and how many values differ.
func compareRGB(t *testing.T, got *Image, want *image.RGBA) (maxDiff, differing int) {
	t.Helper()
	if got.Rect != want.Rect {
		t.Fatalf("size %v, want %v", got.Rect, want.Rect)
	}
	for y := 0; y < want.Rect.Dy(); y++ {
		for x := 0; x < want.Rect.Dx(); x++ {
			g, w := got.Pix[got.PixOffset(x, y):], want.Pix[want.PixOffset(x, y):]
			for c := 0; c < 3; c++ {
				d := int(g[c]) - int(w[c])
				if d < 0 {
					d = -d
				}
				if d > 0 {
					differing++
				}
				maxDiff = max(maxDiff, d)
			}
			if g[3] != 255 {
				t.Fatalf("alpha %d at (%d,%d), want 255", g[3], x, y)
			}
		}
	}
	return maxDiff, differing
}

// TestLoadImgMatchesPillow checks LoadImg against Keras' load_img (Pillow) on every golden:
// after load_img(target_size=(224, 224)) and, for the generated inputs, at full size.
func TestLoadImgMatchesPillow(t *testing.T) {
	m := readManifest(t)
	for _, c := range m.Cases {
		t.Run(c.Name, func(t *testing.T) {
			path := inputPath(t, c.Input)
			img, err := LoadImg(path, TargetSize(224, 224))
			if err != nil {
				t.Fatal(err)
			}
			maxDiff, n := compareRGB(t, img, readGoldenPNG(t, filepath.Join("testdata", "golden", c.Name+".224.png")))
			t.Logf("224x224: max abs diff %d (%d values differ)", maxDiff, n)
			if maxDiff != 0 {
				t.Errorf("224x224 differs from Pillow %s: max abs diff %d, %d values", m.Pillow, maxDiff, n)
			}
			if c.Full {
				img, err := LoadImg(path)
				if err != nil {
					t.Fatal(err)
				}
				maxDiff, n := compareRGB(t, img, readGoldenPNG(t, filepath.Join("testdata", "golden", c.Name+".full.png")))
				if maxDiff != 0 {
					t.Errorf("full size differs from Pillow %s: max abs diff %d, %d values", m.Pillow, maxDiff, n)
				}
			}
		})
	}
}

// TestPreprocessMatchesNumpy runs the whole book pipeline (load_img → img_to_array →
// expand_dims → preprocess_input) and compares it bit for bit with NumPy's float32 result.
func TestPreprocessMatchesNumpy(t *testing.T) {
	m := readManifest(t)
	checked := 0
	for _, c := range m.Cases {
		if !c.Preprocessed {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			x := ExpandDims(ImgToArray(MustLoadImg(inputPath(t, c.Input), TargetSize(224, 224))), 0)
			got := PreprocessInput(x)
			f, err := os.Open(filepath.Join("testdata", "golden", c.Name+".preprocessed.npy.gz"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			shape, want, err := npy.Read(zr)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(shape) != fmt.Sprint(got.Shape) {
				t.Fatalf("shape %v, numpy %v", got.Shape, shape)
			}
			var maxDiff float64
			bitsDiffer := 0
			for i := range want {
				if math.Float32bits(got.Data[i]) != math.Float32bits(want[i]) {
					bitsDiffer++
				}
				maxDiff = math.Max(maxDiff, math.Abs(float64(got.Data[i])-float64(want[i])))
			}
			t.Logf("max abs diff %g, %d values differ in bits", maxDiff, bitsDiffer)
			if bitsDiffer != 0 {
				t.Errorf("preprocessed batch differs from numpy: max abs diff %g, %d values", maxDiff, bitsDiffer)
			}
			// The input must be left as it was (unlike Keras, which edits it in place).
			if x.Data[0] != float32(int(x.Data[0])) || x.Data[0] < 0 {
				t.Errorf("PreprocessInput modified its input")
			}
		})
		checked++
	}
	if checked == 0 {
		t.Fatal("manifest lists no preprocessed goldens")
	}
}

// TestLoadImgBookFullResolution compares the book's photos decoded at full size with Pillow,
// which the 224×224 goldens sample only sparsely. It needs the Python oracle.
func TestLoadImgBookFullResolution(t *testing.T) {
	testenv.Python(t, "numpy", "PIL")
	if _, err := os.Stat(bookDir); err != nil {
		testenv.SkipMissing(t, "book images not available at %s", bookDir)
	}
	names, _ := filepath.Glob(filepath.Join(bookDir, "*.jpg"))
	dir := t.TempDir()
	runPython(t, `
import sys, os, numpy as np
from PIL import Image
for p in sys.argv[2:]:
    im = Image.open(p)
    if im.mode != 'RGB':
        im = im.convert('RGB')
    a = np.asarray(im)
    np.save(os.path.join(sys.argv[1], os.path.basename(p) + '.npy'), a.astype(np.float32))
`, append([]string{dir}, names...)...)
	for _, p := range names {
		img, err := LoadImg(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		shape, want, err := npy.ReadFile(filepath.Join(dir, filepath.Base(p)+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		got := ImgToArray(img)
		if fmt.Sprint(shape) != fmt.Sprint(got.Shape) {
			t.Errorf("%s: shape %v, Pillow %v", p, got.Shape, shape)
			continue
		}
		maxDiff, n := float32(0), 0
		for i := range want {
			d := float32(math.Abs(float64(got.Data[i] - want[i])))
			if d > 0 {
				n++
			}
			maxDiff = max(maxDiff, d)
		}
		t.Logf("%s %v: max abs diff %v (%d values differ)", filepath.Base(p), shape, maxDiff, n)
		if n != 0 {
			t.Errorf("%s: full-resolution decode differs from Pillow: max abs diff %v, %d values", p, maxDiff, n)
		}
	}
}

func TestLoadImgErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "missing.jpg"), "no such file"},
		{dir, "is a directory"},
		{"testdata/images/empty.jpg", "empty file"},
		{"testdata/images/truncated.jpg", "truncated"},
		{"testdata/images/text.jpg", "not an image file"},
		{"testdata/images/image.tiff.jpg", "unsupported image format TIFF"},
		{"testdata/images/huge_header.jpg", "65500x65500 = 4290250000 pixels, above jpeg.MaxPixels"},
		{"testdata/images/huge_header.png", "100000x100000 pixels, above the limit"},
	}
	for _, src := range []string{"rgba.png", "palette_trns.gif", "progressive_420.jpg"} {
		b, err := os.ReadFile(filepath.Join("testdata", "images", src))
		if err != nil {
			t.Fatal(err)
		}
		cut := filepath.Join(dir, "cut_"+src)
		if err := os.WriteFile(cut, b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			path string
			want string
		}{cut, "truncated"})
	}
	for _, c := range cases {
		img, err := LoadImg(c.path, TargetSize(224, 224))
		if err == nil {
			t.Errorf("%s: no error", c.path)
			continue
		}
		if img != nil {
			t.Errorf("%s: returned an image along with the error", c.path)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, fmt.Sprintf("kernelext: load %q: ", c.path)) || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the file named and %q", c.path, msg, c.want)
		}
	}
	if _, err := LoadImg("testdata/images/small_64.jpg", TargetSize(0, 224)); err == nil {
		t.Error("a zero target size was accepted")
	}
	// The manifest's broken files must all be covered above.
	for _, b := range readManifest(t).Broken {
		found := false
		for _, c := range cases {
			found = found || filepath.Base(c.path) == b
		}
		if !found {
			t.Errorf("broken input %s has no expected error", b)
		}
	}
}

// TestLoadImgHugeHeaderAllocatesLittle checks that a header claiming billions of pixels is
// refused before the pixels are allocated.
func TestLoadImgHugeHeaderAllocatesLittle(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, p := range []string{"testdata/images/huge_header.jpg", "testdata/images/huge_header.png"} {
		if _, err := LoadImg(p); err == nil {
			t.Fatalf("%s: no error", p)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Errorf("refusing huge headers allocated %d bytes", grew)
	}
}

func TestNearestTableMatchesSpecExample(t *testing.T) {
	// Spec §1.4: for 64 → 224 the accumulator lands one pixel lower than the closed form
	// floor((i+0.5)·64/224) at i = 3, 10, 17, 24, …
	tab := nearestTable(64, 224)
	for _, i := range []int{3, 10, 17, 24} {
		closed := int(math.Floor((float64(i) + 0.5) * 64 / 224))
		if tab[i] != closed-1 {
			t.Errorf("i=%d: accumulator %d, closed form %d; want one lower", i, tab[i], closed)
		}
	}
}

func TestExpandDims(t *testing.T) {
	a := NewArray(2, 3)
	for axis, want := range map[int]string{0: "(1, 2, 3)", 1: "(2, 1, 3)", 2: "(2, 3, 1)", -1: "(2, 3, 1)", -3: "(1, 2, 3)"} {
		if got := ExpandDims(a, axis).ShapeString(); got != want {
			t.Errorf("axis %d: %s, want %s", axis, got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("axis 3 did not panic")
		}
	}()
	ExpandDims(a, 3)
}

func ExampleLoadImg() {
	img, err := LoadImg("testdata/images/odd_420.jpg", TargetSize(224, 224))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(img.Width(), img.Height())
	x := ImgToArray(img)
	fmt.Println(x.ShapeString())
	x = ExpandDims(x, 0)
	fmt.Println(x.ShapeString())

	_, err = LoadImg("testdata/images/text.jpg")
	fmt.Println(err)
	// Output:
	// 224 224
	// (224, 224, 3)
	// (1, 224, 224, 3)
	// kernelext: load "testdata/images/text.jpg": not an image file (content is not JPEG, PNG, GIF or BMP)
}

func ExamplePreprocessInput() {
	x := &Array{Shape: []int{1, 1, 2, 3}, Data: []float32{255, 128, 0, 10, 20, 30}}
	fmt.Println(PreprocessInput(x))
	// Output:
	// array([[[[-103.939   ,   11.221001,  131.32    ],
	//          [ -73.939   ,  -96.779   , -113.68    ]]]], dtype=float32)
}
