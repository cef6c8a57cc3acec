// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE-go file.
//
// This file is derived from Go's image/jpeg/reader.go (go1.26.8) and modified
// to reproduce libjpeg-turbo's decoded pixels exactly; see the package comment.

// Package jpeg decodes baseline and progressive JPEG files into the exact
// pixels that libjpeg-turbo produces with its default settings, which is what
// Pillow (and therefore Keras' load_img) returns: the ISLOW integer IDCT,
// "fancy" triangle-filter chroma upsampling and libjpeg's fixed-point
// YCbCr->RGB tables.
//
// Go's own image/jpeg differs from Pillow by up to ~25 per channel on 4:2:0
// photos (another IDCT, nearest-neighbour chroma, another colour rounding).
// Those differences flip top-5 ImageNet predictions often enough that a Go
// port of a Keras notebook cannot reproduce the book's numbers with it, so
// this package is a fork of Go's decoder with those three stages replaced by
// ports of libjpeg-turbo's jidctint.c, jdsample.c and jdcolor.c.
//
// Supported: 8-bit baseline, extended-sequential and progressive Huffman
// JPEGs; 1 component (grayscale), 3 components (YCbCr, or RGB when the file
// says so the way libjpeg detects it) and 4 components (CMYK or YCCK, as
// Photoshop writes them; see Decode for the values returned) with any
// sampling factors libjpeg upsamples by integer ratios (4:4:4, 4:2:2, 4:2:0,
// 4:4:0, 4:1:1, ...). Anything else (arithmetic coding, 12-bit, lossless,
// fractional sampling ratios, incomplete progressive files that libjpeg would
// block-smooth) is rejected with a "jpeg: unsupported ..." error rather than
// decoded approximately.
package jpeg

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
)

// MaxPixels guards against huge header dimensions: Decode refuses images with
// Width*Height above it (default 1<<28) with a clear error before allocating.
// A 20-byte header can claim 65535x65535 pixels; without this limit a corrupt
// or hostile file would make Decode try to allocate tens of gigabytes.
var MaxPixels = 1 << 28

// formatError reports that the input is not a valid JPEG.
type formatError string

func (e formatError) Error() string { return "jpeg: invalid format: " + string(e) }

// unsupportedError reports that the input uses a valid JPEG feature that this
// package does not decode (exactly), so it refuses instead of approximating.
type unsupportedError string

func (e unsupportedError) Error() string { return "jpeg: unsupported " + string(e) }

// Component specification, specified in section B.2.2.
type component struct {
	h  int   // Horizontal sampling factor.
	v  int   // Vertical sampling factor.
	c  uint8 // Component identifier.
	tq uint8 // Quantization table destination selector.
}

const (
	dcTable = 0
	acTable = 1
	maxTc   = 1
	maxTh   = 3
	maxTq   = 3

	maxComponents = 4

	// blockSize is the number of coefficients (and samples) in an 8x8 block.
	blockSize = 8 * 8
)

// block holds one 8x8 block of DCT coefficients during decoding.
type block [blockSize]int32

// block16 is how coefficients are kept between progressive scans. libjpeg
// stores them as 16-bit JCOEF too, which also halves the memory needed.
type block16 [blockSize]int16

const (
	sof0Marker = 0xc0 // Start Of Frame (Baseline Sequential).
	sof1Marker = 0xc1 // Start Of Frame (Extended Sequential).
	sof2Marker = 0xc2 // Start Of Frame (Progressive).
	dhtMarker  = 0xc4 // Define Huffman Table.
	rst0Marker = 0xd0 // ReSTart (0).
	rst7Marker = 0xd7 // ReSTart (7).
	soiMarker  = 0xd8 // Start Of Image.
	eoiMarker  = 0xd9 // End Of Image.
	sosMarker  = 0xda // Start Of Scan.
	dqtMarker  = 0xdb // Define Quantization Table.
	dnlMarker  = 0xdc // Define Number of Lines.
	driMarker  = 0xdd // Define Restart Interval.
	comMarker  = 0xfe // COMment.
	// "APPlication specific" markers aren't part of the JPEG spec per se,
	// but in practice, their use is described at
	// https://www.sno.phy.queensu.ca/~phil/exiftool/TagNames/JPEG.html
	app0Marker  = 0xe0
	app14Marker = 0xee
	app15Marker = 0xef
)

