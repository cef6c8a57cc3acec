package hdf5

import (
	"sort"
)

// Kind is the kind of object a link points to.
type Kind int

const (
	KindGroup Kind = iota + 1
	KindDataset
	KindDatatype
)

func (k Kind) String() string {
	switch k {
	case KindGroup:
		return "group"
	case KindDataset:
		return "dataset"
	case KindDatatype:
		return "named datatype"
	}
	return "unknown object"
}

// Link types in link messages.
const (
	linkHard     = 0
	linkSoft     = 1
	linkExternal = 64
)

type link struct {
	name   string
	typ    int
	addr   uint64 // hard links
	target string // soft and external links
}

// Group is an HDF5 group: a set of named links to groups and datasets, plus attributes.
type Group struct {
	object
	links []link // sorted by name, as h5py lists them
}

// maxLinks bounds the number of links one group may have, against corrupt B-trees.
const maxLinks = 1 << 24

// kindOf classifies an object by the messages in its header.
func kindOf(h *objectHeader) Kind {
	switch {
	case h.has(msgLayout):
		return KindDataset
	case h.has(msgSymbolTable), h.has(msgLinkInfo), h.has(msgLink):
		return KindGroup
	case h.has(msgDatatype) && !h.has(msgDataspace):
		return KindDatatype
	case !h.has(msgDataspace) && !h.has(msgDatatype):
		return KindGroup // an empty group written without a link info message
	}
	return 0
}

func (f *File) openGroupAt(path string, addr uint64) (*Group, error) {
	h, err := f.readObjectHeader(addr, path)
	if err != nil {
		return nil, err
	}
	if k := kindOf(h); k != KindGroup {
		return nil, f.errorf("%s is a %s, not a group", path, k)
	}
	g := &Group{object: object{f: f, path: path, hdr: h}}
	if err := g.loadLinks(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Group) loadLinks() error {
	f := g.f
	what := "group " + g.path
	var links []link
	if m := g.hdr.first(msgSymbolTable); m != nil {
		d := f.decoder(m.data, what+": symbol table message")
		btree := d.addr()
		heap := d.addr()
		if d.err != nil {
			return d.err
		}
		var err error
		if links, err = f.symbolTableLinks(btree, heap, what); err != nil {
			return err
		}
	} else {
		for _, m := range g.hdr.msgs {
			if m.typ != msgLink {
				continue
			}
			l, err := f.decodeLink(m.data, what)
			if err != nil {
				return err
			}
			links = append(links, l)
		}
		if m := g.hdr.first(msgLinkInfo); m != nil {
			dense, err := f.denseLinks(m.data, what)
			if err != nil {
				return err
			}
			links = append(links, dense...)
		}
	}
	sort.SliceStable(links, func(i, j int) bool { return links[i].name < links[j].name })
	for i := 1; i < len(links); i++ {
		if links[i].name == links[i-1].name {
			return f.errorf("%s: two links named %q (corrupt file)", what, links[i].name)
		}
	}
	g.links = links
	return nil
}

// symbolTableLinks lists an old-style group: a v1 B-tree (of any depth) whose leaves point to
// symbol table nodes, with names in a local heap.
func (f *File) symbolTableLinks(btree, heapAddr uint64, what string) ([]link, error) {
	heap, err := f.readLocalHeap(heapAddr, what)
	if err != nil {
		return nil, err
	}
	var links []link
	err = f.walkBTree1(btree, 0, 0, what, func(_ []byte, snod uint64) error {
		entries, err := f.readSymbolNode(snod, what)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name, err := heap.name(e.nameOff)
			if err != nil {
				return err
			}
			links = append(links, link{name: name, typ: linkHard, addr: e.objAddr})
			if len(links) > maxLinks {
				return f.errorf("%s: more than %d links (corrupt file?)", what, maxLinks)
			}
		}
		return nil
	})
	return links, err
}

type localHeap struct {
	f    *File
	what string
	data []byte
}

func (f *File) readLocalHeap(addr uint64, what string) (*localHeap, error) {
	hb, err := f.read(addr, uint64(8+2*f.sizeofLen+f.sizeofAddr), what+": local heap")
	if err != nil {
		return nil, err
	}
	if string(hb[:4]) != "HEAP" {
		return nil, f.errorf("%s: local heap at address %d lacks its HEAP signature (corrupt file)", what, addr)
	}
	d := f.decoder(hb[8:], what+": local heap")
	size := d.length()
	d.length() // free list offset
	dataAddr := d.addr()
	if d.err != nil {
		return nil, d.err
	}
	data, err := f.read(dataAddr, size, what+": local heap data")
	if err != nil {
		return nil, err
	}
	return &localHeap{f: f, what: what, data: data}, nil
}

