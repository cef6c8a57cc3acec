package kernelext

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"io/fs"
	"os"

	"golang.org/x/image/bmp"

	"github.com/transfer-learning-go/workbook/internal/jpeg"
)

// MaxImagePixels is the largest image (width × height, as declared in the file header) that
// LoadImg decodes. It is Pillow's own hard limit (twice Image.MAX_IMAGE_PIXELS, beyond which
// Pillow raises DecompressionBombError), so Keras' load_img and LoadImg refuse the same files.
// The header is checked before any pixel memory is allocated.
var MaxImagePixels = 2 * 89478485

// Image is a decoded 8-bit RGB image, what Keras' load_img returns (a Pillow image in mode
// "RGB"). It embeds an *image.RGBA whose alpha is always 255, so it is an image.Image that
// GoNB (DisplayImage) and the standard library can draw; the bounds always start at (0, 0).
type Image struct {
	*image.RGBA
}

// Width is the image width in pixels (Pillow's img.size[0]).
func (im *Image) Width() int { return im.Rect.Dx() }

// Height is the image height in pixels (Pillow's img.size[1]).
func (im *Image) Height() int { return im.Rect.Dy() }

// LoadOption configures LoadImg.
type LoadOption func(*loadConfig)

type loadConfig struct {
	height, width int
	resize        bool
}

// TargetSize makes LoadImg resize the image to height × width pixels — Keras'
// target_size=(height, width), height first. The resize is a plain stretch with Pillow's
// nearest-neighbour filter (load_img's default interpolation) and happens only when the size
// differs.
func TargetSize(height, width int) LoadOption {
	return func(c *loadConfig) {
		c.height, c.width, c.resize = height, width, true
	}
}

// LoadImg is Keras' load_img(path, target_size=...) with the default color_mode "rgb": it
// decodes a JPEG, PNG, GIF (first frame) or BMP file into exactly the pixels Pillow produces,
// converts it to RGB the way Pillow's convert("RGB") does and, with TargetSize, resizes it
// with Pillow's NEAREST filter.
//
// The format is recognised from the file's content, never its extension (a PNG named x.jpg
// loads as a PNG, as in Pillow). Conversion to RGB follows Pillow: grayscale is replicated;
// alpha is dropped without compositing (the stored colour of a fully transparent pixel is
// kept); palettes are looked up ignoring transparency; 16-bit colour keeps the high byte and
// 16-bit grayscale is clipped to 255 (Pillow's mode "I"). EXIF orientation and ICC profiles
// are ignored, as load_img ignores them.
//
// Errors name the file and the reason (missing, a directory, empty, truncated, not an image,
// an unsupported format or variant, too many pixels); on error no image is returned.
func LoadImg(path string, opts ...LoadOption) (*Image, error) {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.resize && (cfg.height <= 0 || cfg.width <= 0) {
		return nil, fmt.Errorf("kernelext: load %q: target size (%d, %d) must be positive", path, cfg.height, cfg.width)
	}
	data, err := readImageFile(path)
	if err != nil {
		return nil, err
	}
	rgba, err := decodeRGB(data)
	if err != nil {
		return nil, fmt.Errorf("kernelext: load %q: %w", path, err)
	}
	if cfg.resize && (rgba.Rect.Dx() != cfg.width || rgba.Rect.Dy() != cfg.height) {
		rgba = resizeNearest(rgba, cfg.width, cfg.height)
	}
	return &Image{RGBA: rgba}, nil
}

// MustLoadImg is LoadImg for notebook cells: it panics on error.
func MustLoadImg(path string, opts ...LoadOption) *Image {
	img, err := LoadImg(path, opts...)
	if err != nil {
		panic(err)
	}
	return img
}

func readImageFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("kernelext: load %q: no such file", path)
	case err != nil:
		return nil, fmt.Errorf("kernelext: load %q: %w", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("kernelext: load %q: is a directory, not an image file", path)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("kernelext: load %q: not a regular file", path)
	case st.Size() == 0:
		return nil, fmt.Errorf("kernelext: load %q: empty file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernelext: load %q: %w", path, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("kernelext: load %q: empty file", path)
	}
	return data, nil
}

