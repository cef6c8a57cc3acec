package hdf5

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// ErrNotFound is wrapped by errors for a missing link or attribute, so callers can tell
// "not there" from "corrupt" with errors.Is.
var ErrNotFound = errors.New("not found")

// globalHeaps caches decoded global heap collections (where variable-length strings live).
type globalHeaps struct {
	mu   sync.Mutex
	cols map[uint64]map[uint16][]byte
}

// maxGlobalHeap bounds the size of one global heap collection read into memory.
const maxGlobalHeap = 1 << 30

func (f *File) globalHeap(addr uint64) (map[uint16][]byte, error) {
	f.gheaps.mu.Lock()
	defer f.gheaps.mu.Unlock()
	if c, ok := f.gheaps.cols[addr]; ok {
		return c, nil
	}
	what := "global heap"
	hb, err := f.read(addr, uint64(8+f.sizeofLen), what)
	if err != nil {
		return nil, err
	}
	if string(hb[:4]) != "GCOL" {
		return nil, f.errorf("global heap at address %d lacks its GCOL signature (corrupt file)", addr)
	}
	d := f.decoder(hb[8:], what)
	size := d.length()
	if d.err != nil {
		return nil, d.err
	}
	if size < uint64(8+f.sizeofLen) || size > maxGlobalHeap {
		return nil, f.errorf("global heap at address %d has implausible size %d (corrupt file)", addr, size)
	}
	b, err := f.read(addr, size, what)
	if err != nil {
		return nil, err
	}
	objs := map[uint16][]byte{}
	d = f.decoder(b, what)
	d.skip(8 + f.sizeofLen)
	for d.remaining() >= 8+f.sizeofLen {
		idx := d.u16()
		d.skip(6) // reference count, reserved
		osz := d.length()
		if idx == 0 { // free space: the rest of the collection
			break
		}
		if osz > uint64(d.remaining()) {
			return nil, f.errorf("global heap object %d at address %d overruns its collection (corrupt file)", idx, addr)
		}
		objs[idx] = d.bytes(int(osz))
		d.align8()
	}
	if d.err != nil {
		return nil, d.err
	}
	if f.gheaps.cols == nil {
		f.gheaps.cols = map[uint64]map[uint16][]byte{}
	}
	f.gheaps.cols[addr] = objs
	return objs, nil
}

// readVlenStrings decodes n variable-length string references (length, heap address, index).
func (f *File) readVlenStrings(data []byte, n, pad int, errf func(string, ...any) error) ([]string, error) {
	out := make([]string, n)
	d := f.decoder(data, "variable-length strings")
	for i := range out {
		length := d.u32()
		addr := d.addr()
		idx := d.u32()
		if d.err != nil {
			return nil, d.err
		}
		if length == 0 {
			continue
		}
		if addr == undefinedAddr || addr == 0 {
			return nil, errf("string %d has no heap address", i)
		}
		objs, err := f.globalHeap(addr)
		if err != nil {
			return nil, err
		}
		obj, ok := objs[uint16(idx)]
		if !ok || idx > 0xffff {
			return nil, errf("string %d refers to missing global heap object %d", i, idx)
		}
		if uint64(length) > uint64(len(obj)) {
			return nil, errf("string %d has length %d but its heap object holds %d bytes", i, length, len(obj))
		}
		out[i] = trimString(obj[:length], pad)
	}
	return out, nil
}

func quote(s string) string { return strconv.Quote(s) }

// listNames formats up to 8 names for an error message.
func listNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	const max = 8
	q := make([]string, 0, max)
	for i, n := range names {
		if i == max {
			break
		}
		q = append(q, quote(n))
	}
	s := strings.Join(q, ", ")
	if len(names) > max {
		s += fmt.Sprintf(", ... (%d in all)", len(names))
	}
	return s
}
