// Package nbcache keeps expensive results on disk so that notebooks do not recompute them.
//
// Every GoNB cell is compiled and run as a new process: only declarations carry over from one cell
// to the next, never values. A cell that predicts with VGG16 on the pure-Go backend takes about a
// minute, and loading converted weights from HDF5 takes seconds; without a cache each later cell that
// needs them pays again. Cached stores a value under a key that describes all of its inputs, and
// returns the stored value when the same key is asked for again.
//
// The key is the whole story: it must change whenever the result would. Build it from what the
// computation reads — model name, weights identity (FileHash), input identity (HashFloat32s,
// HashBytes), and a version string you bump when the code that computes the value changes.
//
//	probs := nbcache.MustCached("vgg16/predict/v1/"+nbcache.MustFileHash(weightsPath)+"/"+nbcache.HashFloat32s(x.Data),
//		func() ([]float32, error) { return model.Predict(x) })
//
// Entries live in Dir(): $WORKBOOK_CACHE_DIR if set, otherwise the user cache folder
// (${XDG_CACHE_HOME:-~/.cache}/transfer-learning-go/nbcache on Linux). WORKBOOK_CACHE=off turns
// the cache off (every call computes, nothing is read or written) — graders use it to force fresh
// results. Clear (or `workbook cache clear`) deletes every entry and every Subdir (the feature
// cache of kernelext/training, fine-tuning runs); Remove deletes one entry.
//
// Values are stored with encoding/gob, except []float32, which is written as raw little-endian
// floats and read back with one copy (a VGG16-sized array, 138M floats, in well under a second;
// gob spends several seconds on it). gob uses a type's MarshalBinary/UnmarshalBinary when it has
// them, so a struct holding large arrays stays fast if those arrays' type implements them (see
// AppendFloat32s and Float32sFrom). Files are written to a temporary name in the same folder and
// renamed, so a reader never sees half an entry, and carry a CRC-32C of their payload.
package nbcache

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/transfer-learning-go/workbook/internal/atomicfile"
)

// Environment variables that control the cache.
const (
	EnvDir = "WORKBOOK_CACHE_DIR" // cache folder override
	EnvOff = "WORKBOOK_CACHE"     // "off" disables the cache
)

// Dir returns the cache folder (not created).
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("nbcache: no cache folder (set %s): %v", EnvDir, err)
	}
	return filepath.Join(base, "transfer-learning-go", "nbcache"), nil
}

// Enabled reports whether the cache is on (WORKBOOK_CACHE is not "off").
func Enabled() bool { return !strings.EqualFold(os.Getenv(EnvOff), "off") }

// Cached returns the value stored under key, or calls compute, stores its result and returns it.
// An error from compute is returned as is and nothing is stored. If storing fails (disk full, no
// permission) the computed value is returned together with the error, so the caller may still use it.
// A stored entry that cannot be read back is an error naming the file; it is not recomputed
// silently. An entry stored for the same key with another Go type is treated as absent and replaced.
func Cached[T any](key string, compute func() (T, error)) (T, error) {
	var zero T
	if !Enabled() {
		return compute()
	}
	path, err := entryPath(key)
	if err != nil {
		return zero, err
	}
	typ := typeName[T]()
	v, found, err := read[T](path, key, typ)
	if err != nil {
		return zero, err
	}
	if found {
		return v, nil
	}
	v, err = compute()
	if err != nil {
		return zero, err
	}
	if err := write(path, key, typ, v); err != nil {
		return v, err
	}
	return v, nil
}

// MustCached is Cached for notebook cells: it panics on error.
func MustCached[T any](key string, compute func() (T, error)) T {
	v, err := Cached(key, compute)
	if err != nil {
		panic(err)
	}
	return v
}

// Remove deletes the entry stored under key, if any.
func Remove(key string) error {
	path, err := entryPath(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nbcache: %v", err)
	}
	return nil
}

