package jpeg

import (
	"bytes"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// bookDir holds the seven photos Chapter 8 classifies.
const bookDir = "/work/shared/data/keras-workshop-ch08/Prediction"

// pillowScript decodes each argv[1::2] file with Pillow exactly as Keras'
// load_img does (Image.open(f).convert('RGB')) and writes the raw RGB bytes to
// argv[2::2]. On stdout it prints one line per file: WxH and the chroma
// subsampling Pillow reports.
const pillowScript = `
import sys
from PIL import Image, JpegImagePlugin
names = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0", -1: "other"}
a = sys.argv[1:]
for src, dst in zip(a[0::2], a[1::2]):
    im = Image.open(src)
    sub = "gray" if im.mode == "L" else names.get(JpegImagePlugin.get_sampling(im), "other")
    rgb = im.convert("RGB")
    with open(dst, "wb") as f:
        f.write(rgb.tobytes())
    print("%dx%d %s" % (rgb.size[0], rgb.size[1], sub))
`

// pillowDecode runs Pillow on files and returns the RGB bytes and the
// subsampling of each. It skips the test when python3 or Pillow is missing.
func pillowDecode(t testing.TB, files []string) (rgb [][]byte, info []string) {
	t.Helper()
	py := testenv.Python(t, "PIL")
	dir := t.TempDir()
	args := []string{"-c", pillowScript}
	var outs []string
	for i, f := range files {
		o := filepath.Join(dir, fmt.Sprintf("%d.rgb", i))
		args = append(args, f, o)
		outs = append(outs, o)
	}
	cmd := exec.Command(py, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("Pillow decode failed: %v\n%s", err, stderr.String())
	}
	info = strings.Split(strings.TrimSpace(string(stdout)), "\n")
	for _, o := range outs {
		b, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		rgb = append(rgb, b)
	}
	return rgb, info
}

// toRGB flattens a decoded image into packed RGB bytes, replicating gray and
// converting CMYK the way Pillow's convert('RGB') does.
func toRGB(t testing.TB, img image.Image) []byte {
	t.Helper()
	switch m := img.(type) {
	case *image.RGBA:
		w, h := m.Rect.Dx(), m.Rect.Dy()
		out := make([]byte, 0, w*h*3)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				if row[4*x+3] != 255 {
					t.Fatalf("alpha at (%d,%d) is %d, want 255", x, y, row[4*x+3])
				}
				out = append(out, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
		return out
	case *image.Gray:
		w, h := m.Rect.Dx(), m.Rect.Dy()
		out := make([]byte, 0, w*h*3)
		for y := 0; y < h; y++ {
			for _, v := range m.Pix[y*m.Stride : y*m.Stride+w] {
				out = append(out, v, v, v)
			}
		}
		return out
	case *image.CMYK:
		w, h := m.Rect.Dx(), m.Rect.Dy()
		out := make([]byte, 0, w*h*3)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				r, g, b := CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				out = append(out, r, g, b)
			}
		}
		return out
	}
	t.Fatalf("Decode returned %T, want *image.RGBA, *image.Gray or *image.CMYK", img)
	return nil
}

// maxAbsDiff returns the largest |a[i]-b[i]|, the number of differing
// values, and the index of the first difference (-1 if none).
func maxAbsDiff(a, b []byte) (maxd, n, first int) {
	first = -1
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		if d != 0 {
			n++
			if first < 0 {
				first = i
			}
		}
		maxd = max(maxd, d)
	}
	return maxd, n, first
}

func bookFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(bookDir, "*.jpg"))
	if err != nil || len(files) == 0 {
		testenv.SkipMissing(t, "skipping: no book images in %s", bookDir)
	}
	return files
}

// TestBookImagesMatchPillow decodes the chapter's photos and compares them,
// value for value, with Pillow's decode computed now.
func TestBookImagesMatchPillow(t *testing.T) {
	files := bookFiles(t)
	want, info := pillowDecode(t, files)
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := Decode(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		got := toRGB(t, img)
		if len(got) != len(want[i]) {
			t.Errorf("%s: got %d RGB bytes (%v), Pillow %d (%s)", filepath.Base(f), len(got), img.Bounds(), len(want[i]), info[i])
			continue
		}
		maxd, n, first := maxAbsDiff(got, want[i])
		t.Logf("%-18s %-14s max abs diff vs Pillow %d (%d values differ)", filepath.Base(f), info[i], maxd, n)
		if maxd != 0 {
			w := img.Bounds().Dx()
			p := first / 3
			t.Errorf("%s: max abs diff %d, %d values differ; first at x=%d y=%d channel %d: got %d, Pillow %d",
				filepath.Base(f), maxd, n, p%w, p/w, first%3, got[first], want[i][first])
		}
	}
}
