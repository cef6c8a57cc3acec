package hdf5

import (
	"fmt"
	"math"
	"math/bits"
)

// Datatype classes (HDF5 spec, datatype message).
const (
	classFixed     = 0
	classFloat     = 1
	classTime      = 2
	classString    = 3
	classBitfield  = 4
	classOpaque    = 5
	classCompound  = 6
	classReference = 7
	classEnum      = 8
	classVlen      = 9
	classArray     = 10
)

var classNames = []string{"integer", "float", "time", "string", "bitfield", "opaque", "compound", "reference", "enum", "variable-length", "array"}

// datatype is a decoded datatype message, reduced to what this reader converts.
type datatype struct {
	class     int
	size      int
	bigEndian bool
	signed    bool // integers
	// floats
	bitOffset, precision               uint16
	expLoc, expSize, mantLoc, mantSize uint8
	expBias                            uint32
	strPad                             int // strings: 0 null-terminated, 1 null-padded, 2 space-padded
	vlenString                         bool
	base                               *datatype // variable-length sequences
}

// String describes the type the way h5dump does, for error messages.
func (t *datatype) String() string {
	order := "LE"
	if t.bigEndian {
		order = "BE"
	}
	switch t.class {
	case classFixed:
		s := "U"
		if t.signed {
			s = "I"
		}
		return fmt.Sprintf("%s%d%s integer", s, t.size*8, order)
	case classFloat:
		return fmt.Sprintf("F%d%s float", t.size*8, order)
	case classString:
		return fmt.Sprintf("fixed-length string of %d bytes", t.size)
	case classVlen:
		if t.vlenString {
			return "variable-length string"
		}
		return "variable-length sequence"
	}
	if t.class >= 0 && t.class < len(classNames) {
		return classNames[t.class] + " type"
	}
	return fmt.Sprintf("datatype class %d", t.class)
}

// isNumeric reports whether values of this type convert to float32/float64.
func (t *datatype) isNumeric() bool {
	switch t.class {
	case classFixed:
		return t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8
	case classFloat:
		return t.isIEEE()
	}
	return false
}

// isIEEE reports whether a float type is standard IEEE half, single or double precision.
func (t *datatype) isIEEE() bool {
	if t.class != classFloat || t.bitOffset != 0 || int(t.precision) != 8*t.size {
		return false
	}
	switch t.size {
	case 2:
		return t.expLoc == 10 && t.expSize == 5 && t.mantLoc == 0 && t.mantSize == 10 && t.expBias == 15
	case 4:
		return t.expLoc == 23 && t.expSize == 8 && t.mantLoc == 0 && t.mantSize == 23 && t.expBias == 127
	case 8:
		return t.expLoc == 52 && t.expSize == 11 && t.mantLoc == 0 && t.mantSize == 52 && t.expBias == 1023
	}
	return false
}

// maxNestedTypes bounds recursion through variable-length base types in corrupt files.
const maxNestedTypes = 8

func (f *File) decodeDatatype(b []byte, what string) (*datatype, error) {
	return f.decodeDatatypeDepth(b, what, 0)
}

func (f *File) decodeDatatypeDepth(b []byte, what string, depth int) (*datatype, error) {
	if depth > maxNestedTypes {
		return nil, f.errorf("%s: datatype nested too deeply (corrupt file)", what)
	}
	d := f.decoder(b, what+": datatype")
	cv := d.u8()
	bf := d.bytes(3)
	size := d.u32()
	if d.err != nil {
		return nil, d.err
	}
	t := &datatype{class: int(cv & 0x0f), size: int(size)}
	version := cv >> 4
	if version < 1 || version > 5 {
		return nil, f.errorf("%s: datatype version %d unknown (corrupt file?)", what, version)
	}
	if size == 0 || size > 1<<24 {
		return nil, f.errorf("%s: datatype size %d out of range (corrupt file?)", what, size)
	}
	switch t.class {
	case classFixed:
		t.bigEndian = bf[0]&1 != 0
		t.signed = bf[0]&0x08 != 0
	case classFloat:
		t.bigEndian = bf[0]&1 != 0
		if bf[0]&0x40 != 0 {
			return nil, f.errorf("%s: VAX-order floats are not supported", what)
		}
		t.bitOffset = d.u16()
		t.precision = d.u16()
		t.expLoc = d.u8()
		t.expSize = d.u8()
		t.mantLoc = d.u8()
		t.mantSize = d.u8()
		t.expBias = d.u32()
		if d.err != nil {
			return nil, d.err
		}
	case classString:
		t.strPad = int(bf[0] & 0x0f)
	case classVlen:
		t.vlenString = bf[0]&0x0f == 1
		t.strPad = int(bf[0] >> 4)
		base, err := f.decodeDatatypeDepth(b[d.off:], what, depth+1)
		if err != nil {
			return nil, err
		}
		t.base = base
	}
	return t, nil
}

