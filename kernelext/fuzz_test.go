package kernelext

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// FuzzLoadImg feeds arbitrary bytes, saved as a file, to LoadImg: it must return either an
// error or a complete image, and never panic. The seeds are every test image, broken ones
// included. Run with: go test -run '^$' -fuzz FuzzLoadImg -fuzztime 30s ./kernelext
func FuzzLoadImg(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "images", "*"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// Keep each input cheap: headers may claim up to a million pixels.
		old := MaxImagePixels
		MaxImagePixels = 1 << 20
		defer func() { MaxImagePixels = old }()
		path := filepath.Join(dir, "input.jpg")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, opts := range [][]LoadOption{nil, {TargetSize(7, 5)}} {
			img, err := LoadImg(path, opts...)
			if err != nil {
				if img != nil {
					t.Fatalf("image returned along with error %v", err)
				}
				continue
			}
			if img == nil || img.Width() <= 0 || img.Height() <= 0 || len(img.Pix) != 4*img.Width()*img.Height() {
				t.Fatalf("incomplete image without error: %+v", img)
			}
			if opts != nil && (img.Width() != 5 || img.Height() != 7) {
				t.Fatalf("resized to %dx%d, want 5x7", img.Width(), img.Height())
			}
		}
	})
}

func BenchmarkLoadImgBook(b *testing.B) {
	path := filepath.Join(bookDir, "pizza.jpg")
	if _, err := os.Stat(path); err != nil {
		testenv.SkipMissing(b, "book image %s not available", path)
	}
	for i := 0; i < b.N; i++ {
		if _, err := LoadImg(path, TargetSize(224, 224)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPreprocessInput(b *testing.B) {
	x := NewArray(1, 224, 224, 3)
	for i := 0; i < b.N; i++ {
		PreprocessInput(x)
	}
}
