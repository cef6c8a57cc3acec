// Package npy reads and writes NumPy .npy files holding float32 arrays, the exchange format
// between this module and the Python/Keras reference: what Write produces is byte-for-byte what
// numpy.save writes for a C-ordered little-endian float32 array, and Read accepts what numpy
// writes for float32 and float64 arrays (float64 is converted, as the reference values are often
// computed in double precision).
//
// Format reference: numpy/lib/format.py (NPY versions 1.0, 2.0 and 3.0).
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/atomicfile"
)

const (
	magic = "\x93NUMPY"
	// arrayAlign is the alignment numpy pads the header to, so the data can be memory-mapped.
	arrayAlign = 64
	// growthAxisMaxDigits is the spare room numpy leaves after the header dictionary so the
	// first dimension can be rewritten in place when appending; we copy it to match numpy's
	// bytes exactly.
	growthAxisMaxDigits = 21
	// maxElements bounds what a header may announce (2^34 elements = 64 GiB of float32), so a
	// corrupt header fails cleanly instead of attempting an absurd allocation.
	maxElements = 1 << 34
	// chunkElements is how many elements Read decodes at a time: the data slice grows with what
	// was actually read, never trusting the header's announced size up front.
	chunkElements = 1 << 18
)

// Write writes data, laid out in C (row-major) order with the given shape, as an NPY 1.0 file
// with dtype '<f4'. len(data) must equal the product of shape (1 for a 0-d array).
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v needs %d values, got %d", shape, n, len(data))
	}
	if _, err := w.Write(header(shape)); err != nil {
		return fmt.Errorf("npy: write header: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var b [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		if _, err := bw.Write(b[:]); err != nil {
			return fmt.Errorf("npy: write data: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("npy: write data: %w", err)
	}
	return nil
}

// header builds the NPY 1.0 header exactly as numpy 1.24's format.write_array_header_1_0 does.
func header(shape []int) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': ")
	sb.WriteString(pythonTuple(shape))
	sb.WriteString(", }")
	if len(shape) > 0 {
		if pad := growthAxisMaxDigits - len(strconv.Itoa(shape[0])); pad > 0 {
			sb.WriteString(strings.Repeat(" ", pad))
		}
	}
	h := sb.String()
	// numpy: padlen = ARRAY_ALIGN - ((MAGIC_LEN + 2 + len(header) + 1) % ARRAY_ALIGN); note that
	// an already aligned header still gets a full 64 bytes of padding.
	hlen := len(h) + 1
	padlen := arrayAlign - ((len(magic) + 2 + 2 + hlen) % arrayAlign)
	out := make([]byte, 0, len(magic)+4+hlen+padlen)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(hlen+padlen))
	out = append(out, h...)
	out = append(out, bytes.Repeat([]byte{' '}, padlen)...)
	return append(out, '\n')
}

