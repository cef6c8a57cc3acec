package jpeg

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustFail decodes data and checks that both Decode and DecodeConfig (when
// configToo) fail with a "jpeg: " error containing want, returning no image.
func mustFail(t *testing.T, what string, data []byte, want string, configToo bool) {
	t.Helper()
	img, err := Decode(bytes.NewReader(data))
	if err == nil {
		t.Errorf("%s: Decode succeeded (%v), want error containing %q", what, img.Bounds(), want)
		return
	}
	if img != nil {
		t.Errorf("%s: Decode returned an image along with error %v", what, err)
	}
	if !strings.HasPrefix(err.Error(), "jpeg: ") || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: Decode error %q, want prefix \"jpeg: \" and %q", what, err, want)
	}
	if strings.Contains(err.Error(), "internal error") {
		t.Errorf("%s: Decode recovered from a panic: %v", what, err)
	}
	if configToo {
		if _, err := DecodeConfig(bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: DecodeConfig error %v, want one containing %q", what, err, want)
		}
	}
}

// sofOffset returns the index of the SOF marker's length field.
func sofOffset(t *testing.T, data []byte) int {
	t.Helper()
	for _, m := range []string{"\xff\xc0", "\xff\xc1", "\xff\xc2"} {
		if i := bytes.Index(data, []byte(m)); i >= 0 {
			return i + 2
		}
	}
	t.Fatal("no SOF marker")
	return 0
}

func patched(data []byte, off int, b ...byte) []byte {
	out := bytes.Clone(data)
	copy(out[off:], b)
	return out
}

func TestEmptyAndGarbage(t *testing.T) {
	mustFail(t, "empty", nil, "truncated", true)
	mustFail(t, "one byte", []byte{0xff}, "truncated", true)
	mustFail(t, "SOI only", []byte{0xff, 0xd8}, "truncated", true)
	mustFail(t, "SOI EOI", []byte{0xff, 0xd8, 0xff, 0xd9}, "missing SOF", true)
	mustFail(t, "text", []byte("this is not a JPEG file at all"), "missing SOI", true)

	rng := rand.New(rand.NewSource(1))
	for i := range 200 {
		n := 1 + rng.Intn(3000)
		b := make([]byte, n)
		rng.Read(b)
		if i%2 == 0 && n > 2 {
			b[0], b[1] = 0xff, 0xd8 // Garbage after a valid SOI.
		}
		if _, err := Decode(bytes.NewReader(b)); err == nil {
			t.Errorf("random garbage %d (%d bytes) decoded without error", i, n)
		} else if strings.Contains(err.Error(), "internal error") {
			t.Errorf("random garbage %d: %v", i, err)
		}
	}
}

func TestPNGIsRejected(t *testing.T) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "PNG", buf.Bytes(), "missing SOI marker (not a JPEG file)", true)
}

// TestTruncated cuts files at every offset: each prefix must give an error,
// never a panic or a partially filled image.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"420_q90_crop.jpg", "prog420_q75_crop.jpg", "rst_prog420_q85.jpg", "gray_q75_37x23.jpg"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(name, "rst_") {
				continue // Written only when gen_golden.py had a C compiler.
			}
			t.Fatal(err)
		}
		for n := 0; n < len(data); n++ {
			img, err := Decode(bytes.NewReader(data[:n]))
			if err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", name, n, len(data))
			}
			if img != nil {
				t.Fatalf("%s cut to %d bytes: image returned with error", name, n)
			}
			if !strings.HasPrefix(err.Error(), "jpeg: ") || strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%s cut to %d bytes: error %q", name, n, err)
			}
		}
		// Cut inside the entropy-coded data: the reason must say truncated.
		_, err = Decode(bytes.NewReader(data[:len(data)*3/4]))
		if !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%s cut at 3/4: error %q does not say truncated", name, err)
		}
	}
}