// sniff names the image format from the first bytes, like Pillow's plugins' _accept tests.
func sniff(b []byte) string {
	has := func(prefix string) bool { return bytes.HasPrefix(b, []byte(prefix)) }
	switch {
	case has("\xff\xd8\xff"):
		return "JPEG"
	case has("\x89PNG\r\n\x1a\n"):
		return "PNG"
	case has("GIF87a"), has("GIF89a"):
		return "GIF"
	case has("BM"):
		return "BMP"
	// Formats Pillow would open but this package does not decode: say so precisely.
	case has("II*\x00"), has("MM\x00*"):
		return "TIFF"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "WebP"
	case has("\x00\x00\x01\x00"):
		return "ICO"
	case has("\x00\x00\x02\x00"):
		return "CUR"
	case has("8BPS"):
		return "PSD"
	case has("\x00\x00\x00\x0cjP  \r\n\x87\n"), has("\xff\x4f\xff\x51"):
		return "JPEG 2000"
	case len(b) >= 12 && string(b[4:8]) == "ftyp" &&
		(string(b[8:12]) == "avif" || string(b[8:12]) == "avis" || string(b[8:12]) == "heic" ||
			string(b[8:12]) == "heix" || string(b[8:12]) == "mif1" || string(b[8:12]) == "msf1"):
		return "HEIF/AVIF"
	case len(b) >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' && (b[2] == ' ' || b[2] == '\n' || b[2] == '\r' || b[2] == '\t'):
		return "PPM/PGM/PBM"
	case has("qoif"):
		return "QOI"
	case has("DDS "):
		return "DDS"
	case has("\x0a") && len(b) > 1 && b[1] <= 5:
		return "PCX"
	}
	return ""
}

var decodable = map[string]bool{"JPEG": true, "PNG": true, "GIF": true, "BMP": true}

// decodeRGB decodes an image file's bytes into an opaque RGBA image holding Pillow's
// convert("RGB") values.
func decodeRGB(data []byte) (*image.RGBA, error) {
	format := sniff(data)
	if format == "" {
		return nil, errors.New("not an image file (content is not JPEG, PNG, GIF or BMP)")
	}
	if !decodable[format] {
		return nil, fmt.Errorf("unsupported image format %s (supported: JPEG, PNG, GIF, BMP)", format)
	}
	var cfg image.Config
	var err error
	switch format {
	case "JPEG":
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case "PNG":
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case "GIF":
		cfg, err = gif.DecodeConfig(bytes.NewReader(data))
	case "BMP":
		cfg, err = bmp.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return nil, decodeError(format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%s image has no pixels (%dx%d)", format, cfg.Width, cfg.Height)
	}
	if cfg.Width > MaxImagePixels/cfg.Height {
		return nil, fmt.Errorf("%s header declares %dx%d pixels, above the limit of %d (kernelext.MaxImagePixels)",
			format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	switch format {
	case "JPEG":
		m, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, decodeError(format, err)
		}
		return toRGB(m)
	case "PNG":
		info, err := parsePNGInfo(data)
		if err != nil {
			return nil, err
		}
		m, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			if !bytes.Contains(data, []byte("IEND")) {
				return nil, fmt.Errorf("truncated PNG file (%w)", err)
			}
			return nil, decodeError(format, err)
		}
		if info.colorType == 0 && info.depth == 16 {
			return gray16ToRGB(m)
		}
		if p, ok := m.(*image.Paletted); ok {
			return palettedToRGB(p, info.palette)
		}
		return toRGB(m)
	case "GIF":
		return decodeGIF(data)
	default: // BMP
		m, err := bmp.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, decodeError(format, err)
		}
		return toRGB(m)
	}
}

func decodeError(format string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("truncated %s file (%w)", format, err)
	}
	if errors.Is(err, bmp.ErrUnsupported) {
		return fmt.Errorf("unsupported BMP variant (%w)", err)
	}
	// The decoders' own messages already say what is wrong ("png: invalid format: ...",
	// "jpeg: unsupported ...").
	return err
}

// toRGB converts a decoded image to opaque RGBA holding Pillow's convert("RGB") values.
func toRGB(m image.Image) (*image.RGBA, error) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	set := func(i int, r, g, bl uint8) {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = r, g, bl, 255
	}
	switch src := m.(type) {
	case *image.RGBA:
		// Only opaque images come this way (JPEG, opaque PNG, BMP): with alpha below 255 the
		// colour would be premultiplied and Pillow's stored values unrecoverable.
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				if row[4*x+3] != 255 {
					return nil, errors.New("decoder returned premultiplied translucent pixels")
				}
				set(out.PixOffset(x, y), row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				set(out.PixOffset(x, y), row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				v := row[x]
				set(out.PixOffset(x, y), v, v, v)
			}
		}
	case *image.CMYK:
		// 4-component JPEG: jpeg.Decode returns Pillow's mode "CMYK" values, and convert("RGB")
		// is Pillow's cmyk2rgb, which jpeg.CMYKToRGB reproduces (Go's color.CMYKToRGB and
		// src.At(x, y) round differently).
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				r, g, bl := jpeg.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				set(out.PixOffset(x, y), r, g, bl)
			}
		}
	case *image.RGBA64:
		// 16-bit colour PNG: Pillow unpacks "RGB;16B" keeping the high byte.
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				if row[8*x+6] != 0xff || row[8*x+7] != 0xff {
					return nil, errors.New("decoder returned premultiplied translucent pixels")
				}
				set(out.PixOffset(x, y), row[8*x], row[8*x+2], row[8*x+4])
			}
		}
	case *image.NRGBA64:
		// 16-bit colour or gray+alpha PNG ("RGBA;16B", "LA;16B"): high bytes, alpha dropped.
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				set(out.PixOffset(x, y), row[8*x], row[8*x+2], row[8*x+4])
			}
		}
	case *image.Paletted:
		return palettedToRGB(src, nil)
	default:
		return nil, fmt.Errorf("unsupported pixel layout %T", m)
	}
	return out, nil
}

