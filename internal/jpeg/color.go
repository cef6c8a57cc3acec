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
	return u
}

// row returns output row y (at least width samples valid). The returned
// slice may alias the plane or u's buffer and is valid until the next call.
func (u *upsampler) row(y, width int) []byte {
	switch u.method {
	case upFull:
		return u.plane[y*u.stride : y*u.stride+width]

	case upH2V1Fancy:
		c := u.plane[y*u.stride : y*u.stride+u.dsw]
		out := u.buf
		n := u.dsw
		out[0] = c[0]
		out[1] = byte((3*int32(c[0]) + int32(c[1]) + 2) >> 2)
		for k := 1; k < n-1; k++ {
			v := 3 * int32(c[k])
			out[2*k] = byte((v + int32(c[k-1]) + 1) >> 2)
			out[2*k+1] = byte((v + int32(c[k+1]) + 2) >> 2)
		}
		out[2*n-2] = byte((3*int32(c[n-1]) + int32(c[n-2]) + 1) >> 2)
		out[2*n-1] = c[n-1]
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

	case upH2V2Fancy:
		near, far, _ := u.rows(y)
		out := u.buf
		n := u.dsw
		this := 3*int32(near[0]) + int32(far[0])
		next := 3*int32(near[1]) + int32(far[1])
		out[0] = byte((this*4 + 8) >> 4)
		out[1] = byte((this*3 + next + 7) >> 4)
		last := this
		this = next
		for k := 1; k < n-1; k++ {
			next = 3*int32(near[k+1]) + int32(far[k+1])
			out[2*k] = byte((this*3 + last + 8) >> 4)
			out[2*k+1] = byte((this*3 + next + 7) >> 4)
			last = this
			this = next
		}
		out[2*n-2] = byte((this*3 + last + 8) >> 4)
		out[2*n-1] = byte((this*4 + 7) >> 4)
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
	for y := 0; y < h; y++ {
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
		r, g, b := yccToRGB(yv, cb[x], cr[x])
		px := pixR[uint32(r+512)&1023] | pixG[uint32(g+512)&1023] | pixBA[uint32(b+512)&1023]
		binary.LittleEndian.PutUint32(out[4*x:4*x+4], px)
	}
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
