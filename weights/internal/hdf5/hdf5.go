// Package hdf5 is a small, read-only, pure-Go reader for the part of the HDF5 file format that
// h5py (and therefore Keras) writes: superblocks 0–3, old-style groups (symbol tables, v1
// B-trees of any depth, local heaps) and new-style groups (link messages, dense link storage in a
// fractal heap indexed by a v2 B-tree), v1 and v2 object headers with continuation blocks,
// compact and dense attributes, fixed- and variable-length strings, integer and IEEE float
// datasets stored compact, contiguous or chunked (v1 B-tree, single-chunk, implicit and fixed-array
// chunk indexes; deflate, shuffle and fletcher32 filters).
//
// It exists because the Keras ImageNet checkpoints need exactly this subset, the published pure-Go
// reader cannot walk a multi-level v1 B-tree (the ResNet50 file's root group has 177 children) and
// decodes everything to float64 (a 1.1 GB transient for VGG16), and a cgo binding to libhdf5 would
// make the workbook depend on a C library at build time.
//
// Every offset and size read from the file is checked against the file's size and the structure
// that holds it, so a truncated or corrupt file gives an error of the form
// "hdf5: <file>: <reason>", never a panic or a runaway allocation.
package hdf5

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// undefinedAddr is HDF5's "no address" value (all bits set, whatever the offset size).
const undefinedAddr = ^uint64(0)

// File is an open HDF5 file. Its methods are safe for concurrent use as long as the underlying
// io.ReaderAt is (an *os.File is).
type File struct {
	name string // for error messages: the base name of the path
	r    io.ReaderAt
	size int64
	c    io.Closer

	sizeofAddr int // bytes in a file address ("size of offsets")
	sizeofLen  int // bytes in a length ("size of lengths")
	base       uint64
	superVer   int

	root   *Group
	gheaps globalHeaps
}

// Error is the error type for malformed, truncated or unsupported files. It prints as
// "hdf5: <file>: <reason>".
type Error struct {
	File   string
	Reason string
	Err    error // underlying I/O or decompression error, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("hdf5: %s: %s: %v", e.File, e.Reason, e.Err)
	}
	return fmt.Sprintf("hdf5: %s: %s", e.File, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// errorf builds an *Error for this file.
func (f *File) errorf(format string, args ...any) error {
	return &Error{File: f.name, Reason: fmt.Sprintf(format, args...)}
}

// wrapf builds an *Error carrying an underlying error.
func (f *File) wrapf(err error, format string, args ...any) error {
	return &Error{File: f.name, Reason: fmt.Sprintf(format, args...), Err: err}
}

var signature = []byte("\x89HDF\r\n\x1a\n")

// Open opens the HDF5 file at path and reads its superblock and root group.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: filepath.Base(path), Reason: "cannot open", Err: unwrapPathError(err)}
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, &Error{File: filepath.Base(path), Reason: "cannot stat", Err: unwrapPathError(err)}
	}
	if st.IsDir() {
		fh.Close()
		return nil, &Error{File: filepath.Base(path), Reason: "is a directory, not an HDF5 file"}
	}
	f, err := NewReader(fh, st.Size(), filepath.Base(path))
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.c = fh
	return f, nil
}

// unwrapPathError drops the *os.PathError wrapper (whose message repeats the path) so that
// errors read "hdf5: x.h5: cannot open: no such file or directory".
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// NewReader reads an HDF5 file from r, which holds size bytes. name is used in error messages.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	f := &File{name: name, r: r, size: size}
	if size == 0 {
		return nil, f.errorf("empty file (0 bytes), not an HDF5 file")
	}
	if err := f.readSuperblock(); err != nil {
		return nil, err
	}
	return f, nil
}

// Close releases the file. Datasets and groups must not be used afterwards.
func (f *File) Close() error {
	if f.c != nil {
		return f.c.Close()
	}
	return nil
}

// Name is the file's base name, as used in error messages.
func (f *File) Name() string { return f.name }

// Root is the root group "/".
func (f *File) Root() *Group { return f.root }

// SuperblockVersion is the version of the file's superblock (0 for files h5py writes by default,
// 2 or 3 with libver "v108"/"latest").
func (f *File) SuperblockVersion() int { return f.superVer }

// readSuperblock finds the signature (at 0, 512, 1024, ... as the spec allows for a user block),
// decodes the superblock and loads the root group.
func (f *File) readSuperblock() error {
	var at int64 = -1
	for off := int64(0); off+8 <= f.size; off = nextSigOffset(off) {
		b := make([]byte, 8)
		if _, err := f.r.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF)) {
			return f.wrapf(err, "read error at offset %d", off)
		}
		if string(b) == string(signature) {
			at = off
			break
		}
		if off > 1<<30 {
			break
		}
	}
	if at < 0 {
		return f.errorf("not an HDF5 file (no HDF5 signature found)")
	}
	hdr, err := f.readRaw(uint64(at), 16)
	if err != nil {
		return f.errorf("truncated superblock")
	}
	f.superVer = int(hdr[8])
	switch f.superVer {
	case 0, 1:
		return f.readSuperblockV0(uint64(at))
	case 2, 3:
		return f.readSuperblockV2(uint64(at))
	default:
		return f.errorf("unsupported superblock version %d", f.superVer)
	}
}

func nextSigOffset(off int64) int64 {
	if off == 0 {
		return 512
	}
	return off * 2
}

func validSizes(addr, length int) bool {
	ok := func(n int) bool { return n == 2 || n == 4 || n == 8 }
	return ok(addr) && ok(length)
}