// Subdir is Dir()/name (not created): the folder of a store with a file layout of its own —
// the feature cache, fine-tuning runs — kept in the cache folder so that List shows it and Clear
// deletes it with the entries.
func Subdir(name string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// Clear deletes every entry, any leftover temporary file, and every Subdir. It returns how many
// files it removed and how many bytes they held.
func Clear() (files int, bytes int64, err error) {
	dir, err := Dir()
	if err != nil {
		return 0, 0, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("nbcache: %v", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			f, b := folderSize(filepath.Join(dir, n))
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return files, bytes, fmt.Errorf("nbcache: %v", err)
			}
			files, bytes = files+f, bytes+b
			continue
		}
		if !(strings.HasSuffix(n, entrySuffix) || isTemp(n)) {
			continue
		}
		info, _ := e.Info()
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return files, bytes, fmt.Errorf("nbcache: %v", err)
		}
		files++
		if info != nil {
			bytes += info.Size()
		}
	}
	return files, bytes, nil
}

// folderSize counts the files under dir and their bytes.
func folderSize(dir string) (files int, bytes int64) {
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				files, bytes = files+1, bytes+info.Size()
			}
		}
		return nil
	})
	return files, bytes
}

// Entry describes a stored value.
type Entry struct {
	Key     string
	Type    string // Go type it was stored as
	Size    int64  // file size in bytes
	ModTime time.Time
	Path    string
}

// List returns the stored entries, most recent first.
func List() ([]Entry, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nbcache: %v", err)
	}
	var out []Entry
	for _, de := range des {
		if de.IsDir() { // a Subdir: one line for the whole folder
			path := filepath.Join(dir, de.Name())
			n, size := folderSize(path)
			info, _ := de.Info()
			e := Entry{Key: de.Name() + "/", Type: fmt.Sprintf("folder, %d files", n), Size: size, Path: path}
			if info != nil {
				e.ModTime = info.ModTime()
			}
			out = append(out, e)
			continue
		}
		if !strings.HasSuffix(de.Name(), entrySuffix) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		f, err := os.Open(path)
		if err != nil {
			continue // removed meanwhile
		}
		h, err := readHeader(bufio.NewReader(f))
		info, _ := f.Stat()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("nbcache: %s: %v", path, err)
		}
		out = append(out, Entry{Key: h.key, Type: h.typ, Size: info.Size(), ModTime: info.ModTime(), Path: path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ModTime.After(out[j].ModTime) })
	return out, nil
}

// HashBytes returns a short hex digest (128 bits of SHA-256) of b, for keys.
func HashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16])
}

