package hdf5

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/transfer-learning-go/workbook/internal/hugepages"
)

// Storage layouts.
const (
	layoutCompact    = 0
	layoutContiguous = 1
	layoutChunked    = 2
)

// Chunk index types (layout message version 4; older versions always use a v1 B-tree).
const (
	chunkIndexBTree1   = 0
	chunkIndexSingle   = 1
	chunkIndexImplicit = 2
	chunkIndexFarray   = 3
	chunkIndexEarray   = 4
	chunkIndexBTree2   = 5
)

// Filters (filter pipeline message).
const (
	filterDeflate    = 1
	filterShuffle    = 2
	filterFletcher32 = 3
)

// maxChunkBytes is HDF5's own limit on the size of one chunk (4 GiB).
const maxChunkBytes = 1 << 32

type filter struct {
	id         uint16
	name       string
	optional   bool
	clientData []uint32
}

type layout struct {
	class   int
	addr    uint64 // contiguous data, or the chunk index
	size    uint64 // contiguous size
	compact []byte
	chunk   []uint64 // chunk dimensions (dataset rank entries, element size removed)
	index   int
	single  struct {
		size     uint64
		mask     uint32
		filtered bool
	}
	pageBits int
}

// Dataset is an HDF5 dataset: a typed n-dimensional array plus attributes. Its values are read
// on demand with ReadFloat32 or ReadFloat64.
type Dataset struct {
	object
	dt      *datatype
	space   *dataspace
	layout  layout
	filters []filter
	fill    []byte // fill value of dt.size bytes; nil means zeros
}

func (f *File) newDataset(path string, h *objectHeader) (*Dataset, error) {
	ds := &Dataset{object: object{f: f, path: path, hdr: h}}
	what := "dataset " + path
	for _, t := range []uint16{msgDataspace, msgDatatype, msgLayout} {
		m := h.first(t)
		if m == nil {
			return nil, f.errorf("%s: object header lacks a required message (type %d): corrupt file", what, t)
		}
		if m.flags&msgFlagShared != 0 {
			return nil, f.errorf("%s: shared (committed) datatypes and dataspaces are not supported", what)
		}
	}
	if h.has(msgExternal) {
		return nil, f.errorf("%s: data stored in external files is not supported", what)
	}
	var err error
	if ds.space, err = f.decodeDataspace(h.first(msgDataspace).data, what); err != nil {
		return nil, err
	}
	if ds.dt, err = f.decodeDatatype(h.first(msgDatatype).data, what); err != nil {
		return nil, err
	}
	if err = ds.decodeLayout(h.first(msgLayout).data); err != nil {
		return nil, err
	}
	if m := h.first(msgFilters); m != nil {
		if ds.filters, err = f.decodeFilters(m.data, what); err != nil {
			return nil, err
		}
	}
	ds.fill = ds.decodeFill()
	return ds, nil
}

