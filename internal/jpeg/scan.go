package jpeg

import (
	"fmt"
	"sync"
)

// scanComp is one component of a scan with its entropy tables.
type scanComp struct {
	ci     int // index into decoder.comp
	dc, ac *huffTable
	pred   int32 // DC predictor (T.81 F.2.1.3.1)
}

// scanHeader holds the spectral selection and successive approximation
// parameters of a scan (T.81 B.2.3); sequential scans use 0, 63, 0, 0.
type scanHeader struct {
	ss, se int // first and last zig-zag index
	ah, al int
}

// allocate creates the sample planes (and, for progressive files, the
// coefficient store) once the first scan starts, carved out of one recycled
// buffer each.
func (d *decoder) allocate() {
	var nPlane, nCoef [4]int
	sumPlane, sumCoef := 0, 0
	for i := range d.nComp {
		c := &d.comp[i]
		d.strides[i] = 8 * c.h * d.mxx
		nPlane[i] = d.strides[i] * 8 * c.v * d.myy
		sumPlane += nPlane[i]
		if d.progressive {
			nCoef[i] = d.mxx * c.h * d.myy * c.v
			sumCoef += nCoef[i]
			for k := range d.coefBits[i] {
				d.coefBits[i][k] = -1
			}
		}
	}
	d.planeBuf = planePool.get(sumPlane)
	d.coefBuf = coefPool.get(sumCoef)
	planes, coefs := d.planeBuf, d.coefBuf
	for i := range d.nComp {
		d.planes[i], planes = planes[:nPlane[i]:nPlane[i]], planes[nPlane[i]:]
		if d.progressive {
			d.coeffs[i], coefs = coefs[:nCoef[i]:nCoef[i]], coefs[nCoef[i]:]
		}
	}
}

// release hands the decoder's working buffers back for the next Decode.
// Nothing may use the planes or coefficients afterwards.
func (d *decoder) release() {
	planePool.put(d.planeBuf)
	coefPool.put(d.coefBuf)
	d.planes, d.coeffs, d.planeBuf, d.coefBuf = [4][]byte{}, [4][]block16{}, nil, nil
}

// planePool and coefPool recycle the decoder's working memory between
// decodes. Memory fresh from the operating system costs a page fault per
// page on first touch, which on virtual machines can cost more than decoding
// the pixels in it; the returned images themselves cannot be recycled.
var (
	planePool recycler[byte]
	coefPool  recycler[block16]
)

// recycler is a sync.Pool of slices. Slices it hands out are always cleared,
// so no result can depend on an earlier decode's data.
type recycler[T any] struct{ pool sync.Pool }

// get returns a zeroed slice of length n.
func (r *recycler[T]) get(n int) []T {
	if n == 0 {
		return nil
	}
	if p, ok := r.pool.Get().(*[]T); ok && cap(*p) >= n {
		s := (*p)[:n]
		clear(s)
		return s
	}
	return make([]T, n)
}

// put offers s for reuse.
func (r *recycler[T]) put(s []T) {
	if cap(s) > 0 {
		r.pool.Put(&s)
	}
}

// compSize is component i's size in samples (T.81 A.1.1).
func (d *decoder) compSize(i int) (w, h int) {
	c := &d.comp[i]
	return (d.width*c.h + d.hMax - 1) / d.hMax, (d.height*c.v + d.vMax - 1) / d.vMax
}

// compBlocks is component i's size in blocks, as a non-interleaved scan
// covers it.
func (d *decoder) compBlocks(i int) (bw, bh int) {
	w, h := d.compSize(i)
	return (w + 7) / 8, (h + 7) / 8
}

