package hdf5

// fractalHeap reads objects from an HDF5 fractal heap, where new-style groups keep their links
// and objects keep dense attributes once there are too many for the object header.
type fractalHeap struct {
	f    *File
	what string
	addr uint64

	idLen          int
	filtered       bool
	checksumDirect bool
	maxManaged     uint64
	hugeBTree      uint64
	width          uint64
	startBlock     uint64
	maxDirect      uint64
	maxHeapBits    int
	rootAddr       uint64
	curRootRows    int

	offSize, lenSize int // sizes of the offset and length fields of managed heap IDs
	firstRowBits     int
	maxDirectRows    int
	maxRootRows      int
	hugeIDSize       int
	hugeDirect       bool
}

func isPow2(v uint64) bool { return v != 0 && v&(v-1) == 0 }

func (f *File) openFractalHeap(addr uint64, what string) (*fractalHeap, error) {
	what += ": fractal heap"
	L, O := f.sizeofLen, f.sizeofAddr
	n := 22 + 12*L + 3*O
	hb, err := f.read(addr, uint64(n), what)
	if err != nil {
		return nil, err
	}
	if string(hb[:4]) != "FRHP" {
		return nil, f.errorf("%s at address %d lacks its FRHP signature (corrupt file)", what, addr)
	}
	d := f.decoder(hb[4:], what)
	if v := d.u8(); v != 0 {
		return nil, f.errorf("%s: version %d unknown", what, v)
	}
	h := &fractalHeap{f: f, what: what, addr: addr}
	h.idLen = int(d.u16())
	filterLen := int(d.u16())
	flags := d.u8()
	h.maxManaged = uint64(d.u32())
	d.length()             // next huge object ID
	h.hugeBTree = d.addr() // v2 B-tree of huge objects
	d.length()             // free space in managed blocks
	d.addr()               // free space manager
	d.length()             // managed space
	d.length()             // allocated managed space
	d.length()             // direct block allocation iterator
	d.length()             // number of managed objects
	d.length()             // size of huge objects
	d.length()             // number of huge objects
	d.length()             // size of tiny objects
	d.length()             // number of tiny objects
	h.width = uint64(d.u16())
	h.startBlock = d.length()
	h.maxDirect = d.length()
	h.maxHeapBits = int(d.u16())
	d.u16() // starting number of rows in the root indirect block
	h.rootAddr = d.addr()
	h.curRootRows = int(d.u16())
	if d.err != nil {
		return nil, d.err
	}
	h.filtered = filterLen > 0
	h.checksumDirect = flags&0x02 != 0
	// Whole header including optional filter info and the checksum.
	total := n + 4
	if h.filtered {
		total += L + 4 + filterLen
	}
	whole, err := f.read(addr, uint64(total), what)
	if err != nil {
		return nil, err
	}
	if err := f.checkChecksum(whole, what+" header"); err != nil {
		return nil, err
	}
	if !isPow2(h.width) || !isPow2(h.startBlock) || !isPow2(h.maxDirect) || h.maxDirect < h.startBlock ||
		h.maxHeapBits < 1 || h.maxHeapBits > 64 || h.idLen < 2 || h.idLen > 4096 {
		return nil, f.errorf("%s: implausible doubling-table parameters (corrupt file)", what)
	}
	startBits := log2Floor(h.startBlock)
	h.firstRowBits = startBits + log2Floor(h.width)
	if h.maxHeapBits < h.firstRowBits {
		return nil, f.errorf("%s: implausible doubling-table parameters (corrupt file)", what)
	}
	h.maxRootRows = h.maxHeapBits - h.firstRowBits + 1
	h.maxDirectRows = log2Floor(h.maxDirect) - startBits + 2
	h.offSize = (h.maxHeapBits + 7) / 8
	h.lenSize = (log2Floor(h.maxDirect) + 7) / 8
	if l := limitEncSize(h.maxManaged); l < h.lenSize {
		h.lenSize = l
	}
	if h.curRootRows > h.maxRootRows {
		return nil, f.errorf("%s: root block has %d rows, at most %d possible (corrupt file)", what, h.curRootRows, h.maxRootRows)
	}
	// Huge object IDs (H5HF__huge_init).
	if !h.filtered && O+L <= h.idLen-1 {
		h.hugeDirect = true
	} else if h.idLen-1 < 8 {
		h.hugeIDSize = h.idLen - 1
	} else {
		h.hugeIDSize = 8
	}
	return h, nil
}

