// The arithmetic follows libjpeg-turbo's jdsample.c and jdcolor.c (IJG and BSD licences):
// this software is based in part on the work of the Independent JPEG Group.

package jpeg

// This file ports the output side of libjpeg-turbo's decompressor with its
// default settings: per-component upsampling (jdsample.c, with
// do_fancy_upsampling on) followed by colour conversion (jdcolor.c). Go's
// image/jpeg instead replicates chroma samples and uses different colour
// rounding, which moves 4:2:0 pixels by up to ~25.

import (
	"encoding/binary"
	"image"
)

// chromaTerms holds the fixed-point terms of jdcolor.c's YCbCr->RGB tables
// (build_ycc_rgb_table, SCALEBITS = 16) for one raw chroma sample value: a
// Cr value contributes crR to red and crG to green, a Cb value cbG to green
// and cbB to blue. Keeping the four in one table entry lets the conversion
// loop address them from a single base.
type chromaTerms struct {
	crR, crG, cbG, cbB int32
}

var ycc [256]chromaTerms

func init() {
	const oneHalf = 1 << 15
	for i := range 256 {
		x := int32(i - 128)
		ycc[i] = chromaTerms{
			crR: (91881*x + oneHalf) >> 16,  // FIX(1.40200)
			cbB: (116130*x + oneHalf) >> 16, // FIX(1.77200)
			crG: -46802 * x,                 // FIX(0.71414)
			cbG: -22554*x + oneHalf,         // FIX(0.34414), with rounding folded in
		}
	}
}

// yccToRGB converts one pixel with jdcolor.c's ycc_rgb_convert arithmetic,
// before range limiting.
func yccToRGB(y, cb, cr byte) (r, g, b int32) {
	yy := int32(y)
	tb, tr := &ycc[cb], &ycc[cr]
	return yy + tr.crR, yy + (tb.cbG+tr.crG)>>16, yy + tb.cbB
}

// clamp255 limits a colour-converted value to a sample, like libjpeg's
// range-limit table (branch-free: min and max become conditional moves).
func clamp255(x int32) byte {
	return byte(min(max(x, 0), 255))
}

// upsampler produces full-resolution rows of one component, choosing the
// same method libjpeg's jinit_upsampler picks for its sampling ratio.
type upsampler struct {
	plane    []byte
	stride   int
	dsw, dsh int // Component size in real samples (downsampled_width/height).
	hx, vx   int // Expansion ratios hMax/h and vMax/v.
	method   int
	buf      []byte
	// For the 2:1 horizontal filters: cols holds one row's column values
	// with the edge columns repeated at both ends, filt the filter's
	// rounding.
	cols []int32
	filt h2Filter
}

// h2Filter is the horizontal half of libjpeg's "fancy" 2:1 upsamplers
// (jdsample.c h2v1_fancy_upsample and h2v2_fancy_upsample), a triangle
// filter: each input column value t yields the output samples
// (3*t + left + bias0) >> shift and (3*t + right + bias1) >> shift. For h2v1
// the column values are the samples themselves (biases 1 and 2, shift 2);
// for h2v2 they are 3*nearer row + farther row (biases 8 and 7, shift 4).
// Repeating the first and last column values reproduces libjpeg's edge
// columns, whose outer samples are the (rounded) column value itself.
type h2Filter struct {
	bias0, bias1 int32
	shift        uint
}

// pair returns the two output samples of the column value cur with
// neighbours prev and next.
func (f h2Filter) pair(prev, cur, next int32) (even, odd byte) {
	c := 3 * cur
	return byte((c + prev + f.bias0) >> (f.shift & 31)), byte((c + next + f.bias1) >> (f.shift & 31))
}

const (
	upFull      = iota // 1:1, no work.
	upH2V1Fancy        // 2:1 horizontal triangle filter (4:2:2).
	upH1V2Fancy        // 2:1 vertical triangle filter (4:4:0).
	upH2V2Fancy        // 2:1 both ways (4:2:0).
	upReplicate        // Any other integer ratio: box filter (int_upsample).
)