// parseScan parses a scan header and decodes the scan's entropy-coded data.
func (d *decoder) parseScan(n int) error {
	if d.nComp == 0 {
		return formatError("missing SOF marker before SOS")
	}
	if n < 6 || n > 4+2*d.nComp || n%2 != 0 {
		return formatError("SOS has wrong length")
	}
	p, err := d.src.take(n)
	if err != nil {
		return err
	}
	ns := int(p[0])
	if n != 4+2*ns {
		return formatError("SOS length inconsistent with number of components")
	}
	var comps [4]scanComp
	for i := range ns {
		sel, tables := p[1+2*i], p[2+2*i]
		ci := -1
		for j := range d.nComp {
			if d.comp[j].c == sel {
				ci = j
			}
		}
		if ci < 0 {
			return formatError("unknown component selector")
		}
		for j := range i {
			if comps[j].ci == ci {
				return formatError("repeated component selector")
			}
		}
		td, ta := tables>>4, tables&15
		if td > 3 || (d.baseline && td > 1) {
			return formatError("bad Td value")
		}
		if ta > 3 || (d.baseline && ta > 1) {
			return formatError("bad Ta value")
		}
		comps[i] = scanComp{ci: ci, dc: &d.huff[0][td], ac: &d.huff[1][ta]}
	}
	h := scanHeader{ss: 0, se: blockSize - 1}
	if d.progressive {
		q := p[1+2*ns:]
		h = scanHeader{ss: int(q[0]), se: int(q[1]), ah: int(q[2] >> 4), al: int(q[2] & 15)}
		if (h.ss == 0 && h.se != 0) || h.ss > h.se || h.se >= blockSize {
			return formatError("bad spectral selection bounds")
		}
		if h.ss != 0 && ns != 1 {
			return formatError("progressive AC coefficients for more than one component")
		}
		if (h.ah != 0 && h.ah != h.al+1) || h.al > 13 {
			return formatError("bad successive approximation values")
		}
	}
	for _, sc := range comps[:ns] {
		if tq := d.comp[sc.ci].tq; !d.quantDefined[tq] {
			return formatError(fmt.Sprintf("quantization table %d used before it is defined", tq))
		}
	}
	if d.planes[0] == nil {
		d.allocate()
	}
	for _, sc := range comps[:ns] {
		ci := sc.ci
		if !d.scanned[ci] {
			for k, q := range d.quant[d.comp[ci].tq] {
				d.compQuant[ci][zigzag[k]] = int32(int16(q))
			}
			d.scanned[ci] = true
		}
		if d.progressive {
			for k := h.ss; k <= h.se; k++ {
				d.coefBits[ci][k] = int8(h.al)
			}
		}
	}
	return d.decodeScan(comps[:ns], h)
}

// decodeScan walks the scan's MCUs (T.81 A.2), handling restart intervals
// (F.2.2.4 / RSTm markers).
func (d *decoder) decodeScan(comps []scanComp, h scanHeader) error {
	// Check the tables the scan will use now rather than once per block.
	for _, sc := range comps {
		needDC := !d.progressive || (h.ss == 0 && h.ah == 0)
		needAC := !d.progressive || h.ss > 0
		if (needDC && !sc.dc.defined) || (needAC && !sc.ac.defined) {
			return formatError("uninitialized Huffman table")
		}
	}
	d.br.reset()
	d.bandSkip = 0
	var coef block
	one := len(comps) == 1
	var mcusX, mcus int
	if one {
		bw, bh := d.compBlocks(comps[0].ci)
		mcusX, mcus = bw, bw*bh
	} else {
		mcusX, mcus = d.mxx, d.mxx*d.myy
	}
	nextRST := byte(mRST0)
	for m := range mcus {
		if d.restartInterval > 0 && m > 0 && m%d.restartInterval == 0 {
			if err := d.restart(nextRST); err != nil {
				return err
			}
			nextRST = mRST0 + (nextRST-mRST0+1)%8
			for i := range comps {
				comps[i].pred = 0
			}
		}
		mx, my := m%mcusX, m/mcusX
		for i := range comps {
			sc := &comps[i]
			c := &d.comp[sc.ci]
			bh, bv := c.h, c.v
			if one {
				bh, bv = 1, 1
			}
			for v := range bv {
				for u := range bh {
					bx, by := mx*bh+u, my*bv+v
					var err error
					if d.progressive {
						err = d.progressiveBlock(sc, h, &d.coeffs[sc.ci][by*d.mxx*c.h+bx])
					} else {
						var hasAC bool
						hasAC, err = d.sequentialBlock(sc, &coef, &d.compQuant[sc.ci])
						if err == nil {
							s := d.strides[sc.ci]
							dst := d.planes[sc.ci][8*(by*s+bx):]
							if hasAC {
								idctISLOW(&coef, dst, s)
							} else {
								idctDC(coef[0], dst, s)
							}
						}
					}
					if err != nil {
						return err
					}
				}
			}
		}
		if err := d.br.overrun(); err != nil {
			return err
		}
	}
	return nil
}

