package hdf5

import (
	"sort"
	"strings"
)

// Attribute is a small named array attached to a group or dataset, read eagerly with its object.
type Attribute struct {
	f     *File
	name  string
	owner string
	dt    *datatype
	space *dataspace
	data  []byte
}

// Name is the attribute's name.
func (a *Attribute) Name() string { return a.name }

// Shape is the attribute's shape: nil for a scalar or an empty (null-dataspace) attribute.
func (a *Attribute) Shape() []int { return toInts(a.space.dims) }

// Len is the number of elements (1 for a scalar, 0 for an empty attribute).
func (a *Attribute) Len() int { return int(a.space.count()) }

// Type describes the element type, e.g. "F64LE float" or "fixed-length string of 11 bytes".
func (a *Attribute) Type() string { return a.dt.String() }

// IsString reports whether the attribute holds fixed- or variable-length strings.
func (a *Attribute) IsString() bool {
	return a.dt.class == classString || (a.dt.class == classVlen && a.dt.vlenString)
}

func (a *Attribute) errorf(format string, args ...any) error {
	return a.f.errorf("attribute %q of %s: "+format, append([]any{a.name, a.owner}, args...)...)
}

// Strings returns the values of a string attribute (fixed-length strings with their padding
// removed, as numpy's bytes dtype does, or variable-length strings). An attribute with no
// elements of any type gives an empty slice: Keras 1 stores "no weights" as an empty float64
// array, which is an empty list of names.
func (a *Attribute) Strings() ([]string, error) {
	n := a.Len()
	if n == 0 {
		return []string{}, nil
	}
	switch {
	case a.dt.class == classString:
		out := make([]string, n)
		sz := a.dt.size
		for i := range out {
			out[i] = trimString(a.data[i*sz:(i+1)*sz], a.dt.strPad)
		}
		return out, nil
	case a.dt.class == classVlen && a.dt.vlenString:
		return a.f.readVlenStrings(a.data, n, a.dt.strPad, func(format string, args ...any) error {
			return a.errorf(format, args...)
		})
	}
	return nil, a.errorf("holds %s values, not strings", a.dt)
}

// Float64s returns the values of a numeric attribute converted to float64.
func (a *Attribute) Float64s() ([]float64, error) {
	n := a.Len()
	if n == 0 {
		return []float64{}, nil
	}
	if !a.dt.isNumeric() {
		return nil, a.errorf("holds %s values, not numbers", a.dt)
	}
	out := make([]float64, n)
	sz := a.dt.size
	for i := range out {
		out[i] = a.dt.elementFloat64(a.data[i*sz : (i+1)*sz])
	}
	return out, nil
}

func trimString(b []byte, pad int) string {
	switch pad {
	case 0: // null-terminated: stop at the first NUL
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
	case 2: // space-padded
		b = []byte(strings.TrimRight(string(b), " "))
	default: // null-padded: numpy strips trailing NULs
		b = []byte(strings.TrimRight(string(b), "\x00"))
	}
	return string(b)
}

