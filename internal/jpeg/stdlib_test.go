package jpeg

import (
	"bytes"
	"image"
	"image/draw"
	stdjpeg "image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// stdlibRGB decodes with Go's image/jpeg and converts to RGBA with draw.Draw,
// which uses the same arithmetic as color.YCbCrToRGB / YCbCr.At.
func stdlibRGB(t testing.TB, data []byte) []byte {
	t.Helper()
	img, err := stdjpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	return toRGB(t, rgba)
}

// TestStdlibDiffersFromPillow records how far Go's standard decoder is from
// Pillow on the book photos (the reason this package exists) and checks that
// the comparison can tell the two apart.
func TestStdlibDiffersFromPillow(t *testing.T) {
	files := bookFiles(t)
	want, info := pillowDecode(t, files)
	worst := 0
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := stdlibRGB(t, data)
		maxd, n, _ := maxAbsDiff(got, want[i])
		var sum int
		for k := range got {
			d := int(got[k]) - int(want[i][k])
			sum += max(d, -d)
		}
		t.Logf("image/jpeg vs Pillow %-18s %-14s max abs diff %3d, mean %.3f, %5.1f%% of values differ",
			filepath.Base(f), info[i], maxd, float64(sum)/float64(len(got)), 100*float64(n)/float64(len(got)))
		worst = max(worst, maxd)
	}
	if worst == 0 {
		t.Errorf("Go's image/jpeg matched Pillow exactly on every book image; the oracle comparison is not discriminating")
	}
}

// BenchmarkDecode decodes a 1024x768 4:2:0 book photo to RGB(A) with this
// package and with Go's image/jpeg (plain, and followed by the conversion to
// RGBA that callers needing RGB pay for).
func BenchmarkDecode(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(bookDir, "gf.jpg"))
	if err != nil {
		testenv.SkipMissing(b, "book image: %v", err)
	}
	b.Run("internal-jpeg", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := stdjpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib+RGBA", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			img, err := stdjpeg.Decode(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			rgba := image.NewRGBA(img.Bounds())
			draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
		}
	})
}