// rowBlockSize is the size of the blocks in a row of the doubling table.
func (h *fractalHeap) rowBlockSize(row int) uint64 {
	if row == 0 {
		return h.startBlock
	}
	return h.startBlock << uint(row-1)
}

// lookup finds the row and column of a heap offset (H5HF__dtable_lookup).
func (h *fractalHeap) lookup(off uint64) (row int, col uint64) {
	if off < h.startBlock*h.width {
		return 0, off / h.startBlock
	}
	hi := log2Floor(off)
	row = hi - h.firstRowBits + 1
	bs := h.rowBlockSize(row)
	if row >= h.maxRootRows || bs == 0 {
		return 1 << 30, 0 // beyond any heap: callers reject rows >= their row count
	}
	return row, (off - uint64(1)<<uint(hi)) / bs
}

// get returns the object with the given heap ID.
func (h *fractalHeap) get(id []byte) ([]byte, error) {
	f := h.f
	if len(id) < 1 {
		return nil, f.errorf("%s: empty heap ID", h.what)
	}
	if id[0]>>6 != 0 {
		return nil, f.errorf("%s: heap ID version %d unknown (corrupt file)", h.what, id[0]>>6)
	}
	switch (id[0] >> 4) & 3 {
	case 0:
		d := f.decoder(id[1:], h.what+": heap ID")
		off := d.uvar(h.offSize)
		n := d.uvar(h.lenSize)
		if d.err != nil {
			return nil, d.err
		}
		return h.managed(off, n)
	case 1:
		return h.huge(id[1:])
	case 2:
		n := int(id[0]&0x0f) + 1
		data := id[1:]
		if h.idLen > 18 {
			if len(id) < 2 {
				return nil, f.errorf("%s: tiny heap ID too short", h.what)
			}
			n = (int(id[0]&0x0f)<<8 | int(id[1])) + 1
			data = id[2:]
		}
		if n > len(data) {
			return nil, f.errorf("%s: tiny object of %d bytes in a %d-byte heap ID (corrupt file)", h.what, n, len(id))
		}
		return data[:n], nil
	}
	return nil, f.errorf("%s: heap ID type %d unknown (corrupt file)", h.what, (id[0]>>4)&3)
}

func (h *fractalHeap) managed(off, n uint64) ([]byte, error) {
	f := h.f
	if h.filtered {
		return nil, f.errorf("%s: filtered (compressed) fractal heaps are not supported", h.what)
	}
	if n == 0 || n > h.maxDirect {
		return nil, f.errorf("%s: managed object length %d out of range (corrupt file)", h.what, n)
	}
	if h.curRootRows == 0 {
		return h.fromDirect(h.rootAddr, h.startBlock, off, n)
	}
	iblock, nrows, base := h.rootAddr, h.curRootRows, uint64(0)
	for depth := 0; depth < 64; depth++ {
		if off < base {
			return nil, f.errorf("%s: object offset %d precedes its indirect block (corrupt file)", h.what, off)
		}
		row, col := h.lookup(off - base)
		if row >= nrows || col >= h.width {
			return nil, f.errorf("%s: object offset %d beyond the heap (corrupt file)", h.what, off)
		}
		entry := uint64(row)*h.width + col
		child, err := h.iblockEntry(iblock, nrows, entry)
		if err != nil {
			return nil, err
		}
		if child == undefinedAddr {
			return nil, f.errorf("%s: object offset %d lies in an unallocated block (corrupt file)", h.what, off)
		}
		if row < h.maxDirectRows {
			return h.fromDirect(child, h.rowBlockSize(row), off, n)
		}
		// Child indirect block: its rows follow from its size (H5HF__dtable_size_to_rows).
		nrows = log2Floor(h.rowBlockSize(row)) - h.firstRowBits + 1
		bo, err := h.blockOffset(child, "FHIB")
		if err != nil {
			return nil, err
		}
		iblock, base = child, bo
	}
	return nil, f.errorf("%s: indirect blocks nested too deeply (corrupt file)", h.what)
}

