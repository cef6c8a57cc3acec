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
// this package has its own decoder: marker parsing and Huffman decoding
// written from ITU-T T.81, then ports of libjpeg-turbo's jidctint.c,
// jdsample.c and jdcolor.c for those three stages.
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
	"fmt"
	"image"
	"image/color"
	"io"
	"sync"
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

// blockSize is the number of coefficients (and samples) in an 8x8 block.
const blockSize = 64

// block holds one 8x8 block of DCT coefficients or quantizers.
type block [blockSize]int32

// block16 is how coefficients are kept between progressive scans. libjpeg
// stores them as 16-bit JCOEF too, which also halves the memory needed.
type block16 [blockSize]int16

// zigzag[k] is the natural (row-major) index of the k-th coefficient in the
// zig-zag order of T.81 Figure A.6.
var zigzag = func() (z [blockSize]int) {
	k := 0
	for s := 0; s < 15; s++ { // s = row + column: one anti-diagonal.
		for i := range 8 {
			row := i
			if s%2 == 0 {
				row = s - i // Even diagonals run upwards.
			}
			if col := s - row; row >= 0 && row < 8 && col >= 0 && col < 8 {
				z[k] = 8*row + col
				k++
			}
		}
	}
	return z
}()

// Marker codes from T.81 Table B.1 used by the parser.
const (
	mSOF0 = 0xc0 // Baseline DCT.
	mSOF1 = 0xc1 // Extended sequential DCT, Huffman.
	mSOF2 = 0xc2 // Progressive DCT, Huffman.
	mDHT  = 0xc4
	mRST0 = 0xd0
	mRST7 = 0xd7
	mSOI  = 0xd8
	mEOI  = 0xd9
	mSOS  = 0xda
	mDQT  = 0xdb
	mDNL  = 0xdc
	mDRI  = 0xdd
	mAPP0 = 0xe0 // JFIF.
	mAP14 = 0xee // Adobe.
	mAP15 = 0xef
	mCOM  = 0xfe
)

// component is one frame component (T.81 B.2.2).
type component struct {
	c    uint8 // identifier
	h, v int   // sampling factors
	tq   uint8 // quantization table selector
}

// decoder holds the state of one Decode or DecodeConfig call.
type decoder struct {
	src source
	br  bitReader

	width, height int
	nComp         int
	comp          [4]component
	baseline      bool // SOF0: table selectors limited to 0 and 1
	progressive   bool // SOF2

	// hMax and vMax are the largest sampling factors over all components;
	// mxx and myy are the number of interleaved MCUs per row and column.
	hMax, vMax int
	mxx, myy   int

	// planes[i] holds component i's decoded samples at its own (possibly
	// subsampled) resolution, padded to whole MCUs; strides[i] is its row
	// length. Upsampling and colour conversion happen only after all scans.
	planes  [4][]byte
	strides [4]int
	// planeBuf and coefBuf are the recycled buffers that planes and coeffs
	// are cut from (see allocate and release).
	planeBuf []byte
	coefBuf  []block16

	restartInterval int // MCUs per restart interval, 0 for none (DRI)

	jfifSeen   bool
	adobeSeen  bool
	adobeXform uint8

	huff [2][4]huffTable // [DC, AC][table id]

	// quant holds DQT tables in zig-zag order; quantDefined[t] records
	// whether table t has been defined.
	quant        [4]block
	quantDefined [4]bool
	// compQuant[i] is the quantization table component i uses, in natural
	// order and narrowed to 16 bits as dequantize does, copied when the
	// component first appears in a scan. libjpeg latches tables at that point
	// too, so a DQT that redefines a table between scans only affects
	// components that have not been scanned yet.
	compQuant [4]block
	scanned   [4]bool

	// coeffs[i] keeps component i's coefficients between progressive scans.
	coeffs   [4][]block16
	bandSkip int // remaining blocks of an end-of-band run (T.81 G.1.2.2)
	// coefBits[i][k] is, for progressive files, the successive-approximation
	// bit position (Al) of the last scan that covered zig-zag coefficient k of
	// component i, or -1 if none did (libjpeg's coef_bits). It tells whether
	// libjpeg would apply its block smoothing to an incomplete file.
	coefBits [4][blockSize]int8
}

// nextMarker returns the next marker code. Like libjpeg's next_marker it
// skips, without complaint, data bytes and stuffed 0xFF00 pairs found
// between segments, and fill bytes (0xFF) before a marker (T.81 B.1.1.2).
func (d *decoder) nextMarker() (byte, error) {
	for {
		c, err := d.src.readByte()
		if err != nil {
			return 0, err
		}
		if c != 0xff {
			continue
		}
		for c == 0xff {
			if c, err = d.src.readByte(); err != nil {
				return 0, err
			}
		}
		if c != 0 {
			return c, nil
		}
	}
}

