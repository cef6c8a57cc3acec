// The arithmetic follows libjpeg-turbo's jidctint.c (IJG and BSD licences):
// this software is based in part on the work of the Independent JPEG Group.

package jpeg

import "encoding/binary"

// This file ports libjpeg's accurate integer inverse DCT ("ISLOW",
// jidctint.c, the Loeffler-Ligtenberg-Moschytz algorithm with 13-bit fixed
// point constants), the method libjpeg-turbo and therefore Pillow use by
// default. Go's own image/jpeg IDCT rounds differently and is off by one in a
// few percent of samples.

const (
	constBits = 13
	pass1Bits = 2

	// FIX(x) = round(x * 2^13), as in jidctint.c.
	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// descale is libjpeg's DESCALE: divide by 2^n rounding half up, with an
// arithmetic shift.
func descale(x int64, n uint) int64 {
	return (x + 1<<(n-1)) >> n
}

// clampSample maps x+128 into 0..255, which is what libjpeg's range-limit
// table does for every value a real encoder can produce. min and max compile
// to conditional moves, so the clamp costs no branch mispredictions.
func clampSample(x int64) byte {
	return byte(min(max(x+128, 0), 255))
}

// idct1D is the shared 1-D kernel of both passes: inputs c0..c7 (already
// dequantized, or pass-1 results), outputs o0..o7 still scaled by 2^13.
func idct1D(c0, c1, c2, c3, c4, c5, c6, c7 int64) (o0, o1, o2, o3, o4, o5, o6, o7 int64) {
	// Even part.
	z1 := (c2 + c6) * fix0_541196100
	tmp2 := z1 - c6*fix1_847759065
	tmp3 := z1 + c2*fix0_765366865
	tmp0 := (c0 + c4) << constBits
	tmp1 := (c0 - c4) << constBits
	tmp10 := tmp0 + tmp3
	tmp13 := tmp0 - tmp3
	tmp11 := tmp1 + tmp2
	tmp12 := tmp1 - tmp2

	// Odd part; a, b, c, d are y7, y5, y3, y1.
	a, b, c, d := c7, c5, c3, c1
	z1 = a + d
	z2 := b + c
	z3 := a + c
	z4 := b + d
	z5 := (z3 + z4) * fix1_175875602
	a *= fix0_298631336
	b *= fix2_053119869
	c *= fix3_072711026
	d *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 = z3*-fix1_961570560 + z5
	z4 = z4*-fix0_390180644 + z5
	a += z1 + z3
	b += z2 + z4
	c += z2 + z3
	d += z1 + z4

	return tmp10 + d, tmp11 + c, tmp12 + b, tmp13 + a,
		tmp13 - a, tmp12 - b, tmp11 - c, tmp10 - d
}

// dequantize multiplies a coefficient by its quantizer the way libjpeg-turbo
// does: both are first narrowed to 16 bits, as it stores them (JCOEF and the
// SIMD build's MULTIPLIER type); the product of two int16 always fits int32.
func dequantize(coef, quant int32) int32 {
	return int32(int16(coef)) * int32(int16(quant))
}

// idctDC is idctISLOW for a block whose AC coefficients are all zero, given
// its dequantized DC coefficient. Both passes of idctISLOW then take their
// "only the first input is nonzero" shortcut, so every sample is the same
// value: the DC scaled up by 2^pass1Bits in pass 1 and descaled by
// pass1Bits+3 bits in pass 2.
func idctDC(dc int32, dst []byte, stride int) {
	v := clampSample(descale(int64(dc)<<pass1Bits, pass1Bits+3))
	row := uint64(v) * 0x0101010101010101
	for r := range 8 {
		binary.LittleEndian.PutUint64(dst[r*stride:r*stride+8], row)
	}
}

// idctISLOW inverse transforms the dequantized natural-order coefficients in
// and writes the 8x8 samples (level-shifted by 128 and clamped) to dst with
// the given stride.
func idctISLOW(in *block, dst []byte, stride int) {
	var ws [blockSize]int64

	// Pass 1: columns; results are kept scaled up by 2^pass1Bits.
	for col := 0; col < 8; col++ {
		if in[8+col]|in[16+col]|in[24+col]|in[32+col]|in[40+col]|in[48+col]|in[56+col] == 0 {
			// Same result as the full computation, just faster.
			dc := int64(in[col]) << pass1Bits
			ws[col], ws[8+col], ws[16+col], ws[24+col] = dc, dc, dc, dc
			ws[32+col], ws[40+col], ws[48+col], ws[56+col] = dc, dc, dc, dc
			continue
		}
		o0, o1, o2, o3, o4, o5, o6, o7 := idct1D(int64(in[col]), int64(in[8+col]), int64(in[16+col]),
			int64(in[24+col]), int64(in[32+col]), int64(in[40+col]), int64(in[48+col]), int64(in[56+col]))
		const n = constBits - pass1Bits
		ws[col] = descale(o0, n)
		ws[8+col] = descale(o1, n)
		ws[16+col] = descale(o2, n)
		ws[24+col] = descale(o3, n)
		ws[32+col] = descale(o4, n)
		ws[40+col] = descale(o5, n)
		ws[48+col] = descale(o6, n)
		ws[56+col] = descale(o7, n)
	}

	// Pass 2: rows; remove the 2^(13+2) scale and the factor 8 of the DCT.
	_ = dst[7*stride+7] // Bounds check hint.
	for row := 0; row < 8; row++ {
		w := (*[8]int64)(ws[8*row : 8*row+8])
		out := (*[8]byte)(dst[row*stride : row*stride+8])
		// Unlike columns, rows with only a DC term are rare here (pass 1
		// spreads each column's values down all rows), so no shortcut.
		o0, o1, o2, o3, o4, o5, o6, o7 := idct1D(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
		const n = constBits + pass1Bits + 3
		out[0] = clampSample(descale(o0, n))
		out[1] = clampSample(descale(o1, n))
		out[2] = clampSample(descale(o2, n))
		out[3] = clampSample(descale(o3, n))
		out[4] = clampSample(descale(o4, n))
		out[5] = clampSample(descale(o5, n))
		out[6] = clampSample(descale(o6, n))
		out[7] = clampSample(descale(o7, n))
	}
}
