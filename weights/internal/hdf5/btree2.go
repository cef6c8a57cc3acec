package hdf5

// walkBTree2 visits, in order, every record of the version 2 B-tree whose header is at addr.
// h5py files use these to index dense link storage (record type 5), dense attribute storage
// (type 8) and huge fractal-heap objects (type 1).
func (f *File) walkBTree2(addr uint64, what string, visit func(rec []byte) error) error {
	what += ": v2 B-tree"
	hdrLen := 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + f.sizeofAddr + 2 + f.sizeofLen + 4
	hb, err := f.read(addr, uint64(hdrLen), what)
	if err != nil {
		return err
	}
	if string(hb[:4]) != "BTHD" {
		return f.errorf("%s header at address %d lacks its BTHD signature (corrupt file)", what, addr)
	}
	if err := f.checkChecksum(hb, what+" header"); err != nil {
		return err
	}
	d := f.decoder(hb[4:], what)
	if v := d.u8(); v != 0 {
		return f.errorf("%s: version %d unknown", what, v)
	}
	typ := d.u8()
	nodeSize := d.u32()
	recSize := int(d.u16())
	depth := int(d.u16())
	d.skip(2) // split and merge percent
	root := d.addr()
	rootN := int(d.u16())
	d.length() // total records
	if d.err != nil {
		return d.err
	}
	if recSize == 0 || nodeSize < 10 || uint64(nodeSize) > uint64(f.size)+1<<16 || depth > maxBTreeDepth {
		return f.errorf("%s: implausible parameters (node size %d, record size %d, depth %d): corrupt file", what, nodeSize, recSize, depth)
	}
	_ = typ
	if root == undefinedAddr || rootN == 0 && depth == 0 {
		return nil
	}
	// Per-depth sizes of the "number of records" fields in internal nodes (H5B2__hdr_init).
	maxNrec := make([]uint64, depth+1)
	cumMax := make([]uint64, depth+1)
	cumSize := make([]int, depth+1)
	maxNrec[0] = uint64(nodeSize-10) / uint64(recSize)
	if maxNrec[0] == 0 {
		return f.errorf("%s: node size %d holds no %d-byte records (corrupt file)", what, nodeSize, recSize)
	}
	cumMax[0] = maxNrec[0]
	maxNrecSize := limitEncSize(maxNrec[0])
	for u := 1; u <= depth; u++ {
		ptr := uint64(f.sizeofAddr + maxNrecSize + cumSize[u-1])
		if uint64(nodeSize) < 10+ptr {
			return f.errorf("%s: node size %d too small for depth %d (corrupt file)", what, nodeSize, depth)
		}
		maxNrec[u] = (uint64(nodeSize) - 10 - ptr) / (uint64(recSize) + ptr)
		c := (maxNrec[u]+1)*cumMax[u-1] + maxNrec[u]
		if cumMax[u-1] != 0 && c/cumMax[u-1] < maxNrec[u]+1 || c > 1<<56 {
			c = 1 << 56 // saturate: only the field width matters, and it stays <= 8 bytes
		}
		cumMax[u] = c
		cumSize[u] = limitEncSize(c)
	}
	seen := map[uint64]bool{}
	var walk func(addr uint64, n, depth int) error
	walk = func(addr uint64, n, depth int) error {
		if seen[addr] {
			return f.errorf("%s: node at address %d is reachable twice (corrupt file)", what, addr)
		}
		seen[addr] = true
		if uint64(n) > maxNrec[depth] {
			return f.errorf("%s: node at address %d claims %d records, at most %d fit (corrupt file)", what, addr, n, maxNrec[depth])
		}
		size := 6 + n*recSize + 4
		ptrSize := 0
		if depth > 0 {
			ptrSize = f.sizeofAddr + maxNrecSize + cumSize[depth-1]
			size += (n + 1) * ptrSize
		}
		b, err := f.read(addr, uint64(size), what+" node")
		if err != nil {
			return err
		}
		sig := "BTLF"
		if depth > 0 {
			sig = "BTIN"
		}
		if string(b[:4]) != sig {
			return f.errorf("%s node at address %d lacks its %s signature (corrupt file)", what, addr, sig)
		}
		if err := f.checkChecksum(b, what+" node"); err != nil {
			return err
		}
		recs := b[6 : 6+n*recSize]
		if depth == 0 {
			for i := 0; i < n; i++ {
				if err := visit(recs[i*recSize : (i+1)*recSize]); err != nil {
					return err
				}
			}
			return nil
		}
		pd := f.decoder(b[6+n*recSize:len(b)-4], what+" node")
		for i := 0; i <= n; i++ {
			child := pd.addr()
			cn := int(pd.uvar(maxNrecSize))
			pd.uvar(cumSize[depth-1])
			if pd.err != nil {
				return pd.err
			}
			if err := walk(child, cn, depth-1); err != nil {
				return err
			}
			if i < n {
				if err := visit(recs[i*recSize : (i+1)*recSize]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(root, rootN, depth)
}