// name returns the NUL-terminated string at off.
func (h *localHeap) name(off uint64) (string, error) {
	if off >= uint64(len(h.data)) {
		return "", h.f.errorf("%s: link name offset %d outside the local heap (%d bytes): corrupt file", h.what, off, len(h.data))
	}
	b := h.data[off:]
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), nil
		}
	}
	return "", h.f.errorf("%s: unterminated link name in the local heap (corrupt file)", h.what)
}

func (f *File) readSymbolNode(addr uint64, what string) ([]symbolEntry, error) {
	hb, err := f.read(addr, 8, what+": symbol table node")
	if err != nil {
		return nil, err
	}
	if string(hb[:4]) != "SNOD" {
		return nil, f.errorf("%s: symbol table node at address %d lacks its SNOD signature (corrupt file)", what, addr)
	}
	n := int(hb[6]) | int(hb[7])<<8
	b, err := f.read(addr+8, uint64(n*f.symbolEntrySize()), what+": symbol table node")
	if err != nil {
		return nil, err
	}
	d := f.decoder(b, what+": symbol table node")
	out := make([]symbolEntry, n)
	for i := range out {
		out[i] = d.symbolEntry()
	}
	return out, d.err
}

// maxBTreeDepth bounds v1/v2 B-tree depth (real files stay below 10).
const maxBTreeDepth = 64