func (ds *Dataset) decodeLayout(b []byte) error {
	f := ds.f
	what := "dataset " + ds.path + ": layout message"
	d := f.decoder(b, what)
	version := d.u8()
	L := &ds.layout
	rank := len(ds.space.dims)
	readChunkDims := func(n, width int) {
		dims := make([]uint64, n)
		for i := range dims {
			dims[i] = d.uvar(width)
			if d.err == nil && dims[i] == 0 {
				d.failf("chunk dimension %d is zero (corrupt file)", i)
			}
		}
		if d.err != nil {
			return
		}
		if n != rank+1 {
			d.failf("chunk rank %d does not match dataset rank %d (corrupt file)", n-1, rank)
			return
		}
		if dims[n-1] != uint64(ds.dt.size) && ds.dt.class != classVlen {
			d.failf("chunk element size %d does not match datatype size %d (corrupt file)", dims[n-1], ds.dt.size)
			return
		}
		L.chunk = dims[:n-1]
	}
	switch version {
	case 1, 2:
		ndims := int(d.u8())
		L.class = int(d.u8())
		d.skip(5)
		if L.class != layoutCompact {
			L.addr = d.addr()
		}
		if L.class == layoutChunked {
			readChunkDims(ndims, 4)
		} else {
			d.skip(4 * ndims)
		}
		if L.class == layoutCompact {
			n := d.u32()
			L.compact = d.bytes(int(n))
		}
		if L.class == layoutContiguous {
			L.size = ds.space.count() * uint64(ds.dt.size)
		}
	case 3, 4:
		L.class = int(d.u8())
		switch L.class {
		case layoutCompact:
			n := d.u16()
			L.compact = d.bytes(int(n))
		case layoutContiguous:
			L.addr = d.addr()
			L.size = d.length()
		case layoutChunked:
			if version == 3 {
				ndims := int(d.u8())
				L.addr = d.addr()
				readChunkDims(ndims, 4)
				break
			}
			flags := d.u8()
			ndims := int(d.u8())
			width := int(d.u8())
			if d.err == nil && (width < 1 || width > 8) {
				return f.errorf("%s: chunk dimension width %d out of range (corrupt file)", what, width)
			}
			readChunkDims(ndims, width)
			L.index = int(d.u8())
			switch L.index {
			case chunkIndexSingle:
				if flags&0x02 != 0 {
					L.single.filtered = true
					L.single.size = d.length()
					L.single.mask = d.u32()
				}
			case chunkIndexImplicit:
			case chunkIndexFarray:
				L.pageBits = int(d.u8())
			case chunkIndexEarray:
				d.skip(5)
			case chunkIndexBTree2:
				d.skip(6)
			default:
				if d.err == nil {
					return f.errorf("%s: chunk index type %d unknown", what, L.index)
				}
			}
			L.addr = d.addr()
		default:
			if d.err == nil {
				return f.errorf("%s: storage layout class %d not supported (virtual datasets are not)", what, L.class)
			}
		}
	default:
		return f.errorf("%s: version %d unknown", what, version)
	}
	if d.err != nil {
		return d.err
	}
	if L.class > layoutChunked {
		return f.errorf("%s: storage layout class %d unknown", what, L.class)
	}
	return nil
}

func (f *File) decodeFilters(b []byte, what string) ([]filter, error) {
	what += ": filter pipeline"
	d := f.decoder(b, what)
	version := d.u8()
	n := int(d.u8())
	if version == 1 {
		d.skip(6)
	} else if version != 2 && d.err == nil {
		return nil, f.errorf("%s: version %d unknown", what, version)
	}
	out := make([]filter, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var fl filter
		fl.id = d.u16()
		nameLen := 0
		if version == 1 || fl.id >= 256 {
			nameLen = int(d.u16())
		}
		flags := d.u16()
		fl.optional = flags&1 != 0
		nvals := int(d.u16())
		if nameLen > 0 {
			fl.name = trimString(d.bytes(nameLen), 0)
			if version == 1 {
				d.align8Rel(nameLen)
			}
		}
		if nvals > d.remaining()/4 {
			d.fail(4 * nvals)
			break
		}
		fl.clientData = make([]uint32, nvals)
		for j := range fl.clientData {
			fl.clientData[j] = d.u32()
		}
		if version == 1 && nvals%2 == 1 {
			d.skip(4)
		}
		out = append(out, fl)
	}
	return out, d.err
}

// align8Rel skips the padding after a field of n bytes that the format pads to a multiple of 8.
func (d *decoder) align8Rel(n int) {
	if r := n % 8; r != 0 {
		d.skip(8 - r)
	}
}