// run parses the marker segments from r up to EOI (T.81 B.2) and, unless
// configOnly, decodes every scan. With configOnly it stops after the frame
// header and returns a nil image.
func (d *decoder) run(r io.Reader, configOnly bool) (image.Image, error) {
	d.src.r = r
	d.br.src = &d.src
	soi, err := d.src.take(2)
	if err != nil {
		return nil, err
	}
	if soi[0] != 0xff || soi[1] != mSOI {
		return nil, formatError("missing SOI marker (not a JPEG file)")
	}
	for {
		m, err := d.nextMarker()
		if err != nil {
			return nil, err
		}
		if m == mEOI {
			break
		}
		if mRST0 <= m && m <= mRST7 {
			// A stray restart marker (some encoders write one after the
			// last interval) has no segment; ignore it as libjpeg does.
			continue
		}
		lp, err := d.src.take(2)
		if err != nil {
			return nil, err
		}
		n := int(lp[0])<<8 | int(lp[1]) - 2 // The length counts itself.
		if n < 0 {
			return nil, formatError("short segment length")
		}
		if err := d.segment(m, n, configOnly); err != nil {
			return nil, err
		}
		if configOnly && d.nComp != 0 {
			return nil, nil
		}
	}
	return d.finish(configOnly)
}

// segment handles one marker segment with n bytes of payload.
func (d *decoder) segment(m byte, n int, configOnly bool) error {
	switch {
	case m == mSOF0 || m == mSOF1 || m == mSOF2:
		d.baseline = m == mSOF0
		d.progressive = m == mSOF2
		return d.parseFrame(n)
	case m == mSOS:
		if configOnly {
			return formatError("SOS marker before SOF marker")
		}
		return d.parseScan(n)
	case m == mDHT && !configOnly:
		return d.parseDHT(n)
	case m == mDQT && !configOnly:
		return d.parseDQT(n)
	case m == mDRI && !configOnly:
		return d.parseDRI(n)
	case m == mDHT || m == mDQT || m == mDRI || m == mCOM:
		return d.src.skip(n)
	case m == mAPP0 || m == mAP14:
		return d.parseApp(m, n)
	case mAPP0 < m && m <= mAP15:
		return d.src.skip(n)
	case m == mDNL:
		return unsupportedError("DNL marker")
	case m < 0xc0: // T.81 Table B.1 assigns nothing below 0xC0 but reserved codes.
		return formatError(fmt.Sprintf("unknown marker 0x%02x", m))
	}
	return unsupportedError(fmt.Sprintf("JPEG process or marker 0x%02x (only Huffman-coded baseline, extended and progressive DCT are supported)", m))
}

// parseFrame parses a frame header (T.81 B.2.2) and checks it against what
// this package decodes.
func (d *decoder) parseFrame(n int) error {
	if d.nComp != 0 {
		return formatError("multiple SOF markers")
	}
	nc := (n - 6) / 3
	if n < 6 {
		return formatError("SOF has wrong length")
	}
	if n != 6+3*nc || (nc != 1 && nc != 3 && nc != 4) {
		return unsupportedError(fmt.Sprintf("number of components (SOF length %d)", n))
	}
	p, err := d.src.take(n)
	if err != nil {
		return err
	}
	if p[0] != 8 {
		return unsupportedError(fmt.Sprintf("sample precision %d bits (only 8 is supported)", p[0]))
	}
	d.height = int(p[1])<<8 | int(p[2])
	d.width = int(p[3])<<8 | int(p[4])
	if int(p[5]) != nc {
		return formatError("SOF has wrong length")
	}
	d.nComp = nc
	switch {
	case d.height == 0:
		// Height 0 means "given later by a DNL marker", which libjpeg rejects too.
		return unsupportedError("image height 0 (DNL marker)")
	case d.width == 0:
		return formatError("image width 0")
	case int64(d.width)*int64(d.height) > int64(MaxPixels):
		return fmt.Errorf("jpeg: image is %dx%d = %d pixels, above jpeg.MaxPixels (%d)",
			d.width, d.height, int64(d.width)*int64(d.height), MaxPixels)
	}
	d.hMax, d.vMax = 1, 1
	for i := range nc {
		c := &d.comp[i]
		f := p[6+3*i:]
		c.c, c.h, c.v, c.tq = f[0], int(f[1]>>4), int(f[1]&15), f[2]
		for j := range i {
			if d.comp[j].c == c.c {
				return formatError("repeated component identifier")
			}
		}
		if c.tq > 3 {
			return formatError("bad Tq value")
		}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return formatError("bad sampling factors")
		}
		if nc == 1 {
			// A single-component scan is non-interleaved (T.81 A.2): its
			// MCU is one block whatever H and V say.
			c.h, c.v = 1, 1
		}
		d.hMax, d.vMax = max(d.hMax, c.h), max(d.vMax, c.v)
	}
	// libjpeg upsamples every component by the integer ratios hMax/h and
	// vMax/v (jdsample.c); it rejects fractional ratios, and so do we.
	blocks := 0
	for i := range nc {
		c := &d.comp[i]
		blocks += c.h * c.v
		if d.hMax%c.h != 0 || d.vMax%c.v != 0 {
			return unsupportedError("fractional sampling ratio " + d.samplingString())
		}
	}
	// An interleaved MCU holds at most 10 blocks (T.81 B.2.3; libjpeg's
	// D_MAX_BLOCKS_IN_MCU).
	if nc > 1 && blocks > 10 {
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
	for i := range d.nComp {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%dx%d", d.comp[i].h, d.comp[i].v)
	}
	return s
}