func (d *decoder) newUpsampler(i int) *upsampler {
	c := &d.comp[i]
	u := &upsampler{
		plane:  d.planes[i],
		stride: d.strides[i],
		hx:     d.hMax / c.h,
		vx:     d.vMax / c.v,
		buf:    make([]byte, 8*d.hMax*d.mxx),
	}
	u.dsw, u.dsh = d.compSize(i)
	switch {
	case u.hx == 1 && u.vx == 1:
		u.method = upFull
	// libjpeg only uses its fancy 2:1 horizontal filters when the component
	// is more than 2 samples wide; narrower ones are replicated.
	case u.hx == 2 && u.vx == 1 && u.dsw > 2:
		u.method = upH2V1Fancy
	case u.hx == 1 && u.vx == 2:
		u.method = upH1V2Fancy
	case u.hx == 2 && u.vx == 2 && u.dsw > 2:
		u.method = upH2V2Fancy
	default:
		u.method = upReplicate
	}
	switch u.method {
	case upH2V1Fancy:
		u.filt = h2Filter{bias0: 1, bias1: 2, shift: 2}
		u.cols = make([]int32, u.dsw+2)
	case upH2V2Fancy:
		u.filt = h2Filter{bias0: 8, bias1: 7, shift: 4}
		u.cols = make([]int32, u.dsw+2)
	}
	return u
}

// columns returns the column values of output row y for a 2:1 horizontal
// filter (see h2Filter): u.dsw values with the edge ones repeated at both
// ends.
func (u *upsampler) columns(y int) []int32 {
	n := u.dsw
	t := u.cols[:n+2]
	if u.method == upH2V1Fancy {
		for k, v := range u.plane[y*u.stride : y*u.stride+n] {
			t[k+1] = int32(v)
		}
	} else {
		near, far, _ := u.rows(y)
		far = far[:len(near)]
		for k, v := range near {
			t[k+1] = 3*int32(v) + int32(far[k])
		}
	}
	t[0], t[n+1] = t[1], t[n]
	return t
}

// row returns output row y (at least width samples valid). The returned
// slice may alias the plane or u's buffer and is valid until the next call.
func (u *upsampler) row(y, width int) []byte {
	switch u.method {
	case upFull:
		return u.plane[y*u.stride : y*u.stride+width]

	case upH2V1Fancy, upH2V2Fancy:
		t := u.columns(y)
		out := u.buf[:2*u.dsw]
		for k := range u.dsw {
			out[2*k], out[2*k+1] = u.filt.pair(t[k], t[k+1], t[k+2])
		}
		return out

	case upH1V2Fancy:
		near, far, upper := u.rows(y)
		out := u.buf
		// jdsample.c h1v2_fancy_upsample: the two output rows of an input
		// row round with different biases (an ordered dither).
		bias := int32(2)
		if upper {
			bias = 1
		}
		for x := 0; x < u.dsw; x++ {
			out[x] = byte((3*int32(near[x]) + int32(far[x]) + bias) >> 2)
		}
		return out

	default: // upReplicate
		r := y / u.vx
		c := u.plane[r*u.stride:]
		out := u.buf[:width]
		for x := range out {
			out[x] = c[x/u.hx]
		}
		return out
	}
}

// rows returns, for output row y of a component upsampled 2:1 vertically,
// the nearest input row and the next nearest one (above for the upper output
// row, below for the lower). Beyond the first and last real rows the edge row
// is reused, as libjpeg's context-row buffers (jdmainct.c) do.
func (u *upsampler) rows(y int) (near, far []byte, upper bool) {
	r := y / 2
	upper = y%2 == 0
	nb := r + 1
	if upper {
		nb = r - 1
	}
	nb = max(0, min(nb, u.dsh-1))
	return u.plane[r*u.stride : r*u.stride+u.dsw], u.plane[nb*u.stride : nb*u.stride+u.dsw], upper
}

// gray returns the single component as an image.
func (d *decoder) gray() *image.Gray {
	img := image.NewGray(image.Rect(0, 0, d.width, d.height))
	for y := 0; y < d.height; y++ {
		copy(img.Pix[y*img.Stride:y*img.Stride+d.width], d.planes[0][y*d.strides[0]:])
	}
	return img
}