// decodeFill returns the dataset's fill value if the file defines one of the right size.
func (ds *Dataset) decodeFill() []byte {
	if m := ds.hdr.first(msgFill); m != nil {
		d := ds.f.decoder(m.data, "fill value")
		version := d.u8()
		var defined bool
		switch version {
		case 1, 2:
			d.skip(2)
			defined = d.u8() != 0
			if version == 1 || defined {
				n := d.u32()
				if v := d.bytes(int(n)); defined && d.err == nil && int(n) == ds.dt.size {
					return v
				}
			}
		case 3:
			flags := d.u8()
			if flags&0x20 != 0 {
				n := d.u32()
				if v := d.bytes(int(n)); d.err == nil && int(n) == ds.dt.size {
					return v
				}
			}
		}
		return nil
	}
	if m := ds.hdr.first(msgFillOld); m != nil {
		d := ds.f.decoder(m.data, "fill value")
		n := d.u32()
		if v := d.bytes(int(n)); d.err == nil && int(n) == ds.dt.size {
			return v
		}
	}
	return nil
}

// Shape is the dataset's shape (nil for a scalar dataset).
func (ds *Dataset) Shape() []int { return toInts(ds.space.dims) }

// Len is the number of elements.
func (ds *Dataset) Len() int { return int(ds.space.count()) }

// Type describes the element type, e.g. "F32LE float".
func (ds *Dataset) Type() string { return ds.dt.String() }

// IsFloat32 reports whether the elements are stored as IEEE float32, so ReadFloat32 is a copy.
func (ds *Dataset) IsFloat32() bool {
	return ds.dt.class == classFloat && ds.dt.size == 4 && ds.dt.isIEEE()
}

func (ds *Dataset) errorf(format string, args ...any) error {
	return ds.f.errorf("dataset %s: "+format, append([]any{ds.path}, args...)...)
}

// ReadFloat32 reads all values as float32: float32 data directly (no float64 transient),
// float64/float16/integer data converted with Go's rounding.
func (ds *Dataset) ReadFloat32() ([]float32, error) {
	if err := ds.checkReadable(); err != nil {
		return nil, err
	}
	dst := hugepages.Make[float32](ds.Len())
	if err := ds.ReadFloat32Into(dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// ReadFloat32Into reads all values into dst, which must have exactly Len() elements.
func (ds *Dataset) ReadFloat32Into(dst []float32) error {
	if err := ds.checkNumeric(); err != nil {
		return err
	}
	if len(dst) != ds.Len() {
		return ds.errorf("destination holds %d values, dataset has %d", len(dst), ds.Len())
	}
	put := func(off int, raw []byte) { ds.dt.decodeFloat32(dst[off:off+len(raw)/ds.dt.size], raw) }
	if ds.dt.class == classFloat && ds.dt.size == 4 && !ds.dt.bigEndian && littleEndianHost && ds.layout.class == layoutContiguous {
		// Fast path: read the file bytes straight into the result.
		if ds.layout.addr == undefinedAddr {
			return ds.fillAll(len(dst), put)
		}
		if err := ds.checkContiguous(); err != nil {
			return err
		}
		if len(dst) == 0 {
			return nil
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst))
		return ds.f.readInto(b, ds.layout.addr, "dataset "+ds.path)
	}
	return ds.read(len(dst), put)
}

// ReadFloat64 reads all values as float64.
func (ds *Dataset) ReadFloat64() ([]float64, error) {
	if err := ds.checkReadable(); err != nil {
		return nil, err
	}
	dst := make([]float64, ds.Len())
	sz := ds.dt.size
	err := ds.read(len(dst), func(off int, raw []byte) {
		for i := 0; i < len(raw)/sz; i++ {
			dst[off+i] = ds.dt.elementFloat64(raw[i*sz : (i+1)*sz])
		}
	})
	return dst, err
}

func (ds *Dataset) checkNumeric() error {
	if !ds.dt.isNumeric() {
		return ds.errorf("holds %s values, not numbers", ds.dt)
	}
	return nil
}

// checkReadable validates what can be validated before allocating the result: the type, and
// for contiguous and compact storage that the data lie inside the file.
func (ds *Dataset) checkReadable() error {
	if err := ds.checkNumeric(); err != nil {
		return err
	}
	need := ds.space.count() * uint64(ds.dt.size)
	switch ds.layout.class {
	case layoutContiguous:
		if ds.layout.addr != undefinedAddr {
			return ds.checkContiguous()
		}
	case layoutCompact:
		if uint64(len(ds.layout.compact)) < need {
			return ds.errorf("compact storage holds %d bytes, %d needed (corrupt file)", len(ds.layout.compact), need)
		}
	}
	return nil
}

var littleEndianHost = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// decodeFloat32 converts len(dst) elements from raw.
func (t *datatype) decodeFloat32(dst []float32, raw []byte) {
	switch {
	case t.class == classFloat && t.size == 4 && !t.bigEndian && littleEndianHost:
		if len(dst) > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), raw)
		}
	case t.class == classFloat && t.size == 8 && !t.bigEndian:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		sz := t.size
		for i := range dst {
			dst[i] = t.elementFloat32(raw[i*sz : (i+1)*sz])
		}
	}
}

