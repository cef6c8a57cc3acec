package hdf5

// Object header message types used by this reader (HDF5 spec, section IV.A.2).
const (
	msgNil          = 0x00
	msgDataspace    = 0x01
	msgLinkInfo     = 0x02
	msgDatatype     = 0x03
	msgFillOld      = 0x04
	msgFill         = 0x05
	msgLink         = 0x06
	msgExternal     = 0x07
	msgLayout       = 0x08
	msgFilters      = 0x0B
	msgAttribute    = 0x0C
	msgContinuation = 0x10
	msgSymbolTable  = 0x11
	msgAttrInfo     = 0x15
)

// message flag bit 1: the message body is a reference to a shared (committed) message.
const msgFlagShared = 0x02

// maxHeaderBlocks bounds the number of continuation blocks followed for one object header, so
// that a corrupt file with a cycle of continuation messages cannot loop forever.
const maxHeaderBlocks = 4096

type message struct {
	typ   uint16
	flags uint8
	data  []byte
}

type objectHeader struct {
	addr uint64
	msgs []message
}

// first returns the first message of the given type, or nil.
func (h *objectHeader) first(typ uint16) *message {
	for i := range h.msgs {
		if h.msgs[i].typ == typ {
			return &h.msgs[i]
		}
	}
	return nil
}

func (h *objectHeader) has(typ uint16) bool { return h.first(typ) != nil }

// readObjectHeader reads the object header at addr (v1 or v2) and all its continuation blocks.
func (f *File) readObjectHeader(addr uint64, what string) (*objectHeader, error) {
	if addr == undefinedAddr {
		return nil, f.errorf("%s: object has no header address", what)
	}
	pre, err := f.read(addr, 4, what+": object header")
	if err != nil {
		return nil, err
	}
	if string(pre) == "OHDR" {
		return f.readObjectHeaderV2(addr, what)
	}
	if pre[0] == 1 {
		return f.readObjectHeaderV1(addr, what)
	}
	return nil, f.errorf("%s: object header at address %d has unknown version %d (corrupt file?)", what, addr, pre[0])
}

type block struct{ addr, size uint64 }

func (f *File) readObjectHeaderV1(addr uint64, what string) (*objectHeader, error) {
	b, err := f.read(addr, 16, what+": object header")
	if err != nil {
		return nil, err
	}
	d := f.decoder(b, what+": object header")
	d.skip(2)
	nmsgs := d.u16()
	d.skip(4) // reference count
	size := d.u32()
	h := &objectHeader{addr: addr}
	queue := []block{{addr + 16, uint64(size)}}
	seen := map[uint64]bool{}
	for len(queue) > 0 {
		blk := queue[0]
		queue = queue[1:]
		if seen[blk.addr] || len(seen) >= maxHeaderBlocks {
			return nil, f.errorf("%s: object header continuation blocks form a cycle (corrupt file)", what)
		}
		seen[blk.addr] = true
		data, err := f.read(blk.addr, blk.size, what+": object header block")
		if err != nil {
			return nil, err
		}
		md := f.decoder(data, what+": object header message")
		for md.remaining() >= 8 {
			typ := md.u16()
			sz := md.u16()
			flags := md.u8()
			md.skip(3)
			body := md.bytes(int(sz))
			if md.err != nil {
				return nil, md.err
			}
			if typ == msgContinuation {
				cd := f.decoder(body, what+": continuation message")
				c := block{cd.addr(), cd.length()}
				if cd.err != nil {
					return nil, cd.err
				}
				queue = append(queue, c)
				continue
			}
			if typ != msgNil {
				h.msgs = append(h.msgs, message{typ, flags, body})
			}
		}
	}
	_ = nmsgs // the count includes NIL and continuation messages; nothing to check it against
	return h, nil
}

func (f *File) readObjectHeaderV2(addr uint64, what string) (*objectHeader, error) {
	b, err := f.read(addr, 6, what+": object header")
	if err != nil {
		return nil, err
	}
	if b[4] != 2 {
		return nil, f.errorf("%s: object header version %d not supported", what, b[4])
	}
	flags := b[5]
	prefix := 6
	if flags&0x20 != 0 {
		prefix += 16 // access, modification, change, birth times
	}
	if flags&0x10 != 0 {
		prefix += 4 // attribute phase change values
	}
	sizeLen := 1 << (flags & 3)
	b, err = f.read(addr, uint64(prefix+sizeLen), what+": object header")
	if err != nil {
		return nil, err
	}
	d := f.decoder(b[prefix:], what+": object header")
	chunk0 := d.uvar(sizeLen)
	if d.err != nil {
		return nil, d.err
	}
	total := uint64(prefix+sizeLen) + chunk0 + 4
	if chunk0 > uint64(f.size) {
		return nil, f.errorf("%s: object header chunk of %d bytes is larger than the file", what, chunk0)
	}
	whole, err := f.read(addr, total, what+": object header")
	if err != nil {
		return nil, err
	}
	if err := f.checkChecksum(whole, what+": object header"); err != nil {
		return nil, err
	}
	h := &objectHeader{addr: addr}
	crtOrder := flags&0x04 != 0
	var queue []block
	parse := func(data []byte) error {
		md := f.decoder(data, what+": object header message")
		hdrLen := 4
		if crtOrder {
			hdrLen += 2
		}
		for md.remaining() >= hdrLen {
			typ := uint16(md.u8())
			sz := md.u16()
			mflags := md.u8()
			if crtOrder {
				md.skip(2)
			}
			body := md.bytes(int(sz))
			if md.err != nil {
				return md.err
			}
			switch typ {
			case msgContinuation:
				cd := f.decoder(body, what+": continuation message")
				c := block{cd.addr(), cd.length()}
				if cd.err != nil {
					return cd.err
				}
				queue = append(queue, c)
			case msgNil:
			default:
				h.msgs = append(h.msgs, message{typ, mflags, body})
			}
		}
		return nil
	}
	if err := parse(whole[prefix+sizeLen : len(whole)-4]); err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	for len(queue) > 0 {
		blk := queue[0]
		queue = queue[1:]
		if seen[blk.addr] || len(seen) >= maxHeaderBlocks {
			return nil, f.errorf("%s: object header continuation blocks form a cycle (corrupt file)", what)
		}
		seen[blk.addr] = true
		if blk.size < 8 {
			return nil, f.errorf("%s: object header continuation block too small (%d bytes)", what, blk.size)
		}
		data, err := f.read(blk.addr, blk.size, what+": object header continuation")
		if err != nil {
			return nil, err
		}
		if string(data[:4]) != "OCHK" {
			return nil, f.errorf("%s: object header continuation block at %d lacks its OCHK signature (corrupt file)", what, blk.addr)
		}
		if err := f.checkChecksum(data, what+": object header continuation"); err != nil {
			return nil, err
		}
		if err := parse(data[4 : len(data)-4]); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// object is what groups and datasets share: a path, a header, and attributes.
type object struct {
	f    *File
	path string
	hdr  *objectHeader
}

// Path is the object's absolute path in the file, e.g. "/fc1/fc1_W_1:0".
func (o *object) Path() string { return o.path }

func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}