func pythonTuple(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// WriteFile writes the array to path atomically: the data goes to a temporary file in the same
// directory which is renamed over path only once it is complete, so a reader never sees a
// half-written file.
func WriteFile(path string, shape []int, data []float32) error {
	err := atomicfile.Write(path, func(f atomicfile.File) error {
		if err := Write(f, shape, data); err != nil {
			return stripPrefix(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// ReadFile reads a .npy file; see Read.
func ReadFile(path string) (shape []int, data []float32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("npy: read %q: %w", path, err)
	}
	defer f.Close()
	shape, data, err = Read(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, nil, fmt.Errorf("npy: read %q: %w", path, stripPrefix(err))
	}
	return shape, data, nil
}

func stripPrefix(err error) error {
	msg := strings.TrimPrefix(err.Error(), "npy: ")
	return errors.New(msg)
}

// Read decodes one .npy array. It accepts format versions 1.0, 2.0 and 3.0 and the dtypes
// '<f4', '>f4', '<f8' and '>f8' (float64 values are rounded to float32); Fortran-ordered arrays
// are reordered to C order. The returned data is always C-ordered float32.
func Read(r io.Reader) (shape []int, data []float32, err error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("npy: not an .npy file: %w", eofAsTruncated(err))
	}
	if string(pre[:6]) != magic {
		return nil, nil, errors.New("npy: not an .npy file (bad magic string)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: header: %w", eofAsTruncated(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: header: %w", eofAsTruncated(err))
		}
		l := binary.LittleEndian.Uint32(b[:])
		if l > 1<<24 {
			return nil, nil, fmt.Errorf("npy: header length %d is implausible", l)
		}
		hlen = int(l)
	default:
		return nil, nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, fmt.Errorf("npy: header: %w", eofAsTruncated(err))
	}
	h, err := parseHeader(string(hb))
	if err != nil {
		return nil, nil, fmt.Errorf("npy: header %q: %w", strings.TrimSpace(string(hb)), err)
	}
	var order binary.ByteOrder
	var size int
	switch h.descr {
	case "<f4":
		order, size = binary.LittleEndian, 4
	case ">f4":
		order, size = binary.BigEndian, 4
	case "<f8":
		order, size = binary.LittleEndian, 8
	case ">f8":
		order, size = binary.BigEndian, 8
	default:
		return nil, nil, fmt.Errorf("npy: unsupported dtype %q (want float32 or float64)", h.descr)
	}
	n := 1
	for _, d := range h.shape {
		if d == 0 {
			n = 0
			break
		}
	}
	for _, d := range h.shape {
		if n == 0 {
			break
		}
		if n > maxElements/d {
			return nil, nil, fmt.Errorf("npy: shape %v is too large", h.shape)
		}
		n *= d
	}
	data = make([]float32, 0, min(n, chunkElements))
	buf := make([]byte, min(n, chunkElements)*size)
	for len(data) < n {
		k := min(n-len(data), chunkElements)
		b := buf[:k*size]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, nil, fmt.Errorf("npy: data for shape %v: %w", h.shape, eofAsTruncated(err))
		}
		for i := 0; i < k; i++ {
			if size == 4 {
				data = append(data, math.Float32frombits(order.Uint32(b[4*i:])))
			} else {
				data = append(data, float32(math.Float64frombits(order.Uint64(b[8*i:]))))
			}
		}
	}
	if h.fortran && len(h.shape) > 1 {
		data = fortranToC(h.shape, data)
	}
	return h.shape, data, nil
}

func eofAsTruncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("file is truncated")
	}
	return err
}

// fortranToC reorders column-major data into row-major order.
func fortranToC(shape []int, data []float32) []float32 {
	out := make([]float32, len(data))
	nd := len(shape)
	// Fortran strides (in elements).
	fstride := make([]int, nd)
	s := 1
	for i := 0; i < nd; i++ {
		fstride[i] = s
		s *= shape[i]
	}
	idx := make([]int, nd)
	for c := range out {
		f := 0
		for i := 0; i < nd; i++ {
			f += idx[i] * fstride[i]
		}
		out[c] = data[f]
		for i := nd - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

type npyHeader struct {
	descr   string
	fortran bool
	shape   []int
}

// parseHeader parses the Python dict literal numpy writes, e.g.
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }". It accepts the small subset of
// Python literal syntax such headers use (strings, True/False, tuples of ints).
func parseHeader(s string) (npyHeader, error) {
	p := &literalParser{s: s}
	var h npyHeader
	seen := map[string]bool{}
	p.skipSpace()
	if !p.consume('{') {
		return h, errors.New("expected '{'")
	}
	for {
		p.skipSpace()
		if p.consume('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, err
		}
		p.skipSpace()
		if !p.consume(':') {
			return h, fmt.Errorf("expected ':' after key %q", key)
		}
		p.skipSpace()
		switch key {
		case "descr":
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.intTuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		seen[key] = true
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		p.skipSpace()
		if !p.consume('}') {
			return h, errors.New("expected ',' or '}'")
		}
		break
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	if h.shape == nil {
		h.shape = []int{}
	}
	return h, nil
}

type literalParser struct {
	s string
	i int
}

func (p *literalParser) skipSpace() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *literalParser) consume(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *literalParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("expected a string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *literalParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, errors.New("expected True or False")
}

func (p *literalParser) intTuple() ([]int, error) {
	if !p.consume('(') {
		return nil, errors.New("expected '('")
	}
	dims := []int{}
	for {
		p.skipSpace()
		if p.consume(')') {
			return dims, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		// Python 2 era files may carry a long suffix, e.g. (3L, 4L).
		num := p.s[start:p.i]
		p.consume('L')
		d, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("bad dimension %q", num)
		}
		dims = append(dims, d)
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		p.skipSpace()
		if !p.consume(')') {
			return nil, errors.New("expected ',' or ')'")
		}
		return dims, nil
	}
}