// HashFloat32s returns a short hex digest of the values' little-endian bytes, for keys: equal arrays
// give equal digests, and any changed bit changes it.
func HashFloat32s(v []float32) string {
	h := sha256.New()
	writeFloat32s(h, v)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// FileHash returns a short hex digest of a file's contents. The digest is itself cached under the
// file's absolute path, size, modification time and inode, so asking again for an unchanged
// multi-hundred-megabyte weights file costs a stat, not a read.
func FileHash(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("nbcache: %v", err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("nbcache: %v", err)
	}
	return Cached(fileHashKey(abs, info), func() (string, error) {
		f, err := os.Open(abs)
		if err != nil {
			return "", fmt.Errorf("nbcache: %v", err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("nbcache: hash %q: %v", abs, err)
		}
		return hex.EncodeToString(h.Sum(nil)[:16]), nil
	})
}

// StoreFileHash stores in the cache folder dir the digest FileHash gives for a file a program
// using that folder sees at seenAs, with the size, modification time and inode of info: a
// grader that knows the digest of a file it bind-mounts into a submission's sandbox spares the
// submission's first FileHash a read of the whole file. It returns the entry file.
func StoreFileHash(dir, seenAs string, info os.FileInfo, digest string) (string, error) {
	if !filepath.IsAbs(seenAs) {
		return "", fmt.Errorf("nbcache: %q is not an absolute path", seenAs)
	}
	return StoreIn(dir, fileHashKey(filepath.Clean(seenAs), info), digest)
}

func fileHashKey(abs string, info os.FileInfo) string {
	return fmt.Sprintf("nbcache/filehash/v1\x00%s\x00%d\x00%d\x00%d", abs, info.Size(), info.ModTime().UnixNano(), inode(info))
}

// MustFileHash is FileHash for notebook cells: it panics on error.
func MustFileHash(path string) string {
	s, err := FileHash(path)
	if err != nil {
		panic(err)
	}
	return s
}

// AppendFloat32s appends v as little-endian float32s to dst: a building block for MarshalBinary
// methods of types that hold large arrays, so gob stores them at memory speed.
func AppendFloat32s(dst []byte, v []float32) []byte {
	if nativeLittleEndian {
		return append(dst, float32Bytes(v)...)
	}
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint32(dst, *(*uint32)(unsafe.Pointer(&f)))
	}
	return dst
}

// Float32sFrom decodes n little-endian float32s from the front of b (the inverse of
// AppendFloat32s) and returns them with the rest of b.
func Float32sFrom(b []byte, n int) ([]float32, []byte, error) {
	if n < 0 || len(b) < 4*n {
		return nil, nil, fmt.Errorf("nbcache: want %d float32s, have %d bytes", n, len(b))
	}
	v := make([]float32, n)
	if nativeLittleEndian {
		copy(float32Bytes(v), b[:4*n])
	} else {
		for i := range v {
			u := binary.LittleEndian.Uint32(b[4*i:])
			v[i] = *(*float32)(unsafe.Pointer(&u))
		}
	}
	return v, b[4*n:], nil
}

// --- file layout ---
//
//	magic "WBCACHE1" | uvarint len, key | uvarint len, type | codec byte |
//	payload length (uint64 LE) | payload CRC-32C (uint32 LE) | payload
//
// The length and CRC sit before the payload (patched after writing it), so a reader can bound the
// payload and check it without buffering it.

const (
	magic       = "WBCACHE1"
	entrySuffix = ".bin"

	codecGob      byte = 0
	codecFloat32s byte = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// isTemp reports whether name is an atomicfile temporary file a crash left behind.
func isTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") }

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func entryPath(key string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return entryIn(dir, key), nil
}

func entryIn(dir, key string) string {
	s := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(s[:16])+entrySuffix)
}

// StoreIn stores v under key in the cache folder dir, which need not be this process's: a
// grader seeds a submission's fresh cache with what it has computed already. The entry file is
// returned, to be handed to the folder's owner.
func StoreIn[T any](dir, key string, v T) (string, error) {
	path := entryIn(dir, key)
	return path, write(path, key, typeName[T](), v)
}

func typeName[T any]() string {
	return reflect.TypeFor[T]().String()
}

type header struct {
	key, typ   string
	codec      byte
	payloadLen uint64
	crc        uint32
}

func readHeader(r *bufio.Reader) (*header, error) {
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return nil, errors.New("not a cache entry (bad magic)")
	}
	readStr := func() (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > 1<<20 {
			return "", errors.New("corrupt header")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", errors.New("corrupt header")
		}
		return string(b), nil
	}
	var h header
	var err error
	if h.key, err = readStr(); err != nil {
		return nil, err
	}
	if h.typ, err = readStr(); err != nil {
		return nil, err
	}
	var fixed [1 + 8 + 4]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, errors.New("corrupt header")
	}
	h.codec = fixed[0]
	h.payloadLen = binary.LittleEndian.Uint64(fixed[1:])
	h.crc = binary.LittleEndian.Uint32(fixed[9:])
	return &h, nil
}