// gray16ToRGB handles 16-bit grayscale PNGs, which Pillow opens in mode "I" (32-bit
// integers) and converts to RGB by clipping each value to 0..255 — so anything above 255
// becomes white. Go decodes them as Gray16, or as NRGBA64 when a tRNS chunk is present.
func gray16ToRGB(m image.Image) (*image.RGBA, error) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	switch src := m.(type) {
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				v := clip8(int(row[2*x])<<8 | int(row[2*x+1]))
				i := out.PixOffset(x, y)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = v, v, v, 255
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				v := clip8(int(row[8*x])<<8 | int(row[8*x+1]))
				i := out.PixOffset(x, y)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = v, v, v, 255
			}
		}
	default:
		return nil, fmt.Errorf("unsupported pixel layout %T for a 16-bit grayscale PNG", m)
	}
	return out, nil
}

func clip8(v int) uint8 {
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// palettedToRGB looks every index up in the palette. rawPalette, when given, is the palette
// exactly as stored in the file (RGB triplets): Go's decoders blank the transparent GIF entry
// and pad short PNG palettes with black, while Pillow keeps the stored colour and, past the
// end of a short palette, returns gray (i, i, i) for index i.
func palettedToRGB(p *image.Paletted, rawPalette []byte) (*image.RGBA, error) {
	var lut [256][3]uint8
	for i := range lut {
		lut[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
	}
	if rawPalette != nil {
		for i := 0; i < len(rawPalette)/3 && i < 256; i++ {
			lut[i] = [3]uint8{rawPalette[3*i], rawPalette[3*i+1], rawPalette[3*i+2]}
		}
	} else {
		for i, c := range p.Palette {
			if i >= 256 {
				break
			}
			switch c := c.(type) {
			case color.RGBA:
				if c.A != 255 {
					return nil, errors.New("palette holds premultiplied translucent colours")
				}
				lut[i] = [3]uint8{c.R, c.G, c.B}
			case color.NRGBA:
				lut[i] = [3]uint8{c.R, c.G, c.B}
			default:
				return nil, fmt.Errorf("unsupported palette colour type %T", c)
			}
		}
	}
	b := p.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		row := p.Pix[p.PixOffset(b.Min.X, b.Min.Y+y):]
		for x := 0; x < w; x++ {
			c := lut[row[x]]
			i := out.PixOffset(x, y)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = c[0], c[1], c[2], 255
		}
	}
	return out, nil
}

type pngInfo struct {
	depth, colorType int
	palette          []byte // PLTE contents, nil when absent
}

// parsePNGInfo reads IHDR and PLTE by walking the chunk list (the pixel decoding is left to
// image/png, which also verifies the checksums).
func parsePNGInfo(data []byte) (pngInfo, error) {
	var info pngInfo
	if len(data) < 8+8+13 || string(data[12:16]) != "IHDR" {
		return info, errors.New("invalid PNG data: missing IHDR chunk")
	}
	info.depth, info.colorType = int(data[24]), int(data[25])
	for off := 8; off+8 <= len(data); {
		n := int(uint32(data[off])<<24 | uint32(data[off+1])<<16 | uint32(data[off+2])<<8 | uint32(data[off+3]))
		typ := string(data[off+4 : off+8])
		if n < 0 || off+8+n > len(data) {
			break // image/png reports the truncation
		}
		if typ == "PLTE" {
			info.palette = data[off+8 : off+8+n]
		}
		if typ == "IDAT" || typ == "IEND" {
			break
		}
		off += 12 + n
	}
	return info, nil
}

// decodeGIF decodes the first frame the way Pillow 9.4 presents a GIF: an image of the
// logical screen size, pixels outside the first frame set to the transparent index (or 0),
// colours from the frame's local palette or the global one, transparency ignored.
func decodeGIF(data []byte) (*image.RGBA, error) {
	h, err := parseGIFHeader(data)
	if err != nil {
		return nil, err
	}
	m, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		if data[len(data)-1] != 0x3b { // no trailer byte
			return nil, fmt.Errorf("truncated GIF file (%w)", err)
		}
		return nil, decodeError("GIF", err)
	}
	frame, ok := m.(*image.Paletted)
	if !ok {
		return nil, fmt.Errorf("unsupported pixel layout %T for a GIF", m)
	}
	palette := h.global
	if h.local != nil {
		palette = h.local
	}
	fill := uint8(0)
	if h.hasTransparent {
		fill = h.transparent
	}
	screen := image.NewPaletted(image.Rect(0, 0, h.width, h.height), nil)
	for i := range screen.Pix {
		screen.Pix[i] = fill
	}
	fr := frame.Bounds()
	if !fr.In(screen.Rect) {
		return nil, errors.New("unsupported GIF: first frame extends beyond the logical screen")
	}
	for y := fr.Min.Y; y < fr.Max.Y; y++ {
		copy(screen.Pix[screen.PixOffset(fr.Min.X, y):screen.PixOffset(fr.Max.X, y)],
			frame.Pix[frame.PixOffset(fr.Min.X, y):frame.PixOffset(fr.Max.X, y)])
	}
	return palettedToRGB(screen, palette)
}