// unzig maps from the zig-zag ordering to the natural ordering. For example,
// unzig[3] is the column and row of the fourth element in zig-zag order. The
// value is 16, which means first column (16%8 == 0) and third row (16/8 == 2).
var unzig = [blockSize]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// bits holds the unprocessed bits that have been taken from the byte-stream.
// The n least significant bits of a form the unread bits, to be read in MSB to
// LSB order.
type bits struct {
	a uint32 // accumulator.
	m uint32 // mask. m==1<<(n-1) when n>0, with m==0 when n==0.
	n int32  // the number of unread bits in a.
}

type decoder struct {
	r    io.Reader
	bits bits
	// bytes is a byte buffer, similar to a bufio.Reader, except that it
	// has to be able to unread more than 1 byte, due to byte stuffing.
	// Byte stuffing is specified in section F.1.2.3.
	bytes struct {
		// buf[i:j] are the buffered bytes read from the underlying
		// io.Reader that haven't yet been passed further on.
		buf  [4096]byte
		i, j int
		// nUnreadable is the number of bytes to back up i after
		// overshooting. It can be 0, 1 or 2.
		nUnreadable int
	}
	width, height int

	// hMax and vMax are the largest sampling factors over all components;
	// mxx and myy are the number of interleaved MCUs per row and column.
	hMax, vMax int
	mxx, myy   int

	// planes[i] holds component i's decoded samples at its own (possibly
	// subsampled) resolution, padded to whole MCUs; strides[i] is its row
	// length. Upsampling and colour conversion happen only after all scans.
	planes  [maxComponents][]byte
	strides [maxComponents]int

	ri    int // Restart Interval.
	nComp int

	// As per section 4.5, there are four modes of operation (selected by the
	// SOF? markers): sequential DCT, progressive DCT, lossless and
	// hierarchical, although this implementation does not support the latter
	// two non-DCT modes. Sequential DCT is further split into baseline and
	// extended, as per section 4.11.
	baseline    bool
	progressive bool

	jfif                bool
	adobeTransformValid bool
	adobeTransform      uint8
	eobRun              uint16 // End-of-Band run, specified in section G.1.2.2.

	comp       [maxComponents]component
	progCoeffs [maxComponents][]block16 // Saved state between progressive-mode scans.
	huff       [maxTc + 1][maxTh + 1]huffman
	quant      [maxTq + 1]block // Quantization tables, in zig-zag order.
	tmp        [2 * blockSize]byte

	// quantDefined[t] records whether a DQT marker defined table t.
	quantDefined [maxTq + 1]bool

	// compQuant[i] is the quantization table component i uses, in natural
	// order, copied when the component first appears in a scan. libjpeg latches tables at that
	// point too, so a DQT that redefines a table between scans only affects
	// components that have not been scanned yet.
	compQuant [maxComponents]block
	scanned   [maxComponents]bool
	// coefBits[i][k] is, for progressive files, the successive-approximation
	// bit position (Al) of the last scan that covered zig-zag coefficient k of
	// component i, or -1 if none did (libjpeg's coef_bits). It tells whether
	// libjpeg would apply its block smoothing to an incomplete file.
	coefBits [maxComponents][blockSize]int8
}

// fill fills up the d.bytes.buf buffer from the underlying io.Reader. It
// should only be called when there are no unread bytes in d.bytes.
func (d *decoder) fill() error {
	if d.bytes.i != d.bytes.j {
		return errors.New("jpeg: internal error: fill called when unread bytes exist")
	}
	// Move the last 2 bytes to the start of the buffer, in case we need
	// to call unreadByteStuffedByte.
	if d.bytes.j > 2 {
		d.bytes.buf[0] = d.bytes.buf[d.bytes.j-2]
		d.bytes.buf[1] = d.bytes.buf[d.bytes.j-1]
		d.bytes.i, d.bytes.j = 2, 2
	}
	// Fill in the rest of the buffer. Like bufio, tolerate a few empty reads
	// but not a reader that never makes progress.
	for range 100 {
		n, err := d.r.Read(d.bytes.buf[d.bytes.j:])
		d.bytes.j += n
		if n > 0 {
			return nil
		}
		if err == io.EOF {
			return errTruncated
		}
		if err != nil {
			return fmt.Errorf("jpeg: read: %w", err)
		}
	}
	return fmt.Errorf("jpeg: read: %w", io.ErrNoProgress)
}