// read loads the entry at path. found is false when there is none (or it holds another type).
func read[T any](path, key, typ string) (v T, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("nbcache: %v", err)
	}
	defer f.Close()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("nbcache: entry %s (key %q) is unreadable: %s; delete it with nbcache.Remove or `workbook cache clear`",
			path, key, fmt.Sprintf(format, args...))
	}
	br := bufio.NewReaderSize(f, 1<<20)
	h, err := readHeader(br)
	if err != nil {
		return v, false, bad("%v", err)
	}
	if h.key != key {
		return v, false, bad("it was stored for key %q", h.key)
	}
	if h.typ != typ {
		return v, false, nil
	}
	crc := crc32.New(crcTable)
	payload := io.TeeReader(io.LimitReader(br, int64(h.payloadLen)), crc)
	switch h.codec {
	case codecFloat32s:
		if h.payloadLen%4 != 0 {
			return v, false, bad("payload of %d bytes is not whole float32s", h.payloadLen)
		}
		vals := make([]float32, h.payloadLen/4)
		if err := readFloat32s(payload, vals); err != nil {
			return v, false, bad("%v", err)
		}
		v = any(vals).(T)
	case codecGob:
		if err := gob.NewDecoder(payload).Decode(&v); err != nil {
			return v, false, bad("gob: %v", err)
		}
		if _, err := io.Copy(io.Discard, payload); err != nil {
			return v, false, bad("%v", err)
		}
	default:
		return v, false, bad("unknown codec %d", h.codec)
	}
	if crc.Sum32() != h.crc {
		return v, false, bad("checksum mismatch")
	}
	return v, true, nil
}

// write stores v atomically (atomicfile): a reader never sees half an entry.
func write[T any](path, key, typ string, v T) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nbcache: %v", err)
	}
	err := atomicfile.Write(path, func(f atomicfile.File) error {
		var hdr []byte
		hdr = append(hdr, magic...)
		hdr = binary.AppendUvarint(hdr, uint64(len(key)))
		hdr = append(hdr, key...)
		hdr = binary.AppendUvarint(hdr, uint64(len(typ)))
		hdr = append(hdr, typ...)
		codec := codecGob
		floats, isFloats := any(v).([]float32)
		if isFloats {
			codec = codecFloat32s
		}
		hdr = append(hdr, codec)
		fixedAt := int64(len(hdr))
		hdr = append(hdr, make([]byte, 8+4)...) // payload length and CRC, patched below
		if _, err := f.Write(hdr); err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		crc := crc32.New(crcTable)
		cw := &countWriter{w: io.MultiWriter(bw, crc)}
		if isFloats {
			writeFloat32s(cw, floats)
		} else if err := gob.NewEncoder(cw).Encode(v); err != nil {
			return fmt.Errorf("gob: %v", err)
		}
		if cw.err != nil {
			return cw.err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		var fixed [12]byte
		binary.LittleEndian.PutUint64(fixed[:8], uint64(cw.n))
		binary.LittleEndian.PutUint32(fixed[8:], crc.Sum32())
		_, err := f.WriteAt(fixed[:], fixedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("nbcache: store key %q: %w", key, err)
	}
	return nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// float32Bytes views v's memory as bytes (native byte order).
func float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func writeFloat32s(w io.Writer, v []float32) {
	if nativeLittleEndian {
		_, _ = w.Write(float32Bytes(v)) // errors are kept by the writer (countWriter) or impossible (hash)
		return
	}
	buf := make([]byte, 0, 64*1024)
	for i := 0; i < len(v); i += 16 * 1024 {
		buf = AppendFloat32s(buf[:0], v[i:min(len(v), i+16*1024)])
		_, _ = w.Write(buf)
	}
}

func readFloat32s(r io.Reader, v []float32) error {
	if nativeLittleEndian {
		_, err := io.ReadFull(r, float32Bytes(v))
		return err
	}
	buf := make([]byte, 64*1024)
	for i := 0; i < len(v); i += 16 * 1024 {
		n := min(len(v)-i, 16*1024)
		if _, err := io.ReadFull(r, buf[:4*n]); err != nil {
			return err
		}
		vals, _, _ := Float32sFrom(buf[:4*n], n)
		copy(v[i:], vals)
	}
	return nil
}
