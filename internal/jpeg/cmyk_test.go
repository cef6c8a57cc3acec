package jpeg

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// datasetDir holds the cars/flowers training data of the chapter; four of its
// JPEGs are CMYK.
const datasetDir = "/work/shared/data/keras-workshop-ch08/Dataset"

var datasetCMYK = []string{
	"training_set/car/f1945ddd8db9784e.jpg",
	"training_set/flower/f0e28dc01cfadbbc.jpg",
	"training_set/flower/fb47ffbea1fc44a6.jpg",
	"test_set/flower/fea4e12cd51913cd.jpg",
}

// pillowCMYKScript opens each argv[1::3] file with Pillow and writes the raw
// mode-CMYK bytes (np.asarray(Image.open(f))) to argv[2::3] and
// Image.open(f).convert('RGB') to argv[3::3]. It prints each file's mode.
const pillowCMYKScript = `
import sys
from PIL import Image
a = sys.argv[1:]
for src, raw, rgb in zip(a[0::3], a[1::3], a[2::3]):
    im = Image.open(src)
    with open(raw, "wb") as f:
        f.write(im.tobytes())
    with open(rgb, "wb") as f:
        f.write(im.convert("RGB").tobytes())
    print(im.mode)
`

// TestDatasetCMYKMatchesPillow decodes the data set's CMYK JPEGs and compares
// both the CMYK planes and the RGB conversion, value for value, with Pillow's
// computed now.
func TestDatasetCMYKMatchesPillow(t *testing.T) {
	var files []string
	for _, f := range datasetCMYK {
		p := filepath.Join(datasetDir, f)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		testenv.SkipMissing(t, "skipping: the CMYK files of %s are not present", datasetDir)
	}
	py := testenv.Python(t, "PIL")
	dir := t.TempDir()
	args := []string{"-c", pillowCMYKScript}
	for i, f := range files {
		args = append(args, f, filepath.Join(dir, fmt.Sprintf("%d.cmyk", i)), filepath.Join(dir, fmt.Sprintf("%d.rgb", i)))
	}
	cmd := exec.Command(py, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("Pillow failed: %v\n%s", err, stderr.String())
	}
	modes := strings.Fields(string(stdout))
	for i, f := range files {
		name := filepath.Base(f)
		if modes[i] != "CMYK" {
			t.Errorf("%s: Pillow mode %s, want CMYK", name, modes[i])
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := Decode(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		m, ok := img.(*image.CMYK)
		if !ok {
			t.Errorf("%s: Decode returned %T, want *image.CMYK", name, img)
			continue
		}
		wantCMYK, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.cmyk", i)))
		if err != nil {
			t.Fatal(err)
		}
		wantRGB, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.rgb", i)))
		if err != nil {
			t.Fatal(err)
		}
		compareBytes(t, name+" CMYK", m.Pix, wantCMYK, m.Rect.Dx(), 4)
		compareBytes(t, name+" RGB", toRGB(t, img), wantRGB, m.Rect.Dx(), 3)
	}
}

// compareBytes reports the first difference between packed pixel data got
// and Pillow's want, with nch channels per pixel and the given width.
func compareBytes(t *testing.T, what string, got, want []byte, width, nch int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d bytes, Pillow %d", what, len(got), len(want))
		return
	}
	maxd, n, first := maxAbsDiff(got, want)
	t.Logf("%-28s max abs diff vs Pillow %d (%d values differ)", what, maxd, n)
	if maxd != 0 {
		p := first / nch
		t.Errorf("%s: max abs diff %d, %d of %d values differ; first at x=%d y=%d channel %d: got %d, Pillow %d",
			what, maxd, n, len(got), p%width, p/width, first%nch, got[first], want[first])
	}
}

// cmykTable returns a 256x256 CMYK image in which pixel (v, k) has C = v,
// M = 255-v, Y = v^0x5a and K = k: every (channel value, K) pair occurs.
func cmykTable() *image.CMYK {
	img := image.NewCMYK(image.Rect(0, 0, 256, 256))
	for k := range 256 {
		for v := range 256 {
			o := img.Pix[img.PixOffset(v, k):]
			o[0], o[1], o[2], o[3] = uint8(v), uint8(255-v), uint8(v^0x5a), uint8(k)
		}
	}
	return img
}

// TestCMYKToRGBMatchesPillow checks CMYKToRGB on every (value, K) pair
// against Pillow's Image.frombytes('CMYK', ...).convert('RGB').
func TestCMYKToRGBMatchesPillow(t *testing.T) {
	py := testenv.Python(t, "PIL")
	img := cmykTable()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.cmyk"), filepath.Join(dir, "out.rgb")
	if err := os.WriteFile(in, img.Pix, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import sys
from PIL import Image
src, dst = sys.argv[1:]
im = Image.frombytes("CMYK", (256, 256), open(src, "rb").read())
open(dst, "wb").write(im.convert("RGB").tobytes())
`
	if b, err := exec.Command(py, "-c", script, in, out).CombinedOutput(); err != nil {
		t.Fatalf("Pillow failed: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	compareBytes(t, "CMYKToRGB, all (v,K)", toRGB(t, img), want, 256, 3)
}

// TestCMYKToRGBFormula checks CMYKToRGB against the documented formula
// round((255-C)*(255-K)/255) computed in floating point (exact halves cannot
// occur since 255 is odd), and records that Go's color.CMYKToRGB differs.
func TestCMYKToRGBFormula(t *testing.T) {
	goDiffers := 0
	for k := range 256 {
		for v := range 256 {
			want := uint8(float64((255-v)*(255-k))/255 + 0.5)
			r, g, b := CMYKToRGB(uint8(v), uint8(v), uint8(v), uint8(k))
			if r != want || g != want || b != want {
				t.Fatalf("CMYKToRGB(%d,%d,%d,%d) = %d,%d,%d, want %d", v, v, v, k, r, g, b, want)
			}
			if gr, _, _ := color.CMYKToRGB(uint8(v), 0, 0, uint8(k)); gr != want {
				goDiffers++
			}
		}
	}
	if goDiffers == 0 {
		t.Errorf("color.CMYKToRGB agrees with Pillow everywhere; the doc comments claiming otherwise are wrong")
	}
	t.Logf("color.CMYKToRGB differs from Pillow for %d of 65536 (value, K) pairs", goDiffers)
}