// rgb upsamples the three components and converts them to RGB, row by row.
func (d *decoder) rgb() *image.RGBA {
	w, h := d.width, d.height
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	u0, u1, u2 := d.newUpsampler(0), d.newUpsampler(1), d.newUpsampler(2)
	isRGB := d.isRGB()
	// The usual 4:2:0 and 4:2:2 layouts upsample the chroma inside the
	// conversion loop, without a pass through the row buffers.
	fused := !isRGB && u0.method == upFull && u1.method == u2.method &&
		(u1.method == upH2V1Fancy || u1.method == upH2V2Fancy)
	for y := 0; y < h; y++ {
		if fused {
			ycbcrRowH2(img.Pix[y*img.Stride:y*img.Stride+4*w], u0.row(y, w)[:w], u1, u2, y)
			continue
		}
		c0 := u0.row(y, w)[:w]
		c1 := u1.row(y, w)[:w]
		c2 := u2.row(y, w)[:w]
		out := img.Pix[y*img.Stride : y*img.Stride+4*w]
		if isRGB {
			for x := range w {
				o := out[4*x : 4*x+4 : 4*x+4]
				o[0], o[1], o[2], o[3] = c0[x], c1[x], c2[x], 255
			}
			continue
		}
		ycbcrRow(out, c0, c1, c2)
	}
	return img
}

// ycbcrRow converts one row of full-resolution Y, Cb and Cr samples to
// opaque RGBA pixels in out (4*len(y) bytes).
func ycbcrRow(out, y, cb, cr []byte) {
	n := len(y)
	cb, cr = cb[:n], cr[:n]
	for x, yv := range y {
		binary.LittleEndian.PutUint32(out[4*x:4*x+4], yccPixel(yv, cb[x], cr[x]))
	}
}

// ycbcrRowH2 is ycbcrRow for output row y of chroma components ub and ur
// that both use a 2:1 horizontal triangle filter, upsampled on the fly.
func ycbcrRowH2(out, yrow []byte, ub, ur *upsampler, y int) {
	tb, tr := ub.columns(y), ur.columns(y)
	f := ub.filt
	w := len(yrow)
	out = out[:4*w]
	for x := 0; x < w; x += 2 {
		k := x >> 1
		cb0, cb1 := f.pair(tb[k], tb[k+1], tb[k+2])
		cr0, cr1 := f.pair(tr[k], tr[k+1], tr[k+2])
		binary.LittleEndian.PutUint32(out[4*x:4*x+4], yccPixel(yrow[x], cb0, cr0))
		if x+1 < w {
			binary.LittleEndian.PutUint32(out[4*x+4:4*x+8], yccPixel(yrow[x+1], cb1, cr1))
		}
	}
}

// yccPixel converts one pixel to an opaque little-endian RGBA word: yccToRGB
// followed by clamp255, written out with the tables' index offset folded in
// so that the compiler inlines it into the row loops (TestYCCPixel checks
// the two agree on every input).
func yccPixel(y, cb, cr byte) uint32 {
	yy := int32(y) + 512 // The tables' index offset.
	tb, tr := &ycc[cb], &ycc[cr]
	return pixR[uint32(yy+tr.crR)&1023] | pixG[uint32(yy+(tb.cbG+tr.crG)>>16)&1023] | pixBA[uint32(yy+tb.cbB)&1023]
}

// pixR, pixG and pixBA are libjpeg's range limiting (clamp255) as tables
// that also place the channel in a little-endian RGBA word: entry
// (x+512)&1023 holds x limited to 0..255, valid for -512 <= x < 512, which
// holds every yccToRGB result (at most 255+227 away from 0..255). pixBA
// carries the opaque alpha byte too.
var pixR, pixG, pixBA = func() (r, g, ba [1024]uint32) {
	for i := range r {
		v := uint32(clamp255(int32(i - 512)))
		r[i], g[i], ba[i] = v, v<<8, v<<16|0xff<<24
	}
	return r, g, ba
}()