func (ds *Dataset) checkContiguous() error {
	need := ds.space.count() * uint64(ds.dt.size)
	if ds.layout.size < need {
		return ds.errorf("contiguous storage holds %d bytes, %d needed (corrupt file)", ds.layout.size, need)
	}
	return ds.f.checkRange(ds.layout.addr, need, "dataset "+ds.path)
}

// fillAll writes the fill value to all n elements.
func (ds *Dataset) fillAll(n int, put func(int, []byte)) error {
	if ds.fill == nil {
		return nil // destinations start zeroed
	}
	const batch = 4096
	buf := bytes.Repeat(ds.fill, batch)
	for off := 0; off < n; off += batch {
		k := min(batch, n-off)
		put(off, buf[:k*ds.dt.size])
	}
	return nil
}

// read delivers all n elements, in row-major order, to put as raw bytes.
func (ds *Dataset) read(n int, put func(off int, raw []byte)) error {
	sz := ds.dt.size
	need := uint64(n) * uint64(sz)
	switch ds.layout.class {
	case layoutCompact:
		if uint64(len(ds.layout.compact)) < need {
			return ds.errorf("compact storage holds %d bytes, %d needed (corrupt file)", len(ds.layout.compact), need)
		}
		put(0, ds.layout.compact[:need])
		return nil
	case layoutContiguous:
		if ds.layout.addr == undefinedAddr {
			return ds.fillAll(n, put)
		}
		if err := ds.checkContiguous(); err != nil {
			return err
		}
		// Convert in pieces so that a large float64 dataset needs no full-size byte buffer.
		const piece = 1 << 22
		per := max(1, piece/sz)
		buf := make([]byte, min(n, per)*sz)
		for off := 0; off < n; off += per {
			k := min(per, n-off)
			b := buf[:k*sz]
			if err := ds.f.readInto(b, ds.layout.addr+uint64(off)*uint64(sz), "dataset "+ds.path); err != nil {
				return err
			}
			put(off, b)
		}
		return nil
	case layoutChunked:
		return ds.readChunked(n, put)
	}
	return ds.errorf("storage layout %d not supported", ds.layout.class)
}

// chunkRef locates one stored chunk.
type chunkRef struct {
	offset []uint64 // element coordinates of the chunk's first element
	addr   uint64
	size   uint64 // stored (possibly compressed) size
	mask   uint32 // filters skipped for this chunk
}