// walkBTree1 visits, in key order, every leaf entry of the v1 B-tree at addr: for group trees
// (nodeType 0) the symbol table node addresses, for chunk trees (nodeType 1) the chunk keys and
// addresses. ndims is the chunk key dimensionality (dataset rank + 1) for chunk trees.
func (f *File) walkBTree1(addr uint64, nodeType, ndims int, what string, visit func(key []byte, child uint64) error) error {
	keySize := f.sizeofLen
	if nodeType == 1 {
		keySize = 8 + 8*ndims
	}
	seen := map[uint64]bool{}
	var walk func(addr uint64, wantLevel int) error
	walk = func(addr uint64, wantLevel int) error {
		if seen[addr] {
			return f.errorf("%s: B-tree node at address %d is reachable twice (corrupt file)", what, addr)
		}
		seen[addr] = true
		hdrSize := 8 + 2*f.sizeofAddr
		hb, err := f.read(addr, uint64(hdrSize), what+": B-tree node")
		if err != nil {
			return err
		}
		if string(hb[:4]) != "TREE" {
			return f.errorf("%s: B-tree node at address %d lacks its TREE signature (corrupt file)", what, addr)
		}
		if int(hb[4]) != nodeType {
			return f.errorf("%s: B-tree node at address %d has type %d, want %d (corrupt file)", what, addr, hb[4], nodeType)
		}
		level := int(hb[5])
		if wantLevel >= 0 && level != wantLevel {
			return f.errorf("%s: B-tree node at address %d has level %d, want %d (corrupt file)", what, addr, level, wantLevel)
		}
		if level > maxBTreeDepth {
			return f.errorf("%s: B-tree node at address %d has level %d (corrupt file)", what, addr, level)
		}
		n := int(hb[6]) | int(hb[7])<<8
		body, err := f.read(addr+uint64(hdrSize), uint64(n*(keySize+f.sizeofAddr)+keySize), what+": B-tree node")
		if err != nil {
			return err
		}
		d := f.decoder(body, what+": B-tree node")
		for i := 0; i < n; i++ {
			key := d.bytes(keySize)
			child := d.addr()
			if d.err != nil {
				return d.err
			}
			if level > 0 {
				if err := walk(child, level-1); err != nil {
					return err
				}
				continue
			}
			if err := visit(key, child); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(addr, -1)
}

// decodeLink decodes a link message.
func (f *File) decodeLink(b []byte, what string) (link, error) {
	d := f.decoder(b, what+": link message")
	var l link
	if v := d.u8(); v != 1 && d.err == nil {
		return l, f.errorf("%s: link message version %d unknown (corrupt file?)", what, v)
	}
	flags := d.u8()
	if flags&0x08 != 0 {
		l.typ = int(d.u8())
	}
	if flags&0x04 != 0 {
		d.skip(8) // creation order
	}
	if flags&0x10 != 0 {
		d.skip(1) // character set
	}
	nameLen := d.uvar(1 << (flags & 3))
	if d.err == nil && (nameLen == 0 || nameLen > uint64(d.remaining())) {
		return l, f.errorf("%s: link name length %d out of range (corrupt file)", what, nameLen)
	}
	l.name = string(d.bytes(int(nameLen)))
	switch l.typ {
	case linkHard:
		l.addr = d.addr()
	case linkSoft, linkExternal:
		n := int(d.u16())
		l.target = string(d.bytes(n))
	default:
		if d.err == nil {
			return l, f.errorf("%s: link %q has unknown type %d", what, l.name, l.typ)
		}
	}
	return l, d.err
}

// denseLinks reads the links of a new-style group stored in a fractal heap, via the v2 B-tree
// that indexes their names.
func (f *File) denseLinks(b []byte, what string) ([]link, error) {
	d := f.decoder(b, what+": link info message")
	if v := d.u8(); v != 0 && d.err == nil {
		return nil, f.errorf("%s: link info version %d unknown", what, v)
	}
	flags := d.u8()
	if flags&1 != 0 {
		d.skip(8)
	}
	heapAddr := d.addr()
	nameIndex := d.addr()
	if d.err != nil {
		return nil, d.err
	}
	if heapAddr == undefinedAddr || nameIndex == undefinedAddr {
		return nil, nil // compact storage: the links are messages in the header
	}
	heap, err := f.openFractalHeap(heapAddr, what)
	if err != nil {
		return nil, err
	}
	var links []link
	err = f.walkBTree2(nameIndex, what, func(rec []byte) error {
		if len(rec) < 5 {
			return f.errorf("%s: link index record too short", what)
		}
		body, err := heap.get(rec[4:])
		if err != nil {
			return err
		}
		l, err := f.decodeLink(body, what)
		if err != nil {
			return err
		}
		links = append(links, l)
		if len(links) > maxLinks {
			return f.errorf("%s: more than %d links (corrupt file?)", what, maxLinks)
		}
		return nil
	})
	return links, err
}

// Children lists the names of the group's members in byte order (as h5py's keys() does).
func (g *Group) Children() []string {
	names := make([]string, len(g.links))
	for i, l := range g.links {
		names[i] = l.name
	}
	return names
}

// Has reports whether the group has a member with this name (a single path component).
func (g *Group) Has(name string) bool {
	_, ok := g.find(name)
	return ok
}

func (g *Group) find(name string) (link, bool) {
	i := sort.Search(len(g.links), func(i int) bool { return g.links[i].name >= name })
	if i < len(g.links) && g.links[i].name == name {
		return g.links[i], true
	}
	return link{}, false
}

// maxSoftLinks bounds soft-link chains (HDF5's own default limit is 16).
const maxSoftLinks = 16

// resolve follows a relative or absolute path to an object header.
func (g *Group) resolve(name string, depth int) (path string, h *objectHeader, err error) {
	f := g.f
	if depth > maxSoftLinks {
		return "", nil, f.errorf("too many levels of soft links resolving %q", name)
	}
	cur := g
	if len(name) > 0 && name[0] == '/' {
		cur = f.root
	}
	parts := splitPath(name)
	if len(parts) == 0 {
		return cur.path, cur.hdr, nil
	}
	for i, part := range parts {
		l, ok := cur.find(part)
		if !ok {
			return "", nil, &Error{File: f.name, Reason: "no " + quote(part) + " in group " + cur.path + " (it has " + listNames(cur.Children()) + ")", Err: ErrNotFound}
		}
		p := joinPath(cur.path, part)
		switch l.typ {
		case linkSoft:
			p, h, err = cur.resolve(l.target, depth+1)
		case linkExternal:
			return "", nil, f.errorf("%s is an external link; external links are not supported", p)
		default:
			h, err = f.readObjectHeader(l.addr, p)
		}
		if err != nil {
			return "", nil, err
		}
		if i == len(parts)-1 {
			return p, h, nil
		}
		if k := kindOf(h); k != KindGroup {
			return "", nil, f.errorf("%s is a %s, not a group", p, k)
		}
		next := &Group{object: object{f: f, path: p, hdr: h}}
		if err := next.loadLinks(); err != nil {
			return "", nil, err
		}
		cur = next
	}
	panic("unreachable")
}

// Kind reports what the member at name (a path relative to g, or absolute) is.
func (g *Group) Kind(name string) (Kind, error) {
	_, h, err := g.resolve(name, 0)
	if err != nil {
		return 0, err
	}
	return kindOf(h), nil
}

// Group opens the group at name: a member name, a relative path such as "a/b", or an absolute
// path.
func (g *Group) Group(name string) (*Group, error) {
	p, h, err := g.resolve(name, 0)
	if err != nil {
		return nil, err
	}
	if k := kindOf(h); k != KindGroup {
		return nil, g.f.errorf("%s is a %s, not a group", p, k)
	}
	out := &Group{object: object{f: g.f, path: p, hdr: h}}
	if err := out.loadLinks(); err != nil {
		return nil, err
	}
	return out, nil
}

// Dataset opens the dataset at name (a member name or a path, as for Group).
func (g *Group) Dataset(name string) (*Dataset, error) {
	p, h, err := g.resolve(name, 0)
	if err != nil {
		return nil, err
	}
	if k := kindOf(h); k != KindDataset {
		return nil, g.f.errorf("%s is a %s, not a dataset", p, k)
	}
	return g.f.newDataset(p, h)
}
