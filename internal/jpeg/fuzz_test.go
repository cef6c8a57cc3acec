package jpeg

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode feeds mutated JPEGs to the decoder without its panic guard: any
// panic or hang is a bug. Successful decodes must agree with DecodeConfig.
//
//	go test -fuzz=FuzzDecode -fuzztime=20s ./internal/jpeg/
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.jpg"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files in testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return
		}
		if cfg.Width*cfg.Height > 1e6 {
			return // Valid but slow to fuzz; TestHugeDimensions covers size limits.
		}
		img, err := decodeNoRecover(bytes.NewReader(b))
		if err != nil {
			if img != nil {
				t.Fatalf("image returned along with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "jpeg: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		if got := img.Bounds(); got != image.Rect(0, 0, cfg.Width, cfg.Height) {
			t.Fatalf("decoded bounds %v, DecodeConfig said %dx%d", got, cfg.Width, cfg.Height)
		}
		if img.ColorModel() != cfg.ColorModel {
			t.Fatalf("decoded colour model differs from DecodeConfig's")
		}
	})
}