// decodeAttribute decodes an attribute message (versions 1–3).
func (f *File) decodeAttribute(m message, owner string) (*Attribute, error) {
	what := "attribute message of " + owner
	if m.flags&msgFlagShared != 0 {
		return nil, f.errorf("%s: shared attribute messages are not supported", what)
	}
	d := f.decoder(m.data, what)
	version := d.u8()
	flags := d.u8()
	nameLen := int(d.u16())
	dtLen := int(d.u16())
	dsLen := int(d.u16())
	if d.err != nil {
		return nil, d.err
	}
	if version < 1 || version > 3 {
		return nil, f.errorf("%s: attribute message version %d unknown (corrupt file?)", what, version)
	}
	if version >= 2 && flags&0x03 != 0 {
		return nil, f.errorf("%s: attributes with shared (committed) datatypes or dataspaces are not supported", what)
	}
	if version == 3 {
		d.skip(1) // name character set
	}
	field := func(n int) []byte {
		b := d.bytes(n)
		if version == 1 {
			d.align8()
		}
		return b
	}
	nameB := field(nameLen)
	dtB := field(dtLen)
	dsB := field(dsLen)
	if d.err != nil {
		return nil, d.err
	}
	name := trimString(nameB, 0)
	a := &Attribute{f: f, name: name, owner: owner}
	var err error
	if a.dt, err = f.decodeDatatype(dtB, what); err != nil {
		return nil, err
	}
	if a.space, err = f.decodeDataspace(dsB, what); err != nil {
		return nil, err
	}
	elem := uint64(a.dt.size)
	if a.dt.class == classVlen {
		elem = uint64(4 + f.sizeofAddr + 4)
	}
	need := a.space.count() * elem
	if a.space.count() > 0 && (need/a.space.count() != elem || need > uint64(d.remaining())) {
		return nil, f.errorf("%s: attribute %q needs %d data bytes, message holds %d (corrupt file?)", what, name, need, d.remaining())
	}
	a.data = d.bytes(int(need))
	return a, nil
}

// attributes decodes all attributes of an object: compact ones in its header and dense ones in
// a fractal heap, in name order.
func (o *object) attributes() ([]*Attribute, error) {
	var out []*Attribute
	for _, m := range o.hdr.msgs {
		if m.typ != msgAttribute {
			continue
		}
		a, err := o.f.decodeAttribute(m, o.path)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if m := o.hdr.first(msgAttrInfo); m != nil {
		dense, err := o.denseAttributes(m)
		if err != nil {
			return nil, err
		}
		out = append(out, dense...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (o *object) denseAttributes(m *message) ([]*Attribute, error) {
	f := o.f
	what := "attribute info of " + o.path
	d := f.decoder(m.data, what)
	if v := d.u8(); v != 0 && d.err == nil {
		return nil, f.errorf("%s: version %d unknown", what, v)
	}
	flags := d.u8()
	if flags&1 != 0 {
		d.skip(2)
	}
	heapAddr := d.addr()
	nameIndex := d.addr()
	if d.err != nil {
		return nil, d.err
	}
	if heapAddr == undefinedAddr || nameIndex == undefinedAddr {
		return nil, nil // no dense storage in use
	}
	heap, err := f.openFractalHeap(heapAddr, what)
	if err != nil {
		return nil, err
	}
	var out []*Attribute
	err = f.walkBTree2(nameIndex, what, func(rec []byte) error {
		if len(rec) < 9 {
			return f.errorf("%s: attribute index record too short", what)
		}
		if rec[8]&msgFlagShared != 0 {
			return f.errorf("%s: shared attribute messages are not supported", what)
		}
		body, err := heap.get(rec[:8])
		if err != nil {
			return err
		}
		a, err := f.decodeAttribute(message{typ: msgAttribute, flags: rec[8], data: body}, o.path)
		if err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// AttrNames lists the object's attribute names in sorted order.
func (o *object) AttrNames() ([]string, error) {
	attrs, err := o.attributes()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.name
	}
	return names, nil
}

// Attr returns the named attribute, or an error naming the object and the attributes it has.
func (o *object) Attr(name string) (*Attribute, error) {
	attrs, err := o.attributes()
	if err != nil {
		return nil, err
	}
	for _, a := range attrs {
		if a.name == name {
			return a, nil
		}
	}
	return nil, &Error{File: o.f.name, Reason: "no attribute " + quote(name) + " on " + o.path + " (it has " + listNames(attrNames(attrs)) + ")", Err: ErrNotFound}
}

// HasAttr reports whether the object has the named attribute.
func (o *object) HasAttr(name string) bool {
	attrs, err := o.attributes()
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if a.name == name {
			return true
		}
	}
	return false
}

func attrNames(attrs []*Attribute) []string {
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.name
	}
	return names
}

func toInts(dims []uint64) []int {
	if dims == nil {
		return nil
	}
	out := make([]int, len(dims))
	for i, d := range dims {
		out[i] = int(d)
	}
	return out
}