// parseDQT parses quantization tables (T.81 B.2.4.1), 8- or 16-bit.
func (d *decoder) parseDQT(n int) error {
	for n > 0 {
		pq, err := d.src.readByte()
		if err != nil {
			return err
		}
		n--
		id, wide := pq&15, pq>>4
		if id > 3 {
			return formatError("bad Tq value")
		}
		if wide > 1 {
			return formatError("bad Pq value")
		}
		size := blockSize << wide
		if n < size {
			return formatError("DQT has wrong length")
		}
		n -= size
		p, err := d.src.take(size)
		if err != nil {
			return err
		}
		for k := range blockSize {
			if wide == 1 {
				d.quant[id][k] = int32(p[2*k])<<8 | int32(p[2*k+1])
			} else {
				d.quant[id][k] = int32(p[k])
			}
		}
		d.quantDefined[id] = true
	}
	return nil
}

// parseDRI parses a restart interval (T.81 B.2.4.4).
func (d *decoder) parseDRI(n int) error {
	if n != 2 {
		return formatError("DRI has wrong length")
	}
	p, err := d.src.take(2)
	if err != nil {
		return err
	}
	d.restartInterval = int(p[0])<<8 | int(p[1])
	return nil
}

// parseApp looks for the JFIF APP0 and Adobe APP14 signatures, which
// decide the colour transform (see isRGB and isYCCK); the rest is skipped.
func (d *decoder) parseApp(m byte, n int) error {
	want := 5 // "JFIF\0"
	if m == mAP14 {
		want = 12 // "Adobe", version, flags0, flags1, transform
	}
	if n < want {
		return d.src.skip(n)
	}
	p, err := d.src.take(want)
	if err != nil {
		return err
	}
	switch {
	case m == mAPP0 && string(p) == "JFIF\x00":
		d.jfifSeen = true
	case m == mAP14 && string(p[:5]) == "Adobe":
		d.adobeSeen = true
		d.adobeXform = p[11]
	}
	return d.src.skip(n - want)
}

// finish checks that the image is complete and converts it to pixels.
func (d *decoder) finish(configOnly bool) (image.Image, error) {
	if configOnly || d.nComp == 0 {
		return nil, formatError("missing SOF marker")
	}
	if d.planes[0] == nil {
		return nil, formatError("missing SOS marker")
	}
	if d.progressive {
		if d.wouldBlockSmooth() {
			return nil, unsupportedError("incomplete progressive JPEG: libjpeg would apply block smoothing to missing coefficients")
		}
		d.reconstructProgressive()
	} else {
		for i := range d.nComp {
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
	if d.jfifSeen {
		return false
	}
	if d.adobeSeen {
		return d.adobeXform == 0
	}
	ids := [3]uint8{d.comp[0].c, d.comp[1].c, d.comp[2].c}
	return ids == [3]uint8{'R', 'G', 'B'}
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
	d, _ := decoderPool.Get().(*decoder)
	if d == nil {
		d = new(decoder)
	}
	img, err := d.run(r, false)
	d.release()
	// Start the next decode from a zero decoder that keeps only the read
	// buffer's memory.
	buf := d.src.buf[:0]
	*d = decoder{}
	d.src.buf = buf
	decoderPool.Put(d)
	return img, err
}

// decoderPool recycles decoders (their Huffman tables and read buffer are
// tens of kilobytes, a real cost next to the pixels of a small image).
var decoderPool sync.Pool

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
	if _, err := d.run(r, true); err != nil {
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