// blockOffset reads the "block offset" field of a direct or indirect block header.
func (h *fractalHeap) blockOffset(addr uint64, sig string) (uint64, error) {
	f := h.f
	b, err := f.read(addr, uint64(5+f.sizeofAddr+h.offSize), h.what+" block")
	if err != nil {
		return 0, err
	}
	if string(b[:4]) != sig {
		return 0, f.errorf("%s block at address %d lacks its %s signature (corrupt file)", h.what, addr, sig)
	}
	d := f.decoder(b[5+f.sizeofAddr:], h.what)
	return d.uvar(h.offSize), d.err
}

// iblockEntry reads entry i of the indirect block at addr (with nrows rows).
func (h *fractalHeap) iblockEntry(addr uint64, nrows int, i uint64) (uint64, error) {
	f := h.f
	hdr := uint64(5 + f.sizeofAddr + h.offSize)
	if _, err := h.blockOffset(addr, "FHIB"); err != nil {
		return 0, err
	}
	directRows := nrows
	if directRows > h.maxDirectRows {
		directRows = h.maxDirectRows
	}
	direct := uint64(directRows) * h.width
	var pos uint64
	if i < direct {
		pos = hdr + i*uint64(f.sizeofAddr)
	} else {
		pos = hdr + direct*uint64(f.sizeofAddr) + (i-direct)*uint64(f.sizeofAddr)
	}
	b, err := f.read(addr+pos, uint64(f.sizeofAddr), h.what+" indirect block")
	if err != nil {
		return 0, err
	}
	d := f.decoder(b, h.what)
	return d.addr(), d.err
}

func (h *fractalHeap) fromDirect(addr, blockSize, off, n uint64) ([]byte, error) {
	f := h.f
	bo, err := h.blockOffset(addr, "FHDB")
	if err != nil {
		return nil, err
	}
	if off < bo || off-bo >= blockSize || n > blockSize-(off-bo) {
		return nil, f.errorf("%s: object (offset %d, %d bytes) outside its direct block (offset %d, %d bytes): corrupt file", h.what, off, n, bo, blockSize)
	}
	return f.read(addr+(off-bo), n, h.what+" object")
}

// huge returns a "huge" object, stored outside the heap's blocks (e.g. a large dense attribute).
func (h *fractalHeap) huge(id []byte) ([]byte, error) {
	f := h.f
	if h.filtered {
		return nil, f.errorf("%s: filtered (compressed) fractal heaps are not supported", h.what)
	}
	if h.hugeDirect {
		d := f.decoder(id, h.what+": heap ID")
		addr := d.addr()
		n := d.length()
		if d.err != nil {
			return nil, d.err
		}
		if n > uint64(f.size) {
			return nil, f.errorf("%s: huge object of %d bytes is larger than the file (corrupt file)", h.what, n)
		}
		return f.read(addr, n, h.what+" huge object")
	}
	d := f.decoder(id, h.what+": heap ID")
	want := d.uvar(h.hugeIDSize)
	if d.err != nil {
		return nil, d.err
	}
	var addr, n uint64
	found := false
	err := f.walkBTree2(h.hugeBTree, h.what+" huge objects", func(rec []byte) error {
		rd := f.decoder(rec, h.what+": huge object record")
		a := rd.addr()
		l := rd.length()
		idv := rd.length()
		if rd.err != nil {
			return rd.err
		}
		if idv == want && !found {
			addr, n, found = a, l, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, f.errorf("%s: huge object %d not found (corrupt file)", h.what, want)
	}
	if n > uint64(f.size) {
		return nil, f.errorf("%s: huge object of %d bytes is larger than the file (corrupt file)", h.what, n)
	}
	return f.read(addr, n, h.what+" huge object")
}