// errTruncated is returned when the data ends before the End Of Image marker.
// libjpeg only warns here and pads with gray, and Pillow turns that into an
// error unless ImageFile.LOAD_TRUNCATED_IMAGES is set, so an error matches
// what Keras users see.
var errTruncated = fmt.Errorf("jpeg: truncated data: %w", io.ErrUnexpectedEOF)

// unreadByteStuffedByte undoes the most recent readByteStuffedByte call,
// giving a byte of data back from d.bits to d.bytes. The Huffman look-up table
// requires at least 8 bits for look-up, which means that Huffman decoding can
// sometimes overshoot and read one or two too many bytes. Two-byte overshoot
// can happen when expecting to read a 0xff 0x00 byte-stuffed byte.
func (d *decoder) unreadByteStuffedByte() {
	d.bytes.i -= d.bytes.nUnreadable
	d.bytes.nUnreadable = 0
	if d.bits.n >= 8 {
		d.bits.a >>= 8
		d.bits.n -= 8
		d.bits.m >>= 8
	}
}

// readByte returns the next byte, whether buffered or not buffered. It does
// not care about byte stuffing.
func (d *decoder) readByte() (x byte, err error) {
	for d.bytes.i == d.bytes.j {
		if err = d.fill(); err != nil {
			return 0, err
		}
	}
	x = d.bytes.buf[d.bytes.i]
	d.bytes.i++
	d.bytes.nUnreadable = 0
	return x, nil
}

// errMissingFF00 means that readByteStuffedByte encountered an 0xff byte (a
// marker byte) that wasn't the expected byte-stuffed sequence 0xff, 0x00.
var errMissingFF00 = formatError("missing 0xff00 sequence (entropy-coded data ends early)")

// readByteStuffedByte is like readByte but is for byte-stuffed Huffman data.
func (d *decoder) readByteStuffedByte() (x byte, err error) {
	// Take the fast path if d.bytes.buf contains at least two bytes.
	if d.bytes.i+2 <= d.bytes.j {
		x = d.bytes.buf[d.bytes.i]
		d.bytes.i++
		d.bytes.nUnreadable = 1
		if x != 0xff {
			return x, err
		}
		if d.bytes.buf[d.bytes.i] != 0x00 {
			return 0, errMissingFF00
		}
		d.bytes.i++
		d.bytes.nUnreadable = 2
		return 0xff, nil
	}

	d.bytes.nUnreadable = 0

	x, err = d.readByte()
	if err != nil {
		return 0, err
	}
	d.bytes.nUnreadable = 1
	if x != 0xff {
		return x, nil
	}

	x, err = d.readByte()
	if err != nil {
		return 0, err
	}
	d.bytes.nUnreadable = 2
	if x != 0x00 {
		return 0, errMissingFF00
	}
	return 0xff, nil
}

// readFull reads exactly len(p) bytes into p. It does not care about byte
// stuffing.
func (d *decoder) readFull(p []byte) error {
	// Unread the overshot bytes, if any.
	if d.bytes.nUnreadable != 0 {
		if d.bits.n >= 8 {
			d.unreadByteStuffedByte()
		}
		d.bytes.nUnreadable = 0
	}

	for {
		n := copy(p, d.bytes.buf[d.bytes.i:d.bytes.j])
		p = p[n:]
		d.bytes.i += n
		if len(p) == 0 {
			break
		}
		if err := d.fill(); err != nil {
			return err
		}
	}
	return nil
}