// restart discards the interval's remaining bits and expects RSTm next,
// skipping any leftover data bytes before it.
func (d *decoder) restart(want byte) error {
	d.br.reset()
	d.bandSkip = 0
	for {
		c, err := d.src.readByte()
		if err != nil {
			return err
		}
		if c != 0xff {
			continue
		}
		for c == 0xff {
			if c, err = d.src.readByte(); err != nil {
				return err
			}
		}
		switch c {
		case 0:
			continue
		case want:
			return nil
		}
		return formatError("bad RST marker")
	}
}

// sequentialBlock decodes one block of a sequential scan into coef in
// natural order (T.81 F.2.2.1 and F.2.2.2), dequantized with the natural-order
// table q (already narrowed to 16 bits, see dequantize). It reports whether any AC
// coefficient is nonzero, so that DC-only blocks can skip the full IDCT.
//
// This is the decoder's hottest loop, so it works on the bit reader's fields
// directly: one refill up front guarantees the bits for a whole symbol (a
// code of at most 16 bits and at most 15 magnitude bits), and the
// look-ahead table resolves most codes without a call.
func (d *decoder) sequentialBlock(sc *scanComp, coef, q *block) (hasAC bool, err error) {
	*coef = block{}
	if err := d.decodeDC(sc); err != nil {
		return false, err
	}
	coef[0] = dequantize(sc.pred, q[0])
	br := &d.br
	ac := sc.ac
	for k := 1; k < blockSize; k++ {
		if br.n < 32 {
			br.fill()
		}
		var rs byte
		if e := ac.look[br.acc>>(64-lookBits)]; e != 0 {
			l := int(e >> 8)
			br.acc <<= l
			br.n -= l
			rs = byte(e)
		} else if rs, err = br.decodeSlow(ac); err != nil {
			return false, err
		}
		r, s := int(rs>>4), int(rs&15)
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 15 // ZRL
			continue
		}
		k += r
		if k >= blockSize {
			break
		}
		// A magnitude of at most 15 bits fits the int16 that dequantize
		// narrows to, so a plain product is the same.
		z := zigzag[k&(blockSize-1)] & (blockSize - 1)
		coef[z] = extend(int32(br.acc>>(64-s)), s) * q[z]
		br.acc <<= s
		br.n -= s
		hasAC = true
	}
	return hasAC, nil
}

// decodeDC decodes a DC difference and adds it to the component's
// predictor (T.81 F.2.2.1).
func (d *decoder) decodeDC(sc *scanComp) error {
	br := &d.br
	t, err := br.decode(sc.dc)
	if err != nil {
		return err
	}
	if t > 15 {
		return formatError("bad DC coefficient size")
	}
	if t > 0 { // decode left the bits in acc.
		sc.pred += extend(int32(br.acc>>(64-t)), int(t))
		br.acc <<= t
		br.n -= int(t)
	}
	return nil
}

