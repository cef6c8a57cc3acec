// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE-go file.
//
// This file is derived from Go's image/jpeg/scan.go (go1.26.8). Changes:
// samples go to per-component planes (upsampled later, see color.go), blocks
// are reconstructed with libjpeg's ISLOW IDCT (idct.go), non-interleaved
// scans count restart intervals per block as libjpeg does, quantization
// tables are latched per component, and progressive coefficient bits are
// tracked to detect files libjpeg would block-smooth.

package jpeg

import "fmt"

// allocate creates the sample planes (and, for progressive files, the
// coefficient store) at the first SOS marker.
func (d *decoder) allocate() {
	for i := 0; i < d.nComp; i++ {
		c := &d.comp[i]
		d.strides[i] = 8 * c.h * d.mxx
		d.planes[i] = make([]byte, d.strides[i]*8*c.v*d.myy)
		if d.progressive {
			// Allocated for every component, zeroed, like libjpeg's
			// pre-zeroed coefficient arrays: a component that no scan
			// covers decodes as mid-gray instead of being an error.
			d.progCoeffs[i] = make([]block16, d.mxx*c.h*d.myy*c.v)
			for k := range d.coefBits[i] {
				d.coefBits[i][k] = -1
			}
		}
	}
}

// compBlocks returns the number of 8x8 blocks per row and per column that
// actually hold image data for component i (libjpeg's width_in_blocks and
// height_in_blocks). Non-interleaved scans code exactly these blocks.
func (d *decoder) compBlocks(i int) (bw, bh int) {
	dsw, dsh := d.compSize(i)
	return (dsw + 7) / 8, (dsh + 7) / 8
}

// compSize returns component i's size in samples: the image size scaled by
// its sampling factors and rounded up (libjpeg's downsampled_width/height).
func (d *decoder) compSize(i int) (w, h int) {
	c := &d.comp[i]
	return (d.width*c.h + d.hMax - 1) / d.hMax, (d.height*c.v + d.vMax - 1) / d.vMax
}

// scanComp is one component of the current scan.
type scanComp struct {
	compIndex int
	td        uint8 // DC table selector.
	ta        uint8 // AC table selector.
}

// scanParams are the spectral selection and successive approximation
// parameters of the current scan (Ss, Se, Ah and Al in the spec).
type scanParams struct {
	zigStart, zigEnd int32
	ah, al           uint32
}