// ignore ignores the next n bytes.
func (d *decoder) ignore(n int) error {
	// Unread the overshot bytes, if any.
	if d.bytes.nUnreadable != 0 {
		if d.bits.n >= 8 {
			d.unreadByteStuffedByte()
		}
		d.bytes.nUnreadable = 0
	}

	for {
		m := d.bytes.j - d.bytes.i
		if m > n {
			m = n
		}
		d.bytes.i += m
		n -= m
		if n == 0 {
			break
		}
		if err := d.fill(); err != nil {
			return err
		}
	}
	return nil
}

// Specified in section B.2.2.
func (d *decoder) processSOF(n int) error {
	if d.nComp != 0 {
		return formatError("multiple SOF markers")
	}
	switch n {
	case 6 + 3*1: // Grayscale image.
		d.nComp = 1
	case 6 + 3*3: // YCbCr or RGB image.
		d.nComp = 3
	case 6 + 3*4: // CMYK or YCCK image.
		d.nComp = 4
	default:
		if n < 6 {
			return formatError("SOF has wrong length")
		}
		return unsupportedError(fmt.Sprintf("number of components (SOF length %d)", n))
	}
	if err := d.readFull(d.tmp[:n]); err != nil {
		return err
	}
	// We only support 8-bit precision.
	if d.tmp[0] != 8 {
		return unsupportedError(fmt.Sprintf("sample precision %d bits (only 8 is supported)", d.tmp[0]))
	}
	d.height = int(d.tmp[1])<<8 + int(d.tmp[2])
	d.width = int(d.tmp[3])<<8 + int(d.tmp[4])
	if int(d.tmp[5]) != d.nComp {
		return formatError("SOF has wrong length")
	}
	if d.height == 0 {
		// Height 0 means "given later by a DNL marker", which libjpeg rejects too.
		return unsupportedError("image height 0 (DNL marker)")
	}
	if d.width == 0 {
		return formatError("image width 0")
	}
	if int64(d.width)*int64(d.height) > int64(MaxPixels) {
		return fmt.Errorf("jpeg: image is %dx%d = %d pixels, above jpeg.MaxPixels (%d)",
			d.width, d.height, int64(d.width)*int64(d.height), MaxPixels)
	}

	d.hMax, d.vMax = 1, 1
	for i := 0; i < d.nComp; i++ {
		d.comp[i].c = d.tmp[6+3*i]
		// Section B.2.2 states that "the value of C_i shall be different from
		// the values of C_1 through C_(i-1)".
		for j := 0; j < i; j++ {
			if d.comp[i].c == d.comp[j].c {
				return formatError("repeated component identifier")
			}
		}

		d.comp[i].tq = d.tmp[8+3*i]
		if d.comp[i].tq > maxTq {
			return formatError("bad Tq value")
		}

		hv := d.tmp[7+3*i]
		h, v := int(hv>>4), int(hv&0x0f)
		if h < 1 || 4 < h || v < 1 || 4 < v {
			return formatError("bad sampling factors")
		}
		if d.nComp == 1 {
			// If a JPEG image has only one component, section A.2 says "this data
			// is non-interleaved by definition" and section A.2.2 says "[in this
			// case...] the order of data units within a scan shall be left-to-right
			// and top-to-bottom... regardless of the values of H_1 and V_1". Section
			// 4.8.2 also says "[for non-interleaved data], the MCU is defined to be
			// one data unit". Similarly, section A.1.1 explains that it is the ratio
			// of H_i to max_j(H_j) that matters, and similarly for V. For grayscale
			// images, H_1 is the maximum H_j for all components j, so that ratio is
			// always 1. The component's (h, v) is effectively always (1, 1): even if
			// the nominal (h, v) is (2, 1), a 20x5 image is encoded in three 8x8
			// MCUs, not two 16x8 MCUs.
			h, v = 1, 1
		}
		d.comp[i].h = h
		d.comp[i].v = v
		d.hMax = max(d.hMax, h)
		d.vMax = max(d.vMax, v)
	}

	// libjpeg upsamples every component by the integer ratios hMax/h and
	// vMax/v (jdsample.c); it rejects fractional ratios, and so do we.
	totalHV := 0
	for i := 0; i < d.nComp; i++ {
		c := &d.comp[i]
		totalHV += c.h * c.v
		if d.hMax%c.h != 0 || d.vMax%c.v != 0 {
			return unsupportedError("fractional sampling ratio " + d.samplingString())
		}
	}
	// Section B.2.3 states that if there is more than one component then the
	// total H*V values in an interleaved scan must be <= 10 (libjpeg's
	// D_MAX_BLOCKS_IN_MCU).
	if d.nComp > 1 && totalHV > 10 {
		return formatError("total sampling factors too large " + d.samplingString())
	}
	d.mxx = (d.width + 8*d.hMax - 1) / (8 * d.hMax)
	d.myy = (d.height + 8*d.vMax - 1) / (8 * d.vMax)
	return nil
}