// progressiveBlock applies one progressive scan's data to a stored block
// (T.81 G.1.2).
func (d *decoder) progressiveBlock(sc *scanComp, h scanHeader, coef *block16) error {
	br := &d.br
	if h.ss == 0 { // DC scan, G.1.2.1: interleaved, no end-of-band runs.
		if h.ah != 0 {
			if br.bit() {
				coef[0] |= int16(1 << h.al)
			}
			return nil
		}
		if err := d.decodeDC(sc); err != nil {
			return err
		}
		coef[0] = int16(sc.pred << h.al)
		return nil
	}
	if h.ah != 0 {
		return d.refineAC(sc, h, coef)
	}
	// First AC scan, G.1.2.2.
	if d.bandSkip > 0 {
		d.bandSkip--
		return nil
	}
	for k := h.ss; k <= h.se; k++ {
		rs, err := br.decode(sc.ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), int(rs&15)
		if s == 0 {
			if r == 15 {
				k += 15
				continue
			}
			d.bandSkip = 1<<r + int(br.bits(r)) - 1 // EOBr counts this block.
			return nil
		}
		k += r
		if k > h.se {
			break
		}
		coef[zigzag[k]] = int16(br.receiveExtend(s) << h.al)
	}
	return nil
}

// refineAC decodes an AC successive-approximation refinement scan for one
// block (T.81 G.1.2.3): each new coefficient is +-1<<Al after a run of
// still-zero ones, and every coefficient that is already nonzero and passed
// over receives one correction bit.
func (d *decoder) refineAC(sc *scanComp, h scanHeader, coef *block16) error {
	br := &d.br
	bit := int16(1) << h.al
	k := h.ss
	if d.bandSkip == 0 {
		for ; k <= h.se; k++ {
			rs, err := br.decode(sc.ac)
			if err != nil {
				return err
			}
			r, s := int(rs>>4), int(rs&15)
			var val int16
			switch s {
			case 0:
				if r != 15 {
					d.bandSkip = 1<<r + int(br.bits(r))
				}
			case 1:
				val = -bit
				if br.bit() {
					val = bit
				}
			default:
				return formatError("unexpected Huffman code")
			}
			if d.bandSkip > 0 {
				break
			}
			// Skip r zero coefficients, refining the nonzero ones passed.
			for ; k <= h.se; k++ {
				c := &coef[zigzag[k]]
				if *c != 0 {
					d.correct(c, bit)
				} else {
					if r == 0 {
						break
					}
					r--
				}
			}
			if k > h.se {
				return formatError("too many coefficients")
			}
			if val != 0 {
				coef[zigzag[k]] = val
			}
		}
	}
	if d.bandSkip > 0 {
		// Inside an end-of-band run only the correction bits remain.
		for ; k <= h.se; k++ {
			if c := &coef[zigzag[k]]; *c != 0 {
				d.correct(c, bit)
			}
		}
		d.bandSkip--
	}
	return nil
}

// correct reads one correction bit for the nonzero coefficient c and, if
// set, adds bit to its magnitude (libjpeg skips coefficients whose bit is
// already set, which only happens in malformed files).
func (d *decoder) correct(c *int16, bit int16) {
	if d.br.bit() && *c&bit == 0 {
		if *c >= 0 {
			*c += bit
		} else {
			*c -= bit
		}
	}
}

// wouldBlockSmooth reports whether libjpeg would apply its block smoothing
// (jdcoefct.c smoothing_ok) to this progressive image: every component has
// its DC coefficient and some of the first AC coefficients are still
// missing or incomplete. We refuse those files rather than approximate them.
func (d *decoder) wouldBlockSmooth() bool {
	useful := false
	for i := range d.nComp {
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

// reconstructProgressive runs the IDCT on every stored block once all
// progressive scans have been read.
func (d *decoder) reconstructProgressive() {
	var b block
	for i := range d.nComp {
		bw, bh := d.compBlocks(i)
		perRow, s := d.mxx*d.comp[i].h, d.strides[i]
		q := &d.compQuant[i]
		for by := range bh {
			for bx := range bw {
				c := &d.coeffs[i][by*perRow+bx]
				var ac int16
				for k, v := range c {
					b[k] = int32(v) * q[k]
					if k > 0 {
						ac |= v
					}
				}
				dst := d.planes[i][8*(by*s+bx):]
				if ac != 0 {
					idctISLOW(&b, dst, s)
				} else {
					idctDC(b[0], dst, s)
				}
			}
		}
	}
}
