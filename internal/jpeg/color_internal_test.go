package jpeg

import "testing"

// TestYCCPixel checks, for every Y, Cb, Cr triple, that the table-driven
// yccPixel equals yccToRGB followed by clamp255 in R, G, B and alpha 255,
// which also proves that its range-limit tables are never indexed outside
// the values they are valid for.
func TestYCCPixel(t *testing.T) {
	for y := range 256 {
		for cb := range 256 {
			for cr := range 256 {
				r, g, b := yccToRGB(byte(y), byte(cb), byte(cr))
				want := uint32(clamp255(r)) | uint32(clamp255(g))<<8 | uint32(clamp255(b))<<16 | 0xff<<24
				if got := yccPixel(byte(y), byte(cb), byte(cr)); got != want {
					t.Fatalf("yccPixel(%d, %d, %d) = %#08x, want %#08x", y, cb, cr, got, want)
				}
			}
		}
	}
}

// TestExtend checks extend against T.81's EXTEND procedure (F.2.2.1) for
// every magnitude category and value.
func TestExtend(t *testing.T) {
	for k := 1; k <= 16; k++ {
		for v := int32(0); v < 1<<k; v++ {
			want := v
			if v < 1<<(k-1) {
				want = v - (1 << k) + 1
			}
			if got := extend(v, k); got != want {
				t.Fatalf("extend(%d, %d) = %d, want %d", v, k, got, want)
			}
		}
	}
}