// TestHugeDimensions checks that a header claiming 65535x65535 pixels is
// refused before any large allocation.
func TestHugeDimensions(t *testing.T) {
	data := readTestdata(t, "420_q75_37x23.jpg")
	off := sofOffset(t, data)
	// Length (2 bytes), precision, then height and width.
	huge := patched(data, off+3, 0xff, 0xff, 0xff, 0xff)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	mustFail(t, "65535x65535", huge, "above jpeg.MaxPixels", true)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing a huge header allocated %d bytes", grew)
	}

	// The limit is adjustable.
	defer func(old int) { MaxPixels = old }(MaxPixels)
	MaxPixels = 37*23 - 1
	mustFail(t, "37x23 with MaxPixels 850", data, "above jpeg.MaxPixels", true)
	MaxPixels = 37 * 23
	if _, err := Decode(bytes.NewReader(data)); err != nil {
		t.Errorf("37x23 with MaxPixels 851: %v", err)
	}
}

// TestUnsupportedFeatures patches headers into valid-looking files that use
// features this package refuses instead of decoding approximately.
func TestUnsupportedFeatures(t *testing.T) {
	data := readTestdata(t, "444_q75_37x23.jpg")
	off := sofOffset(t, data)
	// SOF: length(2) precision(1) height(2) width(2) ncomp(1), then per
	// component: id, HV, Tq.
	comp := func(i int) int { return off + 8 + 3*i + 1 }

	frac := patched(data, comp(0), 0x31)
	frac = patched(frac, comp(1), 0x21)
	frac = patched(frac, comp(2), 0x21)
	mustFail(t, "sampling 3x1,2x1,2x1", frac, "unsupported fractional sampling ratio 3x1,2x1,2x1", true)

	mustFail(t, "12-bit", patched(data, off+2, 12), "unsupported sample precision 12", true)

	for _, m := range []byte{0xc3, 0xc9, 0xca, 0xcb} { // Lossless, arithmetic.
		mustFail(t, "SOF marker", patched(data, off-1, m), "unsupported JPEG process", false)
	}
	mustFail(t, "height 0", patched(data, off+3, 0, 0), "unsupported image height 0", true)
	mustFail(t, "width 0", patched(data, off+5, 0, 0), "image width 0", true)
	// SOF lengths for 2 and 5 components (only 1, 3 and 4 exist in practice).
	mustFail(t, "2 components", patched(data, off, 0, 2+6+3*2), "unsupported number of components", true)
	mustFail(t, "5 components", patched(data, off, 0, 2+6+3*5), "unsupported number of components", true)
}

func TestReaderErrors(t *testing.T) {
	data := readTestdata(t, "420_q75_37x23.jpg")
	boom := errors.New("disk on fire")
	_, err := Decode(io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "jpeg: read: ") {
		t.Errorf("Decode with failing reader: %v, want a \"jpeg: read: \" error wrapping %v", err, boom)
	}
	// One byte at a time, with a (0, nil) read before each: must still work.
	img, err := Decode(iotest.OneByteReader(&stutterReader{r: bytes.NewReader(data)}))
	if err != nil || img.Bounds().Dx() != 37 {
		t.Errorf("Decode with a slow reader: %v", err)
	}
	_, err = Decode(&stutterReader{r: bytes.NewReader(data), always: true})
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Decode with a reader that never makes progress: %v, want io.ErrNoProgress", err)
	}
}

// stutterReader returns (0, nil) before every real read, or always.
type stutterReader struct {
	r      io.Reader
	empty  bool
	always bool
}

func (s *stutterReader) Read(p []byte) (int, error) {
	if s.always {
		return 0, nil
	}
	s.empty = !s.empty
	if s.empty {
		return 0, nil
	}
	return s.r.Read(p)
}

func TestDecodeConfig(t *testing.T) {
	for name, want := range map[string]image.Config{
		"gray_q75_37x23.jpg":   {Width: 37, Height: 23},
		"420_q75_33x17.jpg":    {Width: 33, Height: 17},
		"prog420_q75_crop.jpg": {Width: 64, Height: 48},
	} {
		cfg, err := DecodeConfig(bytes.NewReader(readTestdata(t, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Width != want.Width || cfg.Height != want.Height {
			t.Errorf("%s: %dx%d, want %dx%d", name, cfg.Width, cfg.Height, want.Width, want.Height)
		}
	}
}