// Dataspace kinds.
const (
	spaceScalar = 0
	spaceSimple = 1
	spaceNull   = 2
)

type dataspace struct {
	kind    int
	dims    []uint64
	maxDims []uint64 // equal to dims when the file gives none; undefinedAddr for unlimited
}

// maxElements bounds the element count of any dataspace this reader accepts (2^48), far above
// any real checkpoint and low enough that byte sizes cannot overflow.
const maxElements = 1 << 48

// count is the number of elements (0 for a null dataspace).
func (s *dataspace) count() uint64 {
	if s.kind == spaceNull {
		return 0
	}
	n := uint64(1)
	for _, d := range s.dims {
		n *= d
	}
	return n
}

func (f *File) decodeDataspace(b []byte, what string) (*dataspace, error) {
	d := f.decoder(b, what+": dataspace")
	version := d.u8()
	rank := int(d.u8())
	flags := d.u8()
	s := &dataspace{kind: spaceSimple}
	switch version {
	case 1:
		d.skip(5)
		if rank == 0 {
			s.kind = spaceScalar
		}
	case 2:
		s.kind = int(d.u8())
		if s.kind > spaceNull {
			return nil, f.errorf("%s: dataspace type %d unknown (corrupt file?)", what, s.kind)
		}
	default:
		if d.err == nil {
			return nil, f.errorf("%s: dataspace version %d unknown (corrupt file?)", what, version)
		}
	}
	if rank > 32 {
		return nil, f.errorf("%s: dataspace rank %d exceeds HDF5's limit of 32 (corrupt file?)", what, rank)
	}
	s.dims = make([]uint64, rank)
	n := uint64(1)
	for i := range s.dims {
		s.dims[i] = d.length()
		hi, lo := bits.Mul64(n, s.dims[i])
		if hi != 0 || lo > maxElements {
			if d.err == nil {
				return nil, f.errorf("%s: dataspace %v has too many elements (corrupt file?)", what, s.dims[:i+1])
			}
		}
		n = lo
	}
	s.maxDims = s.dims
	if flags&1 != 0 {
		s.maxDims = make([]uint64, rank)
		for i := range s.maxDims {
			s.maxDims[i] = d.length()
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if s.kind != spaceSimple {
		s.dims, s.maxDims = nil, nil
	}
	return s, nil
}

// Element decoding helpers -------------------------------------------------------------------

// float16to32 converts an IEEE half-precision value.
func float16to32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// loadUint reads an n-byte unsigned integer with the given byte order.
func loadUint(b []byte, n int, bigEndian bool) uint64 {
	var v uint64
	if bigEndian {
		for i := 0; i < n; i++ {
			v = v<<8 | uint64(b[i])
		}
	} else {
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
	}
	return v
}

// elementFloat64 decodes one numeric element (t.isNumeric() must hold).
func (t *datatype) elementFloat64(b []byte) float64 {
	u := loadUint(b, t.size, t.bigEndian)
	switch t.class {
	case classFloat:
		switch t.size {
		case 2:
			return float64(float16to32(uint16(u)))
		case 4:
			return float64(math.Float32frombits(uint32(u)))
		default:
			return math.Float64frombits(u)
		}
	default:
		if t.signed {
			shift := 64 - 8*uint(t.size)
			return float64(int64(u<<shift) >> shift)
		}
		return float64(u)
	}
}

// elementFloat32 decodes one numeric element to float32 (rounding float64 and large integers
// exactly as a Go conversion does: to nearest even).
func (t *datatype) elementFloat32(b []byte) float32 {
	if t.class == classFloat && t.size == 4 {
		return math.Float32frombits(uint32(loadUint(b, 4, t.bigEndian)))
	}
	if t.class == classFixed {
		u := loadUint(b, t.size, t.bigEndian)
		if t.signed {
			shift := 64 - 8*uint(t.size)
			return float32(int64(u<<shift) >> shift)
		}
		return float32(u)
	}
	return float32(t.elementFloat64(b))
}