func (ds *Dataset) readChunked(n int, put func(off int, raw []byte)) error {
	if n == 0 {
		return nil
	}
	if ds.space.kind == spaceScalar || len(ds.layout.chunk) != len(ds.space.dims) {
		return ds.errorf("chunked storage without matching dimensions (corrupt file)")
	}
	sz := uint64(ds.dt.size)
	chunkElems := uint64(1)
	for _, c := range ds.layout.chunk {
		chunkElems *= c
		if chunkElems > maxChunkBytes {
			return ds.errorf("chunk of %v elements exceeds HDF5's 4 GiB chunk limit (corrupt file)", ds.layout.chunk)
		}
	}
	chunkBytes := chunkElems * sz
	if chunkBytes > maxChunkBytes {
		return ds.errorf("chunk of %d bytes exceeds HDF5's 4 GiB chunk limit (corrupt file)", chunkBytes)
	}
	if err := ds.fillAll(n, put); err != nil {
		return err
	}
	var buf []byte // allocated at the first stored chunk: a corrupt chunk shape alone allocates nothing
	seen := map[uint64]bool{}
	return ds.chunks(func(c chunkRef) error {
		if c.addr == undefinedAddr {
			return nil
		}
		for i, o := range c.offset {
			if o%ds.layout.chunk[i] != 0 {
				return ds.errorf("chunk offset %v not aligned to the chunk shape %v (corrupt file)", c.offset, ds.layout.chunk)
			}
			if o >= ds.space.dims[i] {
				return nil // outside the current extent (the dataset was shrunk)
			}
		}
		if seen[c.addr] {
			return ds.errorf("chunk at address %d listed twice (corrupt file)", c.addr)
		}
		seen[c.addr] = true
		raw, err := ds.loadChunk(c, chunkBytes, &buf)
		if err != nil {
			return err
		}
		ds.scatter(c.offset, raw, put)
		return nil
	})
}

// loadChunk reads one chunk of chunkBytes bytes and undoes its filters. Unfiltered chunks are
// read into *buf (allocated on first use and reused).
func (ds *Dataset) loadChunk(c chunkRef, chunkBytes uint64, buf *[]byte) ([]byte, error) {
	if len(ds.filters) == 0 {
		if c.size < chunkBytes {
			return nil, ds.errorf("chunk at address %d holds %d bytes, %d expected (corrupt file)", c.addr, c.size, chunkBytes)
		}
		if err := ds.f.checkRange(c.addr, chunkBytes, "dataset "+ds.path+" chunk"); err != nil {
			return nil, err
		}
		if *buf == nil {
			*buf = make([]byte, chunkBytes)
		}
		if err := ds.f.readInto(*buf, c.addr, "dataset "+ds.path+" chunk"); err != nil {
			return nil, err
		}
		return *buf, nil
	}
	if c.size > uint64(ds.f.size) {
		return nil, ds.errorf("chunk of %d bytes is larger than the file (corrupt file)", c.size)
	}
	data, err := ds.f.read(c.addr, c.size, "dataset "+ds.path+" chunk")
	if err != nil {
		return nil, err
	}
	for i := len(ds.filters) - 1; i >= 0; i-- {
		fl := ds.filters[i]
		if i < 32 && c.mask&(1<<uint(i)) != 0 {
			continue
		}
		switch fl.id {
		case filterDeflate:
			if data, err = inflate(data, chunkBytes); err != nil {
				return nil, ds.f.wrapf(err, "dataset %s: chunk at address %d: bad deflate data", ds.path, c.addr)
			}
		case filterShuffle:
			elem := ds.dt.size
			if len(fl.clientData) > 0 && fl.clientData[0] > 0 {
				elem = int(fl.clientData[0])
			}
			data = unshuffle(data, elem)
		case filterFletcher32:
			if len(data) < 4 {
				return nil, ds.errorf("chunk at address %d too short for its fletcher32 checksum (corrupt file)", c.addr)
			}
			body := data[:len(data)-4]
			stored := binary.LittleEndian.Uint32(data[len(data)-4:])
			sum := fletcher32(body)
			// HDF5 before 1.6.3 stored the sum byte-swapped on little-endian machines; accept both.
			if stored != sum && stored != (sum>>16|sum<<16)&0xffffffff && bswap32(stored) != sum {
				return nil, ds.errorf("chunk at address %d fails its fletcher32 checksum: corrupt file", c.addr)
			}
			data = body
		default:
			name := fl.name
			if name == "" {
				name = map[uint16]string{4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32015: "zstd"}[fl.id]
			}
			return nil, ds.errorf("compression filter %d (%s) is not supported (only gzip/deflate, shuffle and fletcher32 are)", fl.id, name)
		}
	}
	if uint64(len(data)) != chunkBytes {
		return nil, ds.errorf("chunk at address %d decodes to %d bytes, %d expected (corrupt file)", c.addr, len(data), chunkBytes)
	}
	return data, nil
}

