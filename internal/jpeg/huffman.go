package jpeg

// lookBits is the width of the Huffman look-ahead index. Most codes in
// photographic JPEGs are at most 9 bits long, so one table probe decodes
// them; longer codes fall back to the canonical-code comparison of T.81
// F.2.2.3 (libjpeg's jpeg_huff_decode slow path).
const lookBits = 9

// huffTable is one decoding table built from a DHT segment (T.81 Annex C).
type huffTable struct {
	defined bool
	// look[i] is (length<<8 | value) of the code that is a prefix of the
	// lookBits-bit string i, or 0 if that code is longer than lookBits.
	look [1 << lookBits]uint16
	// maxCode[l] is the largest code of length l (-1 if none); valOff[l]
	// turns such a code into an index into vals.
	maxCode [17]int32
	valOff  [17]int32
	vals    [256]byte
}

// build fills t from the 16 code-length counts and the symbol values of a
// DHT table, generating the canonical codes of T.81 C.2 (Figures C.1-C.3).
func (t *huffTable) build(counts *[16]byte, vals []byte) error {
	*t = huffTable{defined: true}
	copy(t.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		// libjpeg (jdhuff.c) refuses a table whose codes of length l do not
		// all fit in l bits, including one that would use the all-ones code.
		if code+n >= 1<<l {
			return formatError("bad Huffman table")
		}
		t.maxCode[l] = -1
		if n > 0 {
			t.valOff[l] = k - code
			t.maxCode[l] = code + n - 1
			if l <= lookBits {
				for c := code; c < code+n; c++ {
					entry := uint16(l)<<8 | uint16(vals[k+c-code])
					shift := lookBits - l
					for i := c << shift; i < (c+1)<<shift; i++ {
						t.look[i] = entry
					}
				}
			}
			code += n
			k += n
		}
		code <<= 1
	}
	return nil
}

// decode reads one Huffman-coded symbol with table t. It is small enough to
// be inlined, and it leaves at least 16 more bits in acc (a code is at most
// 16 bits), so a magnitude of up to 15 bits can follow without a refill.
func (br *bitReader) decode(t *huffTable) (byte, error) {
	if br.n < 32 {
		br.fill()
	}
	if e := t.look[br.acc>>(64-lookBits)]; e != 0 {
		l := int(e >> 8)
		br.acc <<= l
		br.n -= l
		return byte(e), nil
	}
	return br.decodeSlow(t)
}

// decodeSlow decodes a symbol whose code is longer than lookBits (or
// invalid), with at least 16 bits in acc.
func (br *bitReader) decodeSlow(t *huffTable) (byte, error) {
	for l := lookBits + 1; l <= 16; l++ {
		code := int32(br.acc >> (64 - l))
		if code <= t.maxCode[l] {
			br.acc <<= l
			br.n -= l
			return t.vals[code+t.valOff[l]], nil
		}
	}
	if err := br.overrun(); err != nil {
		return 0, err
	}
	if br.n < br.pad+16 && br.stop != nil {
		// The invalid code runs into the padding: the data ended early.
		return 0, br.stop
	}
	return 0, formatError("bad Huffman code")
}

// parseDHT parses a Define Huffman Table segment of n bytes (T.81 B.2.4.2).
func (d *decoder) parseDHT(n int) error {
	for n > 0 {
		if n < 17 {
			return formatError("DHT has wrong length")
		}
		hdr, err := d.src.take(17)
		if err != nil {
			return err
		}
		class, id := hdr[0]>>4, hdr[0]&0x0f
		if class > 1 {
			return formatError("bad Tc value")
		}
		if id > 3 || (d.baseline && id > 1) {
			return formatError("bad Th value")
		}
		var counts [16]byte
		copy(counts[:], hdr[1:])
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		if total == 0 {
			return formatError("Huffman table has zero length")
		}
		if total > 256 {
			return formatError("Huffman table has excessive length")
		}
		n -= 17 + total
		if n < 0 {
			return formatError("DHT has wrong length")
		}
		vals, err := d.src.take(total)
		if err != nil {
			return err
		}
		if err := d.huff[class][id].build(&counts, vals); err != nil {
			return err
		}
	}
	return nil
}
