package hdf5

// decoder reads little-endian fields from a byte slice. Errors are sticky: after the first
// out-of-bounds read every further read returns zero and d.err holds an *Error naming what was
// being decoded, so callers check d.err once after a group of reads instead of after each one.
type decoder struct {
	f    *File
	b    []byte
	off  int
	what string
	err  error
}

func (f *File) decoder(b []byte, what string) *decoder {
	return &decoder{f: f, b: b, what: what}
}

func (d *decoder) fail(need int) {
	if d.err == nil {
		d.err = d.f.errorf("%s: truncated or corrupt (need %d bytes at offset %d of a %d-byte structure)", d.what, need, d.off, len(d.b))
	}
}

// failf records a decoding error unless one is already recorded.
func (d *decoder) failf(format string, args ...any) {
	if d.err == nil {
		d.err = d.f.errorf("%s: "+format, append([]any{d.what}, args...)...)
	}
}

func (d *decoder) remaining() int {
	if d.err != nil {
		return 0
	}
	return len(d.b) - d.off
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail(n)
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) skip(n int) { d.bytes(n) }

func (d *decoder) u8() uint8 {
	b := d.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) u16() uint16 { return uint16(d.uvar(2)) }
func (d *decoder) u32() uint32 { return uint32(d.uvar(4)) }
func (d *decoder) u64() uint64 { return d.uvar(8) }

// uvar reads an n-byte little-endian unsigned integer (0 <= n <= 8).
func (d *decoder) uvar(n int) uint64 {
	if n > 8 {
		d.failf("integer field of %d bytes", n)
		return 0
	}
	b := d.bytes(n)
	if b == nil {
		return 0
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// addr reads a file address; an all-ones value becomes undefinedAddr whatever the size.
func (d *decoder) addr() uint64 {
	n := d.f.sizeofAddr
	v := d.uvar(n)
	if d.err == nil && n < 8 && v == (uint64(1)<<(8*n))-1 {
		return undefinedAddr
	}
	return v
}

// length reads a "size of lengths" field.
func (d *decoder) length() uint64 {
	return d.uvar(d.f.sizeofLen)
}

// align8 skips padding so that the offset (relative to the start of the slice) is a multiple of 8.
func (d *decoder) align8() {
	if r := d.off % 8; r != 0 && d.err == nil {
		pad := 8 - r
		if pad > len(d.b)-d.off {
			pad = len(d.b) - d.off
		}
		d.off += pad
	}
}

// symbolEntry is a symbol table entry (in a superblock v0/v1 or a symbol table node). Its
// cache type and scratch pad (a copy of the group's symbol table message) are skipped: the
// object header is always read.
type symbolEntry struct {
	nameOff uint64
	objAddr uint64
}

func (d *decoder) symbolEntry() symbolEntry {
	var e symbolEntry
	e.nameOff = d.length()
	e.objAddr = d.addr()
	d.skip(4 + 4 + 16) // cache type, reserved, scratch pad
	return e
}

// limitEncSize is the number of bytes HDF5 uses to encode values up to max (H5VM_limit_enc_size).
func limitEncSize(max uint64) int {
	return log2Floor(max)/8 + 1
}

// log2Floor is floor(log2(v)) for v > 0, and 0 for v == 0.
func log2Floor(v uint64) int {
	n := -1
	for v != 0 {
		v >>= 1
		n++
	}
	if n < 0 {
		return 0
	}
	return n
}