// samplingString formats the components' sampling factors for error messages,
// e.g. "2x2,1x1,1x1" for 4:2:0.
func (d *decoder) samplingString() string {
	s := ""
	for i := 0; i < d.nComp; i++ {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%dx%d", d.comp[i].h, d.comp[i].v)
	}
	return s
}

// Specified in section B.2.4.1.
func (d *decoder) processDQT(n int) error {
loop:
	for n > 0 {
		n--
		x, err := d.readByte()
		if err != nil {
			return err
		}
		tq := x & 0x0f
		if tq > maxTq {
			return formatError("bad Tq value")
		}
		switch x >> 4 {
		default:
			return formatError("bad Pq value")
		case 0:
			if n < blockSize {
				break loop
			}
			n -= blockSize
			if err := d.readFull(d.tmp[:blockSize]); err != nil {
				return err
			}
			for i := range d.quant[tq] {
				d.quant[tq][i] = int32(d.tmp[i])
			}
			d.quantDefined[tq] = true
		case 1:
			if n < 2*blockSize {
				break loop
			}
			n -= 2 * blockSize
			if err := d.readFull(d.tmp[:2*blockSize]); err != nil {
				return err
			}
			for i := range d.quant[tq] {
				d.quant[tq][i] = int32(d.tmp[2*i])<<8 | int32(d.tmp[2*i+1])
			}
			d.quantDefined[tq] = true
		}
	}
	if n != 0 {
		return formatError("DQT has wrong length")
	}
	return nil
}

// Specified in section B.2.4.4.
func (d *decoder) processDRI(n int) error {
	if n != 2 {
		return formatError("DRI has wrong length")
	}
	if err := d.readFull(d.tmp[:2]); err != nil {
		return err
	}
	d.ri = int(d.tmp[0])<<8 + int(d.tmp[1])
	return nil
}

func (d *decoder) processApp0Marker(n int) error {
	if n < 5 {
		return d.ignore(n)
	}
	if err := d.readFull(d.tmp[:5]); err != nil {
		return err
	}
	n -= 5

	if d.tmp[0] == 'J' && d.tmp[1] == 'F' && d.tmp[2] == 'I' && d.tmp[3] == 'F' && d.tmp[4] == '\x00' {
		d.jfif = true
	}

	if n > 0 {
		return d.ignore(n)
	}
	return nil
}

func (d *decoder) processApp14Marker(n int) error {
	if n < 12 {
		return d.ignore(n)
	}
	if err := d.readFull(d.tmp[:12]); err != nil {
		return err
	}
	n -= 12

	if d.tmp[0] == 'A' && d.tmp[1] == 'd' && d.tmp[2] == 'o' && d.tmp[3] == 'b' && d.tmp[4] == 'e' {
		d.adobeTransformValid = true
		d.adobeTransform = d.tmp[11]
	}

	if n > 0 {
		return d.ignore(n)
	}
	return nil
}