type gifHeader struct {
	width, height  int
	global, local  []byte
	hasTransparent bool
	transparent    uint8
}

// parseGIFHeader walks the GIF blocks up to the first image descriptor, collecting the
// logical screen size, the raw colour tables and the first frame's transparent index.
func parseGIFHeader(data []byte) (gifHeader, error) {
	var h gifHeader
	bad := errors.New("truncated GIF file (header)")
	if len(data) < 13 {
		return h, bad
	}
	h.width = int(data[6]) | int(data[7])<<8
	h.height = int(data[8]) | int(data[9])<<8
	off := 13
	if flags := data[10]; flags&0x80 != 0 {
		n := 3 << (flags&7 + 1)
		if off+n > len(data) {
			return h, bad
		}
		h.global = data[off : off+n]
		off += n
	}
	skipSubBlocks := func() bool {
		for off < len(data) {
			n := int(data[off])
			off++
			if n == 0 {
				return true
			}
			off += n
		}
		return false
	}
	for off < len(data) {
		switch data[off] {
		case 0x21: // extension
			if off+2 > len(data) {
				return h, bad
			}
			label := data[off+1]
			off += 2
			// A graphic control extension with the transparency flag set; like Pillow, a
			// later one without the flag does not clear it.
			if label == 0xf9 && off+5 <= len(data) && data[off] == 4 && data[off+1]&1 != 0 {
				h.hasTransparent = true
				h.transparent = data[off+4]
			}
			if !skipSubBlocks() {
				return h, bad
			}
		case 0x2c: // image descriptor
			if off+10 > len(data) {
				return h, bad
			}
			if flags := data[off+9]; flags&0x80 != 0 {
				n := 3 << (flags&7 + 1)
				if off+10+n > len(data) {
					return h, bad
				}
				h.local = data[off+10 : off+10+n]
			}
			if h.global == nil && h.local == nil {
				return h, errors.New("unsupported GIF: no colour table")
			}
			return h, nil
		default:
			return h, fmt.Errorf("invalid GIF data: unexpected block 0x%02x before the first image", data[off])
		}
	}
	return h, errors.New("invalid GIF data: no image")
}

// resizeNearest is Pillow's NEAREST resize (ImagingScaleAffine): source column for output x
// is int(pos) with pos starting at sx/2 and advanced by sx = in/out once per column — an
// accumulated float64 sum, which differs from the closed form floor((x+0.5)·in/out) where
// that lands on an integer. Rows likewise.
func resizeNearest(src *image.RGBA, width, height int) *image.RGBA {
	inW, inH := src.Rect.Dx(), src.Rect.Dy()
	xs := nearestTable(inW, width)
	ys := nearestTable(inH, height)
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	for y, sy := range ys {
		srow := src.Pix[sy*src.Stride:]
		drow := out.Pix[y*out.Stride:]
		for x, sx := range xs {
			copy(drow[4*x:4*x+4], srow[4*sx:4*sx+4])
		}
	}
	return out
}

func nearestTable(in, out int) []int {
	scale := float64(in) / float64(out)
	t := make([]int, out)
	pos := 0.5 * scale
	for i := range t {
		v := int(pos)
		// The accumulated position stays below in for any realistic size; clamp so rounding
		// can never index past the last pixel.
		t[i] = min(v, in-1)
		pos += scale
	}
	return t
}
