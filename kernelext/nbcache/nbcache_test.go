package nbcache

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

func useTempCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	t.Setenv(EnvOff, "")
	return dir
}

// counting returns a compute function that records how often it ran.
func counting[T any](v T, calls *int) func() (T, error) {
	return func() (T, error) { *calls++; return v, nil }
}

func TestFloat32sRoundTripBitExact(t *testing.T) {
	useTempCache(t)
	want := []float32{0, float32(math.Copysign(0, -1)), 1.5, -3.25e-38, float32(math.Inf(1)),
		math.Float32frombits(0x7fc00001), math.MaxFloat32, math.SmallestNonzeroFloat32}
	calls := 0
	for round := 0; round < 2; round++ {
		got, err := Cached("floats", counting(want, &calls))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: len %d, want %d", round, len(got), len(want))
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("round %d: [%d] bits %08x, want %08x", round, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
	if calls != 1 {
		t.Errorf("compute ran %d times, want 1", calls)
	}
}

type prediction struct {
	Labels []string
	Probs  []float64
	Shape  []int
}

func TestGobValueAndKeysAreSeparate(t *testing.T) {
	useTempCache(t)
	a := prediction{Labels: []string{"pizza", "bagel"}, Probs: []float64{0.9, 0.05}, Shape: []int{1, 1000}}
	b := prediction{Labels: []string{"tabby"}, Probs: []float64{0.7}}
	calls := 0
	for round := 0; round < 2; round++ {
		gotA := MustCached("pred/a", counting(a, &calls))
		gotB := MustCached("pred/b", counting(b, &calls))
		if gotA.Labels[0] != "pizza" || gotA.Probs[1] != 0.05 || gotA.Shape[1] != 1000 || gotB.Labels[0] != "tabby" {
			t.Fatalf("round %d: got %+v and %+v", round, gotA, gotB)
		}
	}
	if calls != 2 {
		t.Errorf("compute ran %d times, want 2 (once per key)", calls)
	}
}

func TestComputeErrorIsNotStored(t *testing.T) {
	useTempCache(t)
	boom := errors.New("boom")
	if _, err := Cached("k", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	calls := 0
	if v, err := Cached("k", counting(7, &calls)); err != nil || v != 7 || calls != 1 {
		t.Fatalf("after a failed compute: v=%d err=%v calls=%d; want 7, nil, 1", v, err, calls)
	}
}

func TestDisabledAlwaysComputes(t *testing.T) {
	dir := useTempCache(t)
	t.Setenv(EnvOff, "off")
	calls := 0
	for i := 0; i < 3; i++ {
		if _, err := Cached("k", counting("x", &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Errorf("compute ran %d times with the cache off, want 3", calls)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("cache off but %d files were written", len(entries))
	}
}

func TestOtherTypeIsAMiss(t *testing.T) {
	useTempCache(t)
	calls := 0
	MustCached("k", counting(int64(5), &calls))
	if got := MustCached("k", counting("five", &calls)); got != "five" || calls != 2 {
		t.Fatalf("got %q after %d computes; want a recompute for the new type", got, calls)
	}
	if got := MustCached("k", counting("other", &calls)); got != "five" || calls != 2 {
		t.Fatalf("got %q after %d computes; want the replaced entry", got, calls)
	}
}

func TestCorruptEntryIsAnErrorNamingTheFile(t *testing.T) {
	useTempCache(t)
	MustCached("k", func() ([]float32, error) { return []float32{1, 2, 3, 4}, nil })
	path, _ := entryPath("k")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x40 // flip a payload bit
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err = Cached("k", counting([]float32{9}, &calls))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("err = %v; want a checksum error naming %s", err, path)
	}
	if calls != 0 {
		t.Errorf("a corrupt entry was silently recomputed")
	}
	if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Cached("k", counting([]float32{9}, &calls)); err == nil {
		t.Fatal("truncated entry read without error")
	}
}

func TestListRemoveClearAndNoTempLeftovers(t *testing.T) {
	dir := useTempCache(t)
	MustCached("one", func() (string, error) { return "1", nil })
	time.Sleep(10 * time.Millisecond)
	MustCached("two", func() ([]float32, error) { return make([]float32, 1000), nil })
	entries, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Key != "two" || entries[0].Type != "[]float32" || entries[1].Key != "one" || entries[1].Type != "string" {
		t.Fatalf("List = %+v", entries)
	}
	if entries[0].Size < 4000 {
		t.Errorf("entry of 1000 floats is %d bytes", entries[0].Size)
	}
	files, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(files) != 0 {
		t.Errorf("temporary files left: %v", files)
	}
	if err := Remove("one"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := List(); len(entries) != 1 {
		t.Fatalf("after Remove: %+v", entries)
	}
	// A Subdir (the feature cache, fine-tuning runs) is listed as one folder and cleared too.
	sub, err := Subdir("features")
	if err != nil || sub != filepath.Join(dir, "features") {
		t.Fatalf("Subdir = %q, %v", sub, err)
	}
	if err := os.MkdirAll(filepath.Join(sub, "ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "ab", "x.feat"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if entries, _ := List(); len(entries) != 2 || !slices.ContainsFunc(entries, func(e Entry) bool {
		return e.Key == "features/" && e.Size == 100 && e.Type == "folder, 1 files"
	}) {
		t.Fatalf("List with a Subdir: %+v", entries)
	}
	n, size, err := Clear()
	if err != nil || n != 2 || size < 4100 {
		t.Fatalf("Clear = %d files, %d bytes, %v", n, size, err)
	}
	if _, err := os.Stat(sub); !os.IsNotExist(err) {
		t.Errorf("Clear left %s", sub)
	}
	if entries, _ := List(); len(entries) != 0 {
		t.Fatalf("after Clear: %+v", entries)
	}
}

func TestFileHashMatchesSha256sumAndFollowsChanges(t *testing.T) {
	useTempCache(t)
	sum, err := exec.LookPath("sha256sum")
	testenv.Need(t, err == nil, "sha256sum (the oracle, Debian's coreutils) is not installed: %v", err)
	path := filepath.Join(t.TempDir(), "weights.h5")
	for i, content := range []string{"first version", "second version, longer"} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		// A distinct modification time, as a rewrite minutes later would have.
		mt := time.Date(2024, 1, 1+i, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(path, mt, mt); err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 2; round++ { // the second round is served from the cache
			got, err := FileHash(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sum, path).Output()
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Fields(string(out))[0][:32]; got != want {
				t.Errorf("version %d round %d: FileHash = %s, sha256sum = %s", i, round, got, want)
			}
		}
	}
}

func TestFloat32BytesAreLittleEndian(t *testing.T) {
	v := []float32{1, -2.5, 3e-30, float32(math.NaN())}
	var want bytes.Buffer
	if err := binary.Write(&want, binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	got := AppendFloat32s([]byte("hdr"), v)
	if !bytes.Equal(got[3:], want.Bytes()) {
		t.Fatalf("AppendFloat32s = %x, want %x", got[3:], want.Bytes())
	}
	back, rest, err := Float32sFrom(append(got[3:], 'x'), len(v))
	if err != nil || string(rest) != "x" {
		t.Fatalf("Float32sFrom: rest %q, err %v", rest, err)
	}
	for i := range v {
		if math.Float32bits(back[i]) != math.Float32bits(v[i]) {
			t.Errorf("[%d] = %v, want %v", i, back[i], v[i])
		}
	}
	if _, _, err := Float32sFrom(got[3:], len(v)+1); err == nil {
		t.Error("short input decoded without error")
	}
	if HashFloat32s(v) != HashBytes(want.Bytes()) {
		t.Error("HashFloat32s differs from the hash of the little-endian bytes")
	}
}

// Benchmarks: the raw float32 path against gob for a VGG16-layer-sized array (25M floats, 100 MB).
const benchN = 25 << 20

func BenchmarkCachedFloat32sHit(b *testing.B) {
	b.Setenv(EnvDir, b.TempDir())
	v := make([]float32, benchN)
	MustCached("bench", func() ([]float32, error) { return v, nil })
	b.SetBytes(4 * benchN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		MustCached("bench", func() ([]float32, error) { b.Fatal("miss"); return nil, nil })
	}
}

func BenchmarkGobFloat32sDecode(b *testing.B) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(make([]float32, benchN)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * benchN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var v []float32
		if err := gob.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// A digest stored for another cache folder and another path of the same file (a hard link here,
// a bind mount in a grading sandbox) is what FileHash returns there, without reading the file;
// the file's own path, and another folder, are not affected.
func TestStoreFileHashServesTheOtherPath(t *testing.T) {
	mine := useTempCache(t)
	files := t.TempDir()
	path, link := filepath.Join(files, "weights.h5"), filepath.Join(files, "seen-as.h5")
	if err := os.WriteFile(path, []byte("checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	theirs := t.TempDir()
	entry, err := StoreFileHash(theirs, link, info, "seeded")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(entry) != theirs {
		t.Errorf("entry %s is not in %s", entry, theirs)
	}
	if _, err := StoreFileHash(theirs, "relative.h5", info, "seeded"); err == nil {
		t.Error("a relative path was accepted")
	}
	if got, err := FileHash(link); err != nil || got == "seeded" {
		t.Errorf("this process's cache (%s): FileHash = %q, %v; want the real digest", mine, got, err)
	}
	t.Setenv(EnvDir, theirs)
	if got, err := FileHash(link); err != nil || got != "seeded" {
		t.Errorf("FileHash(%s) = %q, %v; want the stored digest", link, got, err)
	}
	if got, err := FileHash(path); err != nil || got == "seeded" {
		t.Errorf("FileHash(%s) = %q, %v; the digest was stored for the other path only", path, got, err)
	}
}