// inflate decompresses a zlib stream that must yield at most limit bytes. The output grows with
// the data actually decoded, so a corrupt chunk shape cannot force a huge allocation up front.
func inflate(data []byte, limit uint64) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, min(limit, 4*uint64(len(data))+4096))
	for {
		if len(out) == cap(out) {
			if uint64(len(out)) >= limit {
				// Full: the stream must end here.
				var one [1]byte
				n, err := io.ReadFull(zr, one[:])
				if n > 0 {
					return nil, errors.New("decompresses to more than the chunk size")
				}
				if err == io.EOF {
					return out, nil
				}
				return nil, err
			}
			out = slices.Grow(out, int(min(limit, 2*uint64(cap(out)))-uint64(len(out))))
		}
		n, err := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func bswap32(v uint32) uint32 {
	return v>>24 | (v>>8)&0xff00 | (v<<8)&0xff0000 | v<<24
}

// unshuffle undoes HDF5's byte shuffle: the first bytes of all elements, then all second bytes, ...
func unshuffle(data []byte, elem int) []byte {
	if elem <= 1 || len(data) < elem {
		return data
	}
	n := len(data) / elem
	out := make([]byte, len(data))
	for b := 0; b < elem; b++ {
		src := data[b*n : (b+1)*n]
		for i, v := range src {
			out[i*elem+b] = v
		}
	}
	copy(out[n*elem:], data[n*elem:]) // leftover bytes are stored unshuffled
	return out
}

// fletcher32 is HDF5's variant of the Fletcher checksum (H5_checksum_fletcher32).
func fletcher32(data []byte) uint32 {
	var sum1, sum2 uint32
	n := len(data) / 2
	p := 0
	for n > 0 {
		t := min(n, 360)
		n -= t
		for ; t > 0; t-- {
			sum1 += uint32(data[p])<<8 | uint32(data[p+1])
			p += 2
			sum2 += sum1
		}
		sum1 = (sum1 & 0xffff) + (sum1 >> 16)
		sum2 = (sum2 & 0xffff) + (sum2 >> 16)
	}
	if len(data)%2 == 1 {
		sum1 += uint32(data[p]) << 8
		sum2 += sum1
		sum1 = (sum1 & 0xffff) + (sum1 >> 16)
		sum2 = (sum2 & 0xffff) + (sum2 >> 16)
	}
	sum1 = (sum1 & 0xffff) + (sum1 >> 16)
	sum2 = (sum2 & 0xffff) + (sum2 >> 16)
	return sum2<<16 | sum1
}

// scatter copies the part of a decoded chunk that lies inside the dataset to its place in the
// row-major result, one run along the last dimension at a time.
func (ds *Dataset) scatter(offset []uint64, raw []byte, put func(int, []byte)) {
	dims, chunk := ds.space.dims, ds.layout.chunk
	rank := len(dims)
	sz := ds.dt.size
	// Extent of this chunk inside the dataset.
	ext := make([]uint64, rank)
	for i := range ext {
		ext[i] = min(chunk[i], dims[i]-offset[i])
	}
	run := int(ext[rank-1])
	idx := make([]uint64, rank) // position inside the chunk, last dimension always 0
	for {
		var src, dst uint64
		for i := 0; i < rank; i++ {
			src = src*chunk[i] + idx[i]
			dst = dst*dims[i] + offset[i] + idx[i]
		}
		put(int(dst), raw[int(src)*sz:(int(src)+run)*sz])
		// Advance the odometer over all dimensions but the last.
		i := rank - 2
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < ext[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

// chunks calls visit for every chunk in the dataset's chunk index.
func (ds *Dataset) chunks(visit func(chunkRef) error) error {
	f := ds.f
	L := ds.layout
	rank := len(ds.space.dims)
	full := uint64(ds.dt.size)
	for _, c := range L.chunk {
		full *= c
	}
	if L.addr == undefinedAddr {
		return nil // nothing written yet: all fill value
	}
	switch L.index {
	case chunkIndexBTree1:
		return f.walkBTree1(L.addr, 1, rank+1, "dataset "+ds.path, func(key []byte, child uint64) error {
			d := f.decoder(key, "dataset "+ds.path+": chunk key")
			size := uint64(d.u32())
			mask := d.u32()
			off := make([]uint64, rank)
			for i := range off {
				off[i] = d.u64()
			}
			if d.err != nil {
				return d.err
			}
			return visit(chunkRef{offset: off, addr: child, size: size, mask: mask})
		})
	case chunkIndexSingle:
		c := chunkRef{offset: make([]uint64, rank), addr: L.addr, size: full}
		if L.single.filtered {
			c.size, c.mask = L.single.size, L.single.mask
		}
		return visit(c)
	case chunkIndexImplicit:
		maxGrid, curGrid, err := ds.chunkGrid()
		if err != nil {
			return err
		}
		return forEachChunk(maxGrid, curGrid, L.chunk, func(i uint64, off []uint64) error {
			return visit(chunkRef{offset: off, addr: L.addr + i*full, size: full})
		})
	case chunkIndexFarray:
		return ds.farrayChunks(full, visit)
	case chunkIndexEarray, chunkIndexBTree2:
		return ds.errorf("chunk index type %d (used for datasets with unlimited dimensions written with libver='latest') is not supported", L.index)
	}
	return ds.errorf("chunk index type %d unknown", L.index)
}

// chunkGrid returns, per dimension, the number of chunks spanning the maximum dimensions (how
// HDF5 numbers chunks in implicit and fixed-array indexes) and the number spanning the current
// dimensions (the chunks that can hold data).
func (ds *Dataset) chunkGrid() (maxGrid, curGrid []uint64, err error) {
	maxGrid = make([]uint64, len(ds.layout.chunk))
	curGrid = make([]uint64, len(ds.layout.chunk))
	total := uint64(1)
	for i, c := range ds.layout.chunk {
		m := ds.space.maxDims[i]
		if m < ds.space.dims[i] || m > maxElements {
			return nil, nil, ds.errorf("maximum dimensions %v do not fit a fixed chunk index (corrupt file)", ds.space.maxDims)
		}
		maxGrid[i] = (m + c - 1) / c
		curGrid[i] = (ds.space.dims[i] + c - 1) / c
		total *= max(maxGrid[i], 1)
		if total > maxElements {
			return nil, nil, ds.errorf("too many chunks (corrupt file)")
		}
	}
	return maxGrid, curGrid, nil
}

// forEachChunk enumerates, in row-major order, the chunks covering the current dimensions
// (curGrid), passing each one's linear index in the maximum-dimension grid and its offset.
func forEachChunk(maxGrid, curGrid, chunk []uint64, visit func(i uint64, off []uint64) error) error {
	rank := len(curGrid)
	idx := make([]uint64, rank)
	for _, g := range curGrid {
		if g == 0 {
			return nil
		}
	}
	for {
		var lin uint64
		off := make([]uint64, rank)
		for d := range off {
			lin = lin*maxGrid[d] + idx[d]
			off[d] = idx[d] * chunk[d]
		}
		if err := visit(lin, off); err != nil {
			return err
		}
		d := rank - 1
		for ; d >= 0; d-- {
			idx[d]++
			if idx[d] < curGrid[d] {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			return nil
		}
	}
}

// farrayChunks walks a fixed-array chunk index (libver='latest' datasets without unlimited dims).
func (ds *Dataset) farrayChunks(full uint64, visit func(chunkRef) error) error {
	f := ds.f
	what := "dataset " + ds.path + ": fixed array"
	hdrLen := 8 + f.sizeofLen + f.sizeofAddr + 4
	hb, err := f.read(ds.layout.addr, uint64(hdrLen), what)
	if err != nil {
		return err
	}
	if string(hb[:4]) != "FAHD" {
		return f.errorf("%s header lacks its FAHD signature (corrupt file)", what)
	}
	if err := f.checkChecksum(hb, what+" header"); err != nil {
		return err
	}
	d := f.decoder(hb[4:], what)
	d.u8() // version
	client := d.u8()
	elSize := int(d.u8())
	pageBits := int(d.u8())
	nelmts := d.length()
	dblock := d.addr()
	if d.err != nil {
		return d.err
	}
	filtered := client == 1
	minEl := f.sizeofAddr
	if filtered {
		minEl += 1 + 4
	}
	if elSize < minEl || pageBits > 32 || nelmts > maxElements {
		return f.errorf("%s: implausible parameters (corrupt file)", what)
	}
	maxGrid, curGrid, err := ds.chunkGrid()
	if err != nil {
		return err
	}
	if dblock == undefinedAddr {
		return nil
	}
	// Data block: prefix (with a page bitmap if paged), then elements or pages.
	pageN := uint64(1) << uint(pageBits)
	npages := uint64(0)
	if nelmts > pageN {
		npages = (nelmts + pageN - 1) / pageN
	}
	prefix := uint64(6 + f.sizeofAddr)
	bitmapLen := (npages + 7) / 8
	var elems func(i uint64) ([]byte, error)
	if npages == 0 {
		b, err := f.read(dblock, prefix+nelmts*uint64(elSize)+4, what+" data block")
		if err != nil {
			return err
		}
		if string(b[:4]) != "FADB" {
			return f.errorf("%s data block lacks its FADB signature (corrupt file)", what)
		}
		if err := f.checkChecksum(b, what+" data block"); err != nil {
			return err
		}
		elems = func(i uint64) ([]byte, error) {
			p := prefix + i*uint64(elSize)
			return b[p : p+uint64(elSize)], nil
		}
	} else {
		b, err := f.read(dblock, prefix+bitmapLen+4, what+" data block")
		if err != nil {
			return err
		}
		if string(b[:4]) != "FADB" {
			return f.errorf("%s data block lacks its FADB signature (corrupt file)", what)
		}
		if err := f.checkChecksum(b, what+" data block"); err != nil {
			return err
		}
		bitmap := b[prefix : prefix+bitmapLen]
		pagesAt := dblock + prefix + bitmapLen + 4
		pageBytes := pageN*uint64(elSize) + 4
		var cur []byte
		curPage := ^uint64(0)
		elems = func(i uint64) ([]byte, error) {
			p := i / pageN
			if bitmap[p/8]&(0x80>>(p%8)) == 0 {
				return nil, nil // page never written: no chunks there
			}
			if p != curPage {
				n := pageN
				if p == npages-1 && nelmts%pageN != 0 {
					n = nelmts % pageN
				}
				pb, err := f.read(pagesAt+p*pageBytes, n*uint64(elSize)+4, what+" page")
				if err != nil {
					return nil, err
				}
				if err := f.checkChecksum(pb, what+" page"); err != nil {
					return nil, err
				}
				cur, curPage = pb, p
			}
			q := (i % pageN) * uint64(elSize)
			return cur[q : q+uint64(elSize)], nil
		}
	}
	return forEachChunk(maxGrid, curGrid, ds.layout.chunk, func(i uint64, off []uint64) error {
		if i >= nelmts {
			return f.errorf("%s: %d elements, chunk %d needed (corrupt file)", what, nelmts, i)
		}
		e, err := elems(i)
		if err != nil || e == nil {
			return err
		}
		ed := f.decoder(e, what)
		c := chunkRef{offset: off, addr: ed.addr(), size: full}
		if filtered {
			c.size = ed.uvar(elSize - f.sizeofAddr - 4)
			c.mask = ed.u32()
		}
		if ed.err != nil {
			return ed.err
		}
		return visit(c)
	})
}
