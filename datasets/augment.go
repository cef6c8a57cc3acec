package datasets

import (
	"fmt"
	"math"
)

// ImageDataGenerator is the Go twin of keras.preprocessing.image.ImageDataGenerator for the
// options Chapter 8 uses: ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2,
// horizontal_flip=True). The zero value is ImageDataGenerator() with no argument: no rescaling,
// no augmentation (Keras still draws its two flip numbers per image; so does this).
//
// Transforms always use Keras' defaults fill_mode='nearest' and interpolation_order=1; other
// Keras options (rotation, shifts, brightness, channel shift, featurewise statistics) are not
// implemented.
type ImageDataGenerator struct {
	// Rescale multiplies every value after the transform (Keras rescale); 0 means off, like
	// Keras' None. The product is float32: x *= float32(Rescale).
	Rescale float64
	// ShearRange is the shear intensity in degrees: each image draws U(−ShearRange, ShearRange)
	// (Keras ≥ 2.1.3 degrees; 0 = off, no draw).
	ShearRange float64
	// ZoomRange holds the [lower, upper] zoom factors each axis draws from. Use Zoom(z) for
	// Keras' float form zoom_range=z = [1−z, 1+z]. The zero value and [1, 1] mean off (no draws).
	ZoomRange [2]float64
	// HorizontalFlip mirrors left–right with probability ½ (Keras horizontal_flip).
	HorizontalFlip bool
	// VerticalFlip mirrors top–bottom with probability ½ (Keras vertical_flip).
	VerticalFlip bool
}

// Zoom returns Keras' zoom bounds for a float zoom_range: [1−z, 1+z]. It is a function and
// not a constant expression on purpose: the subtraction must round in float64 as Python's does
// (Go would fold constant 1−0.2 exactly), or the drawn zoom factors would differ in the last bit.
func Zoom(z float64) [2]float64 {
	return [2]float64{1 - z, 1 + z}
}

// zoomOn reports whether Keras would draw zoom factors ([1, 1], and the unset zero value, mean
// off).
func (g ImageDataGenerator) zoomOn() bool {
	z := g.ZoomRange
	return !(z[0] == 1 && z[1] == 1) && !(z[0] == 0 && z[1] == 0)
}

// validate rejects settings Keras would reject or that make no sense for a zoom.
func (g ImageDataGenerator) validate() error {
	if g.ShearRange < 0 || math.IsNaN(g.ShearRange) || math.IsInf(g.ShearRange, 0) {
		return fmt.Errorf("datasets: ShearRange %v: want a finite value ≥ 0", g.ShearRange)
	}
	if g.zoomOn() {
		z := g.ZoomRange
		if !(z[0] > 0 && z[1] >= z[0]) || math.IsInf(z[1], 0) {
			return fmt.Errorf("datasets: ZoomRange %v: want 0 < lower ≤ upper (see Zoom)", z)
		}
	}
	if math.IsNaN(g.Rescale) || math.IsInf(g.Rescale, 0) {
		return fmt.Errorf("datasets: Rescale %v: want a finite value", g.Rescale)
	}
	return nil
}

// TransformParams are one image's random augmentation parameters, as Keras'
// get_random_transform returns them.
type TransformParams struct {
	Shear          float64 // degrees
	Zx, Zy         float64 // zoom factors; Zx scales rows, Zy columns
	FlipHorizontal bool
	FlipVertical   bool
}

// RandomTransform draws one image's parameters from rs in Keras' order: shear (only if
// ShearRange ≠ 0), zx and zy (only if the zoom range is not [1, 1]), then two random() numbers
// for the horizontal and the vertical flip — both always drawn, each applied only when its
// option is on. Rotation, shifts, channel shift and brightness, unsupported here, draw nothing
// when off in Keras either.
func (g ImageDataGenerator) RandomTransform(rs *RandomState) TransformParams {
	p := TransformParams{Zx: 1, Zy: 1}
	if g.ShearRange != 0 {
		p.Shear = rs.Uniform(-g.ShearRange, g.ShearRange)
	}
	if g.zoomOn() {
		p.Zx = rs.Uniform(g.ZoomRange[0], g.ZoomRange[1])
		p.Zy = rs.Uniform(g.ZoomRange[0], g.ZoomRange[1])
	}
	p.FlipHorizontal = rs.RandomSample() < 0.5 && g.HorizontalFlip
	p.FlipVertical = rs.RandomSample() < 0.5 && g.VerticalFlip
	return p
}