// decode reads a JPEG image from r. With configOnly it stops after the frame
// header and returns a nil image.
func (d *decoder) decode(r io.Reader, configOnly bool) (image.Image, error) {
	d.r = r

	// Check for the Start Of Image marker.
	if err := d.readFull(d.tmp[:2]); err != nil {
		return nil, err
	}
	if d.tmp[0] != 0xff || d.tmp[1] != soiMarker {
		return nil, formatError("missing SOI marker (not a JPEG file)")
	}

	// Process the remaining segments until the End Of Image marker.
	for {
		err := d.readFull(d.tmp[:2])
		if err != nil {
			return nil, err
		}
		for d.tmp[0] != 0xff {
			// Strictly speaking, this is a format error. However, libjpeg is
			// liberal in what it accepts. As of version 9, next_marker in
			// jdmarker.c treats this as a warning (JWRN_EXTRANEOUS_DATA) and
			// continues to decode the stream. Even before next_marker sees
			// extraneous data, jpeg_fill_bit_buffer in jdhuff.c reads as many
			// bytes as it can, possibly past the end of a scan's data. It
			// effectively puts back any markers that it overscanned (e.g. an
			// "\xff\xd9" EOI marker), but it does not put back non-marker data,
			// and thus it can silently ignore a small number of extraneous
			// non-marker bytes before next_marker has a chance to see them (and
			// print a warning).
			//
			// We are therefore also liberal in what we accept. Extraneous data
			// is silently ignored.
			//
			// This is similar to, but not exactly the same as, the restart
			// mechanism within a scan (the RST[0-7] markers).
			//
			// Note that extraneous 0xff bytes in e.g. SOS data are escaped as
			// "\xff\x00", and so are detected a little further down below.
			d.tmp[0] = d.tmp[1]
			d.tmp[1], err = d.readByte()
			if err != nil {
				return nil, err
			}
		}
		marker := d.tmp[1]
		if marker == 0 {
			// Treat "\xff\x00" as extraneous data.
			continue
		}
		for marker == 0xff {
			// Section B.1.1.2 says, "Any marker may optionally be preceded by any
			// number of fill bytes, which are bytes assigned code X'FF'".
			marker, err = d.readByte()
			if err != nil {
				return nil, err
			}
		}
		if marker == eoiMarker { // End Of Image.
			break
		}
		if rst0Marker <= marker && marker <= rst7Marker {
			// Figures B.2 and B.16 of the specification suggest that restart markers should
			// only occur between Entropy Coded Segments and not after the final ECS.
			// However, some encoders may generate incorrect JPEGs with a final restart
			// marker. That restart marker will be seen here instead of inside the processSOS
			// method, and is ignored as a harmless error. Restart markers have no extra data,
			// so we check for this before we read the 16-bit length of the segment.
			continue
		}

		// Read the 16-bit length of the segment. The value includes the 2 bytes for the
		// length itself, so we subtract 2 to get the number of remaining bytes.
		if err = d.readFull(d.tmp[:2]); err != nil {
			return nil, err
		}
		n := int(d.tmp[0])<<8 + int(d.tmp[1]) - 2
		if n < 0 {
			return nil, formatError("short segment length")
		}

		switch marker {
		case sof0Marker, sof1Marker, sof2Marker:
			d.baseline = marker == sof0Marker
			d.progressive = marker == sof2Marker
			err = d.processSOF(n)
			if configOnly {
				return nil, err
			}
		case dhtMarker:
			if configOnly {
				err = d.ignore(n)
			} else {
				err = d.processDHT(n)
			}
		case dqtMarker:
			if configOnly {
				err = d.ignore(n)
			} else {
				err = d.processDQT(n)
			}
		case sosMarker:
			if configOnly {
				return nil, formatError("SOS marker before SOF marker")
			}
			err = d.processSOS(n)
		case driMarker:
			if configOnly {
				err = d.ignore(n)
			} else {
				err = d.processDRI(n)
			}
		case app0Marker:
			err = d.processApp0Marker(n)
		case app14Marker:
			err = d.processApp14Marker(n)
		case dnlMarker:
			err = unsupportedError("DNL marker")
		default:
			if app0Marker <= marker && marker <= app15Marker || marker == comMarker {
				err = d.ignore(n)
			} else if marker < 0xc0 { // See Table B.1 "Marker code assignments".
				err = formatError(fmt.Sprintf("unknown marker 0x%02x", marker))
			} else {
				err = unsupportedError(fmt.Sprintf("JPEG process or marker 0x%02x (only Huffman-coded baseline, extended and progressive DCT are supported)", marker))
			}
		}
		if err != nil {
			return nil, err
		}
	}

	if configOnly {
		return nil, formatError("missing SOF marker")
	}
	if d.nComp == 0 {
		return nil, formatError("missing SOF marker")
	}
	if d.planes[0] == nil {
		return nil, formatError("missing SOS marker")
	}
	if d.progressive {
		if d.wouldBlockSmooth() {
			return nil, unsupportedError("incomplete progressive JPEG: libjpeg would apply block smoothing to missing coefficients")
		}
		d.reconstructProgressiveImage()
	} else {
		for i := 0; i < d.nComp; i++ {
			if !d.scanned[i] {
				return nil, formatError(fmt.Sprintf("no scan data for component %d", i))
			}
		}
	}
	switch d.nComp {
	case 1:
		return d.gray(), nil
	case 4:
		return d.cmyk(), nil
	}
	return d.rgb(), nil
}

