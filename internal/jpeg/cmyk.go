// The YCCK arithmetic follows libjpeg-turbo's jdcolor.c (IJG and BSD
// licences): this software is based in part on the work of the Independent
// JPEG Group. CMYKToRGB follows Pillow's libImaging/Convert.c (HPND licence).

package jpeg

// This file handles 4-component (Adobe/Photoshop CMYK and YCCK) files the way
// Keras sees them: Pillow opens them as mode "CMYK" and load_img then calls
// convert('RGB'). Three stages are reproduced:
//
//  1. libjpeg-turbo decodes with out_color_space JCS_CMYK. Each component is
//     upsampled like any other (color.go); CMYK data is passed through
//     unchanged, YCCK data goes through ycck_cmyk_convert, which turns Y, Cb,
//     Cr into R, G, B with the YCbCr tables and stores 255-R, 255-G, 255-B.
//  2. Pillow 9.4's JpegImagePlugin unpacks every 4-component JPEG with
//     rawmode "CMYK;I" ("assume adobe conventions"), whether or not the file
//     has an Adobe marker: all four channels are inverted (v -> 255-v).
//  3. Pillow's convert('RGB') (Convert.c cmyk2rgb) computes each channel as
//     (255-K) - (C*(255-K))/255 with its rounding MULDIV255 macro; that is
//     CMYKToRGB.
//
// Decode returns the values after stage 2 in an *image.CMYK, whose meaning
// (0 = no ink, like Pillow's mode "CMYK") matches Go's image.CMYK.

import "image"

// isYCCK reports whether a 4-component image stores YCCK rather than CMYK,
// as libjpeg's default_decompress_parms (jdapimin.c) decides: only an Adobe
// marker can say YCCK; its transform 0 means CMYK, 2 YCCK, and any other
// value is assumed to be YCCK too. Without the marker the data is CMYK.
func (d *decoder) isYCCK() bool {
	return d.adobeSeen && d.adobeXform != 0
}

// cmyk upsamples the four components, converts YCCK to CMYK the way libjpeg
// does and inverts every channel as Pillow's "CMYK;I" unpacker does.
func (d *decoder) cmyk() *image.CMYK {
	w, h := d.width, d.height
	img := image.NewCMYK(image.Rect(0, 0, w, h))
	u0, u1, u2, u3 := d.newUpsampler(0), d.newUpsampler(1), d.newUpsampler(2), d.newUpsampler(3)
	ycck := d.isYCCK()
	for y := 0; y < h; y++ {
		c0 := u0.row(y, w)[:w]
		c1 := u1.row(y, w)[:w]
		c2 := u2.row(y, w)[:w]
		c3 := u3.row(y, w)[:w]
		out := img.Pix[y*img.Stride : y*img.Stride+4*w]
		if !ycck {
			// libjpeg's null_convert, then Pillow's inversion.
			for x := range w {
				o := out[4*x : 4*x+4 : 4*x+4]
				o[0], o[1], o[2], o[3] = 255-c0[x], 255-c1[x], 255-c2[x], 255-c3[x]
			}
			continue
		}
		for x := range w {
			r, g, b := yccToRGB(c0[x], c1[x], c2[x])
			// jdcolor.c ycck_cmyk_convert: range_limit[MAXJSAMPLE - (y + ...)],
			// K passed through; each then inverted by Pillow.
			o := out[4*x : 4*x+4 : 4*x+4]
			o[0] = 255 - clamp255(255-r)
			o[1] = 255 - clamp255(255-g)
			o[2] = 255 - clamp255(255-b)
			o[3] = 255 - c3[x]
		}
	}
	return img
}

// CMYKToRGB converts one pixel of Pillow's mode "CMYK" (as Decode returns it
// in an *image.CMYK) to RGB exactly as Pillow's Image.convert('RGB') does
// (libImaging/Convert.c cmyk2rgb): with nk = 255-K, each channel is
// nk - MULDIV255(C, nk), where MULDIV255(a, b) = (t + t>>8) >> 8 with
// t = a*b + 128, i.e. a*b/255 rounded to nearest. Go's color.CMYKToRGB
// truncates instead and gives different values.
func CMYKToRGB(c, m, y, k uint8) (r, g, b uint8) {
	nk := 255 - int32(k)
	return cmykChannel(c, nk), cmykChannel(m, nk), cmykChannel(y, nk)
}

// cmykChannel is one channel of Pillow's cmyk2rgb: CLIP8(nk - MULDIV255(v, nk)).
func cmykChannel(v uint8, nk int32) uint8 {
	t := int32(v)*nk + 128
	return clamp255(nk - (((t >> 8) + t) >> 8))
}