// Specified in section B.2.3.
func (d *decoder) processSOS(n int) error {
	if d.nComp == 0 {
		return formatError("missing SOF marker before SOS")
	}
	if n < 6 || 4+2*d.nComp < n || n%2 != 0 {
		return formatError("SOS has wrong length")
	}
	if err := d.readFull(d.tmp[:n]); err != nil {
		return err
	}
	nComp := int(d.tmp[0])
	if n != 4+2*nComp {
		return formatError("SOS length inconsistent with number of components")
	}
	var scan [maxComponents]scanComp
	for i := 0; i < nComp; i++ {
		cs := d.tmp[1+2*i] // Component selector.
		compIndex := -1
		for j, comp := range d.comp[:d.nComp] {
			if cs == comp.c {
				compIndex = j
			}
		}
		if compIndex < 0 {
			return formatError("unknown component selector")
		}
		scan[i].compIndex = compIndex
		// Section B.2.3 states that "the value of Cs_j shall be different from
		// the values of Cs_1 through Cs_(j-1)". Since we have previously
		// verified that a frame's component identifiers (C_i values in section
		// B.2.2) are unique, it suffices to check that the implicit indexes
		// into d.comp are unique.
		for j := 0; j < i; j++ {
			if scan[i].compIndex == scan[j].compIndex {
				return formatError("repeated component selector")
			}
		}

		// The baseline t <= 1 restriction is specified in table B.3.
		scan[i].td = d.tmp[2+2*i] >> 4
		if t := scan[i].td; t > maxTh || (d.baseline && t > 1) {
			return formatError("bad Td value")
		}
		scan[i].ta = d.tmp[2+2*i] & 0x0f
		if t := scan[i].ta; t > maxTh || (d.baseline && t > 1) {
			return formatError("bad Ta value")
		}
	}

	// For sequential JPEGs, these parameters are hard-coded to 0/63/0/0, as
	// per table B.3.
	p := scanParams{zigStart: 0, zigEnd: blockSize - 1}
	if d.progressive {
		p.zigStart = int32(d.tmp[1+2*nComp])
		p.zigEnd = int32(d.tmp[2+2*nComp])
		p.ah = uint32(d.tmp[3+2*nComp] >> 4)
		p.al = uint32(d.tmp[3+2*nComp] & 0x0f)
		if (p.zigStart == 0 && p.zigEnd != 0) || p.zigStart > p.zigEnd || blockSize <= p.zigEnd {
			return formatError("bad spectral selection bounds")
		}
		if p.zigStart != 0 && nComp != 1 {
			return formatError("progressive AC coefficients for more than one component")
		}
		// libjpeg's limit for 8-bit data (jdphuff.c start_pass_phuff_decoder).
		if (p.ah != 0 && p.ah != p.al+1) || p.al > 13 {
			return formatError("bad successive approximation values")
		}
	}

	for i := 0; i < nComp; i++ {
		if tq := d.comp[scan[i].compIndex].tq; !d.quantDefined[tq] {
			return formatError(fmt.Sprintf("quantization table %d used before it is defined", tq))
		}
	}
	if d.planes[0] == nil {
		d.allocate()
	}
	for i := 0; i < nComp; i++ {
		ci := scan[i].compIndex
		if !d.scanned[ci] {
			// Latch the quantization table, as libjpeg does.
			q := &d.quant[d.comp[ci].tq]
			for zig := 0; zig < blockSize; zig++ {
				d.compQuant[ci][unzig[zig]] = q[zig]
			}
			d.scanned[ci] = true
		}
		if d.progressive {
			for k := p.zigStart; k <= p.zigEnd; k++ {
				d.coefBits[ci][k] = int8(p.al)
			}
		}
	}

	d.bits = bits{}
	d.eobRun = 0
	var (
		// dc holds the DC predictors, per component.
		dc [maxComponents]int32
		// b is the decoded coefficients, in natural (not zig-zag) order.
		b           block
		expectedRST = uint8(rst0Marker)
	)
	// nextMCU handles the restart marker that may follow MCU number mcu (1-based)
	// out of total.
	nextMCU := func(mcu, total int) error {
		if d.ri == 0 || mcu%d.ri != 0 || mcu >= total {
			return nil
		}
		// For well-formed input, the RST[0-7] restart marker follows
		// immediately. For corrupt input, call findRST to try to
		// resynchronize.
		if err := d.readFull(d.tmp[:2]); err != nil {
			return err
		} else if d.tmp[0] != 0xff || d.tmp[1] != expectedRST {
			if err := d.findRST(expectedRST); err != nil {
				return err
			}
		}
		expectedRST++
		if expectedRST == rst7Marker+1 {
			expectedRST = rst0Marker
		}
		// Reset the Huffman decoder.
		d.bits = bits{}
		// Reset the DC components, as per section F.2.1.3.1.
		dc = [maxComponents]int32{}
		// Reset the progressive decoder state, as per section G.1.2.2.
		d.eobRun = 0
		return nil
	}

	if nComp == 1 {
		// A non-interleaved scan: each MCU is one block, and only the blocks
		// that hold image data are coded, left to right and top to bottom
		// (section A.2.2). Restart intervals count these blocks.
		s := &scan[0]
		ci := s.compIndex
		bw, bh := d.compBlocks(ci)
		total := bw * bh
		mcu := 0
		for by := 0; by < bh; by++ {
			for bx := 0; bx < bw; bx++ {
				if err := d.decodeBlock(&b, s, p, &dc[ci], bx, by); err != nil {
					return err
				}
				mcu++
				if err := nextMCU(mcu, total); err != nil {
					return err
				}
			}
		}
		return nil
	}

	// An interleaved scan. The blocks are traversed one MCU at a time. For
	// 4:2:0 chroma subsampling, there are four Y 8x8 blocks in every 16x16
	// MCU; for a 32x16 pixel image, the Y blocks visiting order is:
	//	0 1 4 5
	//	2 3 6 7
	// Blocks of partial MCUs at the right and bottom edges are coded even
	// where they lie outside the image ("dummy blocks", section A.2.4).
	total := d.mxx * d.myy
	mcu := 0
	for my := 0; my < d.myy; my++ {
		for mx := 0; mx < d.mxx; mx++ {
			for i := 0; i < nComp; i++ {
				s := &scan[i]
				ci := s.compIndex
				hi, vi := d.comp[ci].h, d.comp[ci].v
				for j := 0; j < hi*vi; j++ {
					bx := hi*mx + j%hi
					by := vi*my + j/hi
					if err := d.decodeBlock(&b, s, p, &dc[ci], bx, by); err != nil {
						return err
					}
				}
			}
			mcu++
			if err := nextMCU(mcu, total); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeBlock decodes the coefficients of block (bx, by) of component
// s.compIndex for the current scan. Sequential blocks are reconstructed into
// the sample plane right away; progressive ones are accumulated.
func (d *decoder) decodeBlock(b *block, s *scanComp, p scanParams, dc *int32, bx, by int) error {
	ci := s.compIndex
	var stored *block16
	if d.progressive {
		// Load the previous partially decoded coefficients.
		stored = &d.progCoeffs[ci][by*d.mxx*d.comp[ci].h+bx]
		for k, v := range stored {
			b[k] = int32(v)
		}
	} else {
		*b = block{}
	}

	if p.ah != 0 {
		if err := d.refine(b, &d.huff[acTable][s.ta], p.zigStart, p.zigEnd, 1<<p.al); err != nil {
			return err
		}
	} else {
		zig := p.zigStart
		if zig == 0 {
			zig++
			// Decode the DC coefficient, as specified in section F.2.2.1.
			value, err := d.decodeHuffman(&d.huff[dcTable][s.td])
			if err != nil {
				return err
			}
			if value > 15 {
				// libjpeg rejects DC tables with such symbols (jdhuff.c).
				return formatError("bad DC coefficient size")
			}
			dcDelta, err := d.receiveExtend(value)
			if err != nil {
				return err
			}
			*dc += dcDelta
			b[0] = *dc << p.al
		}

		if zig <= p.zigEnd && d.eobRun > 0 {
			d.eobRun--
		} else {
			// Decode the AC coefficients, as specified in section F.2.2.2.
			huff := &d.huff[acTable][s.ta]
			for ; zig <= p.zigEnd; zig++ {
				value, err := d.decodeHuffman(huff)
				if err != nil {
					return err
				}
				val0 := value >> 4
				val1 := value & 0x0f
				if val1 != 0 {
					zig += int32(val0)
					if zig > p.zigEnd {
						break
					}
					ac, err := d.receiveExtend(val1)
					if err != nil {
						return err
					}
					b[unzig[zig]] = ac << p.al
				} else {
					if val0 != 0x0f {
						d.eobRun = uint16(1 << val0)
						if val0 != 0 {
							bits, err := d.decodeBits(int32(val0))
							if err != nil {
								return err
							}
							d.eobRun |= uint16(bits)
						}
						d.eobRun--
						break
					}
					zig += 0x0f
				}
			}
		}
	}

	if d.progressive {
		// Save the coefficients; reconstructProgressiveImage does the IDCT
		// once all scans are in.
		for k, v := range b {
			stored[k] = int16(v)
		}
		return nil
	}
	d.reconstructBlock(b, bx, by, ci)
	return nil
}

// refine decodes a successive approximation refinement block, as specified in
// section G.1.2.
func (d *decoder) refine(b *block, h *huffman, zigStart, zigEnd, delta int32) error {
	// Refining a DC component is trivial.
	if zigStart == 0 {
		if zigEnd != 0 {
			return formatError("bad spectral selection bounds")
		}
		bit, err := d.decodeBit()
		if err != nil {
			return err
		}
		if bit {
			b[0] |= delta
		}
		return nil
	}

	// Refining AC components is more complicated; see sections G.1.2.2 and G.1.2.3.
	zig := zigStart
	if d.eobRun == 0 {
	loop:
		for ; zig <= zigEnd; zig++ {
			z := int32(0)
			value, err := d.decodeHuffman(h)
			if err != nil {
				return err
			}
			val0 := value >> 4
			val1 := value & 0x0f

			switch val1 {
			case 0:
				if val0 != 0x0f {
					d.eobRun = uint16(1 << val0)
					if val0 != 0 {
						bits, err := d.decodeBits(int32(val0))
						if err != nil {
							return err
						}
						d.eobRun |= uint16(bits)
					}
					break loop
				}
			case 1:
				z = delta
				bit, err := d.decodeBit()
				if err != nil {
					return err
				}
				if !bit {
					z = -z
				}
			default:
				return formatError("unexpected Huffman code")
			}

			zig, err = d.refineNonZeroes(b, zig, zigEnd, int32(val0), delta)
			if err != nil {
				return err
			}
			if zig > zigEnd {
				return formatError("too many coefficients")
			}
			if z != 0 {
				b[unzig[zig]] = z
			}
		}
	}
	if d.eobRun > 0 {
		d.eobRun--
		if _, err := d.refineNonZeroes(b, zig, zigEnd, -1, delta); err != nil {
			return err
		}
	}
	return nil
}

// refineNonZeroes refines non-zero entries of b in zig-zag order. If nz >= 0,
// the first nz zero entries are skipped over.
func (d *decoder) refineNonZeroes(b *block, zig, zigEnd, nz, delta int32) (int32, error) {
	for ; zig <= zigEnd; zig++ {
		u := unzig[zig]
		if b[u] == 0 {
			if nz == 0 {
				break
			}
			nz--
			continue
		}
		bit, err := d.decodeBit()
		if err != nil {
			return 0, err
		}
		if !bit {
			continue
		}
		if b[u] >= 0 {
			b[u] += delta
		} else {
			b[u] -= delta
		}
	}
	return zig, nil
}

// wouldBlockSmooth reports whether libjpeg would apply its inter-block
// smoothing to this progressive image (jdcoefct.c smoothing_ok, with
// do_block_smoothing on by default): when the DC of every component is known
// but some of the first ten zig-zag coefficients of some component were never
// sent or not refined down to bit 0. Complete files never qualify. The check
// errs on the side of reporting smoothing (it ignores libjpeg's zero-quantizer
// exemption), so such files are refused rather than decoded differently.
func (d *decoder) wouldBlockSmooth() bool {
	useful := false
	for i := 0; i < d.nComp; i++ {
		if d.coefBits[i][0] < 0 {
			return false
		}
		for k := 1; k < 10; k++ {
			if d.coefBits[i][k] != 0 {
				useful = true
			}
		}
	}
	return useful
}

// reconstructProgressiveImage runs the IDCT over every accumulated block that
// holds image data. Blocks only present as MCU padding stay zero: upsampling
// never reads them.
func (d *decoder) reconstructProgressiveImage() {
	var b block
	for i := 0; i < d.nComp; i++ {
		bw, bh := d.compBlocks(i)
		stride := d.mxx * d.comp[i].h
		for by := 0; by < bh; by++ {
			for bx := 0; bx < bw; bx++ {
				for k, v := range d.progCoeffs[i][by*stride+bx] {
					b[k] = int32(v)
				}
				d.reconstructBlock(&b, bx, by, i)
			}
		}
	}
}

// reconstructBlock dequantizes b, performs libjpeg's ISLOW inverse DCT and
// stores the 8x8 samples into component compIndex's plane.
func (d *decoder) reconstructBlock(b *block, bx, by, compIndex int) {
	stride := d.strides[compIndex]
	dst := d.planes[compIndex][8*(by*stride+bx):]
	idctISLOW(b, &d.compQuant[compIndex], dst, stride)
}

// findRST advances past the next RST restart marker that matches expectedRST.
// Other than I/O errors, it is also an error if we encounter an {0xFF, M}
// two-byte marker sequence where M is not 0x00, 0xFF or the expectedRST.
//
// This is similar to libjpeg's jdmarker.c's next_marker function.
// https://github.com/libjpeg-turbo/libjpeg-turbo/blob/2dfe6c0fe9e18671105e94f7cbf044d4a1d157e6/jdmarker.c#L892-L935
//
// Precondition: d.tmp[:2] holds the next two bytes of JPEG-encoded input
// (input in the d.readFull sense).
func (d *decoder) findRST(expectedRST uint8) error {
	for {
		// i is the index such that, at the bottom of the loop, we read 2-i
		// bytes into d.tmp[i:2], maintaining the invariant that d.tmp[:2]
		// holds the next two bytes of JPEG-encoded input. It is either 0 or 1,
		// so that each iteration advances by 1 or 2 bytes (or returns).
		i := 0

		if d.tmp[0] == 0xff {
			if d.tmp[1] == expectedRST {
				return nil
			} else if d.tmp[1] == 0xff {
				i = 1
			} else if d.tmp[1] != 0x00 {
				// libjpeg's jdmarker.c's jpeg_resync_to_restart does something
				// fancy here, treating RST markers within two (modulo 8) of
				// expectedRST differently from RST markers that are 'more
				// distant'. Until we see evidence that recovering from such
				// cases is frequent enough to be worth the complexity, we take
				// a simpler approach for now. Any marker that's not 0x00, 0xff
				// or expectedRST is a fatal formatError.
				return formatError("bad RST marker")
			}

		} else if d.tmp[1] == 0xff {
			d.tmp[0] = 0xff
			i = 1
		}

		if err := d.readFull(d.tmp[i:2]); err != nil {
			return err
		}
	}
}