// Apply writes into dst the augmented and standardised version of src, both (h, w, c)
// row-major float32: Keras' apply_transform (affine, then horizontal flip, then vertical flip)
// followed by standardize (x *= float32(Rescale)). src is not modified; dst and src must not
// overlap.
func (g ImageDataGenerator) Apply(src []float32, h, w, c int, p TransformParams, dst []float32) error {
	n := h * w * c
	if h <= 0 || w <= 0 || c <= 0 || len(src) != n || len(dst) != n {
		return fmt.Errorf("datasets: apply transform: shape (%d, %d, %d) needs %d values, got src %d, dst %d", h, w, c, n, len(src), len(dst))
	}
	if p.Shear != 0 || p.Zx != 1 || p.Zy != 1 {
		affineNearestBilinear(src, h, w, c, p.Shear, p.Zx, p.Zy, dst)
	} else {
		copy(dst, src)
	}
	if p.FlipHorizontal {
		for r := 0; r < h; r++ {
			row := dst[r*w*c : (r+1)*w*c]
			for a, b := 0, w-1; a < b; a, b = a+1, b-1 {
				for k := 0; k < c; k++ {
					row[a*c+k], row[b*c+k] = row[b*c+k], row[a*c+k]
				}
			}
		}
	}
	if p.FlipVertical {
		stride := w * c
		for a, b := 0, h-1; a < b; a, b = a+1, b-1 {
			ra, rb := dst[a*stride:(a+1)*stride], dst[b*stride:(b+1)*stride]
			for i := range ra {
				ra[i], rb[i] = rb[i], ra[i]
			}
		}
	}
	if g.Rescale != 0 {
		s := float32(g.Rescale)
		for i := range dst {
			dst[i] *= s
		}
	}
	return nil
}

// deg2rad is NumPy's np.deg2rad factor, NPY_PI/180.0 evaluated in float64 at run time. A Go
// constant expression math.Pi/180 would be computed exactly and rounded once, which can differ
// from C's rounded π divided by 180.
var deg2rad = func() float64 { pi := math.Pi; return pi / 180.0 }()

// affineNearestBilinear is keras-preprocessing 1.1.0's apply_affine_transform for a shear and a
// zoom, channels last, fill_mode='nearest', order=1:
//
//	transform_matrix = shear_matrix · zoom_matrix (each only when non-trivial),
//	centred with transform_matrix_offset_center (o = size/2 + 0.5, Keras' off-by-one kept),
//	then scipy.ndimage.affine_transform(channel, M[:2,:2], M[:2,2], order=1, mode='nearest').
//
// The float64 arithmetic follows SciPy's NI_GeometricTransform term by term: input coordinate
// = ((r·m00 + q·m01) + offset), clamped to [0, len−1]; weights w0 = 1 − frac, w1 = 1 − w0;
// value = Σ over (row tap, column tap), column fastest, of (v·wr)·wc; stored as float32.
// Conversions float64(...) around products stop the compiler from fusing multiply-adds, which
// SciPy's build does not do.
func affineNearestBilinear(src []float32, h, w, c int, shearDeg, zx, zy float64, dst []float32) {
	// Matrix product as Keras builds it; products by 0 and 1 are exact, so only the entries
	// that are real products are computed.
	m00, m01, m10, m11 := 1.0, 0.0, 0.0, 1.0
	if shearDeg != 0 {
		s := shearDeg * deg2rad
		m01, m11 = -math.Sin(s), math.Cos(s)
	}
	if zx != 1 || zy != 1 {
		m00 = m00 * zx
		m01 = float64(m01 * zy)
		m11 = float64(m11 * zy)
	}
	ox := float64(h)/2 + 0.5
	oy := float64(w)/2 + 0.5
	off0 := float64(m00*-ox) + float64(m01*-oy) + ox
	off1 := float64(m10*-ox) + float64(m11*-oy) + oy

	// The column coordinate, (r·m10 + q·m11) + off1 with m10 = 0, does not depend on the row
	// (0 + x = x exactly), so column taps are computed once per column.
	cols := make([]bilinearTap, w)
	for q := 0; q < w; q++ {
		cols[q] = newTap(float64(float64(q)*m11)+off1, w)
	}
	colTerm0 := make([]float64, w) // q·m01
	for q := 0; q < w; q++ {
		colTerm0[q] = float64(float64(q) * m01)
	}
	for r := 0; r < h; r++ {
		rr0 := float64(float64(r) * m00)
		o := r * w * c
		for q := 0; q < w; q++ {
			tr := newTap((rr0+colTerm0[q])+off0, h)
			tc := cols[q]
			p00 := (tr.i0*w + tc.i0) * c
			p01 := (tr.i0*w + tc.i1) * c
			p10 := (tr.i1*w + tc.i0) * c
			p11 := (tr.i1*w + tc.i1) * c
			for k := 0; k < c; k++ {
				t := float64(float64(float64(src[p00+k])*tr.w0) * tc.w0)
				t += float64(float64(float64(src[p01+k])*tr.w0) * tc.w1)
				t += float64(float64(float64(src[p10+k])*tr.w1) * tc.w0)
				t += float64(float64(float64(src[p11+k])*tr.w1) * tc.w1)
				dst[o+k] = float32(t)
			}
			o += c
		}
	}
}

// bilinearTap is one axis of an order-1 spline sample: two indices and their weights.
type bilinearTap struct {
	i0, i1 int
	w0, w1 float64
}

// newTap maps coordinate cc on an axis of n samples as SciPy does for mode='nearest', order=1:
// clamp to [0, n−1], start = floor, w0 = 1 − (cc − start), w1 = 1 − w0. At cc = n−1 SciPy's
// second tap is the mirrored index n−2 with weight exactly 0.
func newTap(cc float64, n int) bilinearTap {
	if cc < 0 {
		cc = 0
	} else if max := float64(n - 1); cc > max {
		cc = max
	}
	fl := math.Floor(cc)
	start := int(fl)
	w0 := 1.0 - (cc - fl)
	i1 := start + 1
	if i1 >= n {
		i1 = max(n-2, 0)
	}
	return bilinearTap{start, i1, w0, 1.0 - w0}
}