// isRGB reports whether a 3-component image stores RGB rather than YCbCr,
// with the same precedence as libjpeg's default_decompress_parms (jdapimin.c):
// a JFIF marker means YCbCr; otherwise an Adobe marker decides (transform 0 is
// RGB, anything else YCbCr); otherwise component IDs 'R','G','B' mean RGB.
func (d *decoder) isRGB() bool {
	if d.jfif {
		return false
	}
	if d.adobeTransformValid {
		return d.adobeTransform == 0
	}
	return d.comp[0].c == 'R' && d.comp[1].c == 'G' && d.comp[2].c == 'B'
}

// Decode decodes a JPEG into *image.Gray (1 component), *image.RGBA (3
// components) or *image.CMYK (4 components), with pixel values identical to
// what Pillow (on libjpeg-turbo, default settings) holds after Image.open.
//
// The RGBA image is opaque (A = 255). Callers wanting Pillow's
// Image.convert('RGB') of a grayscale file replicate the gray value into R, G
// and B, exactly as Pillow does.
//
// A 4-component file decodes to Pillow's mode "CMYK" values: libjpeg's CMYK
// output (YCCK files converted to CMYK by libjpeg's table arithmetic), then
// every channel inverted, because Pillow always reads 4-component JPEGs with
// the Adobe (Photoshop) convention that stores 255 for no ink. Callers wanting
// Pillow's convert('RGB') must use CMYKToRGB on each pixel: Go's
// color.CMYKToRGB (and so img.At(x, y).RGBA()) rounds differently and is off
// by one for some values.
//
// Truncated data, unsupported features and corrupt input return an error
// whose message starts with "jpeg: "; Decode never returns a partially decoded
// image.
func Decode(r io.Reader) (img image.Image, err error) {
	defer func() {
		// The decoder is meant to reject every malformed input with an error;
		// this only turns an overlooked case into an error instead of
		// crashing the caller's program.
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("jpeg: internal error decoding malformed data: %v", p)
		}
	}()
	return decodeNoRecover(r)
}

// decodeNoRecover is Decode without the panic guard, so that fuzzing reports
// panics instead of having them converted into errors.
func decodeNoRecover(r io.Reader) (image.Image, error) {
	var d decoder
	return d.decode(r, false)
}

// DecodeConfig returns the color model and dimensions of a JPEG image without
// decoding the entire image. The color model is the one Decode would return
// (color.GrayModel, color.RGBAModel or color.CMYKModel); files that Decode
// rejects because of their frame header (component count, precision,
// sampling, size) are rejected here too.
func DecodeConfig(r io.Reader) (cfg image.Config, err error) {
	defer func() {
		if p := recover(); p != nil {
			cfg, err = image.Config{}, fmt.Errorf("jpeg: internal error decoding malformed data: %v", p)
		}
	}()
	var d decoder
	if _, err := d.decode(r, true); err != nil {
		return image.Config{}, err
	}
	cm := color.Model(color.RGBAModel)
	switch d.nComp {
	case 1:
		cm = color.GrayModel
	case 4:
		cm = color.CMYKModel
	}
	return image.Config{ColorModel: cm, Width: d.width, Height: d.height}, nil
}