func (f *File) readSuperblockV0(at uint64) error {
	b, err := f.readRaw(at, 24)
	if err != nil {
		return f.errorf("truncated superblock")
	}
	f.sizeofAddr, f.sizeofLen = int(b[13]), int(b[14])
	if !validSizes(f.sizeofAddr, f.sizeofLen) {
		return f.errorf("superblock: unsupported offset/length sizes %d/%d", f.sizeofAddr, f.sizeofLen)
	}
	n := 24
	if f.superVer == 1 {
		n += 4 // indexed storage internal node K + reserved
	}
	n += 4*f.sizeofAddr + f.symbolEntrySize()
	b, err = f.readRaw(at, uint64(n))
	if err != nil {
		return f.errorf("truncated superblock")
	}
	d := f.decoder(b[n-4*f.sizeofAddr-f.symbolEntrySize():], "superblock")
	f.base = d.addr()
	d.addr() // free-space info
	eof := d.addr()
	d.addr() // driver info
	if f.base == undefinedAddr {
		f.base = 0
	}
	ent := d.symbolEntry()
	if d.err != nil {
		return d.err
	}
	// The stored end-of-file address counts the user block too (H5F__super_read compares it
	// with the whole file's size).
	if eof != undefinedAddr && eof > uint64(f.size) {
		return f.errorf("truncated file: superblock says %d bytes, file has %d", eof, f.size)
	}
	root, err := f.openGroupAt("/", ent.objAddr)
	if err != nil {
		return err
	}
	f.root = root
	return nil
}

func (f *File) readSuperblockV2(at uint64) error {
	b, err := f.readRaw(at, 12)
	if err != nil {
		return f.errorf("truncated superblock")
	}
	f.sizeofAddr, f.sizeofLen = int(b[9]), int(b[10])
	if !validSizes(f.sizeofAddr, f.sizeofLen) {
		return f.errorf("superblock: unsupported offset/length sizes %d/%d", f.sizeofAddr, f.sizeofLen)
	}
	n := 12 + 4*f.sizeofAddr + 4
	b, err = f.readRaw(at, uint64(n))
	if err != nil {
		return f.errorf("truncated superblock")
	}
	if err := f.checkChecksum(b, "superblock"); err != nil {
		return err
	}
	d := f.decoder(b[12:], "superblock")
	f.base = d.addr()
	d.addr() // superblock extension
	eof := d.addr()
	rootAddr := d.addr()
	if d.err != nil {
		return d.err
	}
	if f.base == undefinedAddr {
		f.base = 0
	}
	// The stored end-of-file address counts the user block too (H5F__super_read compares it
	// with the whole file's size).
	if eof != undefinedAddr && eof > uint64(f.size) {
		return f.errorf("truncated file: superblock says %d bytes, file has %d", eof, f.size)
	}
	root, err := f.openGroupAt("/", rootAddr)
	if err != nil {
		return err
	}
	f.root = root
	return nil
}

// readRaw reads n bytes at an absolute file offset (no base address added), checking bounds.
func (f *File) readRaw(off, n uint64) ([]byte, error) {
	if off > uint64(f.size) || n > uint64(f.size)-off {
		return nil, f.errorf("truncated file: need bytes %d..%d, file has %d", off, off+n, f.size)
	}
	b := make([]byte, n)
	if _, err := f.r.ReadAt(b, int64(off)); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, f.wrapf(err, "read error at offset %d", off)
	}
	return b, nil
}

// checkRange reports whether n bytes at file address addr lie inside the file.
func (f *File) checkRange(addr, n uint64, what string) error {
	if addr == undefinedAddr {
		return f.errorf("%s: undefined address", what)
	}
	off := addr + f.base
	if off < addr || off > uint64(f.size) || n > uint64(f.size)-off {
		return f.errorf("%s at address %d (+%d bytes) lies outside the file (%d bytes): truncated or corrupt", what, addr, n, f.size)
	}
	return nil
}

// read reads n bytes at file address addr (relative to the base address).
func (f *File) read(addr, n uint64, what string) ([]byte, error) {
	if err := f.checkRange(addr, n, what); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.r.ReadAt(b, int64(addr+f.base)); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, f.wrapf(err, "%s: read error at address %d", what, addr)
	}
	return b, nil
}

// readInto fills b from file address addr.
func (f *File) readInto(b []byte, addr uint64, what string) error {
	if err := f.checkRange(addr, uint64(len(b)), what); err != nil {
		return err
	}
	if _, err := f.r.ReadAt(b, int64(addr+f.base)); err != nil && !(errors.Is(err, io.EOF)) {
		return f.wrapf(err, "%s: read error at address %d", what, addr)
	}
	return nil
}

// symbolEntrySize is the size of a symbol table entry: link name offset, object header address,
// cache type, reserved, 16-byte scratch pad.
func (f *File) symbolEntrySize() int { return 2*f.sizeofAddr + 4 + 4 + 16 }

// checkChecksum verifies the Jenkins lookup3 checksum stored in the last 4 bytes of b.
func (f *File) checkChecksum(b []byte, what string) error {
	if len(b) < 4 {
		return f.errorf("%s: too short for a checksum", what)
	}
	n := len(b) - 4
	want := uint32(b[n]) | uint32(b[n+1])<<8 | uint32(b[n+2])<<16 | uint32(b[n+3])<<24
	if got := lookup3(b[:n], 0); got != want {
		return f.errorf("%s: checksum mismatch (stored %08x, computed %08x): corrupt file", what, want, got)
	}
	return nil
}

// splitPath splits a slash-separated path into its non-empty components.
func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}
