package jpeg

import (
	"bytes"
	"encoding/json"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenCase is one entry of testdata/manifest.json, written by
// testdata/gen_golden.py.
type goldenCase struct {
	Name   string `json:"name"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Mode   string `json:"mode"` // Pillow's mode before convert('RGB').
	Expect string `json:"expect"`
	Note   string `json:"note"`
}

func readManifest(t testing.TB) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("testdata/manifest.json: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("testdata/manifest.json lists no cases")
	}
	return cases
}

// TestGolden compares Decode with Pillow's decode of every test file (max abs
// diff must be 0: the RGB after convert('RGB') and, for CMYK files, also the
// mode-CMYK values) and checks that unsupported files are refused.
func TestGolden(t *testing.T) {
	for _, c := range readManifest(t) {
		t.Run(c.Name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", c.Name+".jpg"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, cfgErr := DecodeConfig(bytes.NewReader(data))
			img, err := Decode(bytes.NewReader(data))

			if want, ok := strings.CutPrefix(c.Expect, "error:"); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("%s (%s): Decode error = %v, want one containing %q", c.Name, c.Note, err, want)
				}
				if img != nil {
					t.Errorf("Decode returned an image along with error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s (%s): %v", c.Name, c.Note, err)
			}
			if cfgErr != nil {
				t.Fatalf("DecodeConfig: %v", cfgErr)
			}
			if cfg.Width != c.Width || cfg.Height != c.Height {
				t.Errorf("DecodeConfig size %dx%d, want %dx%d", cfg.Width, cfg.Height, c.Width, c.Height)
			}
			if b := img.Bounds(); b != image.Rect(0, 0, c.Width, c.Height) {
				t.Fatalf("bounds %v, want %dx%d", b, c.Width, c.Height)
			}
			_, isGray := img.(*image.Gray)
			cmyk, isCMYK := img.(*image.CMYK)
			if isGray != (c.Mode == "L") || isCMYK != (c.Mode == "CMYK") {
				t.Errorf("Decode returned %T for a Pillow mode %s file", img, c.Mode)
			}
			if isCMYK {
				// Pillow's mode-CMYK values, before convert('RGB').
				raw, err := os.ReadFile(filepath.Join("testdata", c.Name+".cmyk"))
				if err != nil {
					t.Fatal(err)
				}
				if len(cmyk.Pix) != len(raw) {
					t.Fatalf("got %d CMYK bytes, golden has %d", len(cmyk.Pix), len(raw))
				}
				if maxd, n, first := maxAbsDiff(cmyk.Pix, raw); maxd != 0 {
					p := first / 4
					t.Errorf("%s (%s): CMYK max abs diff %d, %d of %d values differ; first at x=%d y=%d channel %d: got %d, Pillow %d",
						c.Name, c.Note, maxd, n, len(raw), p%c.Width, p/c.Width, first%4, cmyk.Pix[first], raw[first])
				}
			}
			if cfg.ColorModel != img.ColorModel() {
				t.Errorf("DecodeConfig color model differs from the decoded image's")
			}
			want, err := os.ReadFile(filepath.Join("testdata", c.Name+".rgb"))
			if err != nil {
				t.Fatal(err)
			}
			got := toRGB(t, img)
			if len(got) != len(want) {
				t.Fatalf("got %d RGB bytes, golden has %d", len(got), len(want))
			}
			if maxd, n, first := maxAbsDiff(got, want); maxd != 0 {
				p := first / 3
				t.Errorf("%s (%s): max abs diff %d, %d of %d values differ; first at x=%d y=%d channel %d: got %d, Pillow %d",
					c.Name, c.Note, maxd, n, len(got), p%c.Width, p/c.Width, first%3, got[first], want[first])
			}
		})
	}
}

// TestGoldenConcurrent decodes every test file (refused ones included) from
// several goroutines at once, repeatedly, and compares each image with
// Pillow's: decoders and their sample planes are recycled between decodes,
// so this checks that no decode sees another's state or leftovers.
func TestGoldenConcurrent(t *testing.T) {
	cases := readManifest(t)
	files := make([][]byte, len(cases))
	for i, c := range cases {
		data, err := os.ReadFile(filepath.Join("testdata", c.Name+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = data
	}
	const workers, rounds = 4, 3
	imgs := make([][]image.Image, workers)
	done := make(chan int)
	for w := range workers {
		imgs[w] = make([]image.Image, len(cases)*rounds)
		go func() {
			// Each worker walks the files in a different order.
			for r := range rounds {
				for j := range cases {
					i := (j*(w+1) + r) % len(cases)
					img, _ := Decode(bytes.NewReader(files[i]))
					imgs[w][r*len(cases)+i] = img
				}
			}
			done <- w
		}()
	}
	for range workers {
		<-done
	}
	for i, c := range cases {
		if strings.HasPrefix(c.Expect, "error:") {
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", c.Name+".rgb"))
		if err != nil {
			t.Fatal(err)
		}
		for w := range workers {
			for r := range rounds {
				img := imgs[w][r*len(cases)+i]
				if img == nil {
					t.Fatalf("%s: worker %d round %d: no image", c.Name, w, r)
				}
				got := toRGB(t, img)
				if len(got) != len(want) {
					t.Fatalf("%s: worker %d round %d: got %d RGB bytes, golden has %d", c.Name, w, r, len(got), len(want))
				}
				if maxd, n, _ := maxAbsDiff(got, want); maxd != 0 {
					t.Errorf("%s: worker %d round %d: max abs diff %d in %d values", c.Name, w, r, maxd, n)
				}
			}
		}
	}
}
