package hdf5

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// python is Debian's interpreter, which has python3-h5py; a python3 earlier on PATH may not.
const python = "/usr/bin/python3"

var (
	genOnce sync.Once
	genDir  string
	genErr  error
	genSkip string
)

// h5pyFiles runs testdata/make_files.py once per test binary and returns its output directory.
// Tests skip (not fail) where h5py is not installed.
func h5pyFiles(t testing.TB) string {
	t.Helper()
	genOnce.Do(func() {
		if err := exec.Command(python, "-c", "import h5py, numpy").Run(); err != nil {
			genSkip = "h5py not available (" + python + " -c 'import h5py' failed: " + err.Error() + ")"
			return
		}
		genDir, genErr = os.MkdirTemp("", "hdf5-test-")
		if genErr != nil {
			return
		}
		out, err := exec.Command(python, "testdata/make_files.py", genDir).CombinedOutput()
		if err != nil {
			genErr = errors.New("make_files.py: " + err.Error() + "\n" + string(out))
		}
	})
	if genSkip != "" {
		testenv.SkipMissing(t, "%s", genSkip)
	}
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

// numList decodes the manifest's numbers, written as Python reprs ("1.5", "inf", "nan").
type numList []float64

func (l *numList) UnmarshalJSON(b []byte) error {
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*l = make(numList, len(ss))
	for i, s := range ss {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		(*l)[i] = v
	}
	return nil
}

type manifestAttr struct {
	Strings []string `json:"strings"`
	Floats  numList  `json:"floats"`
	Shape   []int    `json:"shape"`
	Empty   bool     `json:"empty"`
}

type manifestDataset struct {
	Shape   []int   `json:"shape"`
	DType   string  `json:"dtype"`
	Values  numList `json:"values"`
	Float32 numList `json:"float32"`
}

type manifestFile struct {
	Groups   map[string][]string                `json:"groups"`
	Datasets map[string]manifestDataset         `json:"datasets"`
	Attrs    map[string]map[string]manifestAttr `json:"attrs"`
}

func loadManifest(t *testing.T, dir string) map[string]manifestFile {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]manifestFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// unsupported lists datasets the reader refuses on purpose, with a substring of the error.
var unsupported = map[string]string{
	"latest.h5:/unlimited": "unlimited dimensions",
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

// TestAgainstH5py opens every file make_files.py writes and compares groups, datasets and
// attributes with what h5py reads from them.
func TestAgainstH5py(t *testing.T) {
	dir := h5pyFiles(t)
	manifest := loadManifest(t, dir)
	names := make([]string, 0, len(manifest))
	for name := range manifest {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		want := manifest[name]
		t.Run(name, func(t *testing.T) {
			f, err := Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for path, children := range want.Groups {
				g, err := f.Root().Group(path)
				if err != nil {
					t.Errorf("group %s: %v", path, err)
					continue
				}
				if got := g.Children(); !reflect.DeepEqual(got, children) {
					t.Errorf("group %s: children %v, h5py says %v", path, got, children)
				}
			}
			for path, wd := range want.Datasets {
				checkDataset(t, f, name, path, wd)
			}
			for path, attrs := range want.Attrs {
				checkAttrs(t, f, path, attrs)
			}
		})
	}
}

func checkDataset(t *testing.T, f *File, file, path string, want manifestDataset) {
	t.Helper()
	ds, err := f.Root().Dataset(path)
	if err != nil {
		t.Errorf("dataset %s: %v", path, err)
		return
	}
	wantShape := want.Shape
	if len(wantShape) == 0 {
		wantShape = nil
	}
	if got := ds.Shape(); !reflect.DeepEqual(got, wantShape) {
		t.Errorf("dataset %s: shape %v, h5py says %v", path, got, want.Shape)
	}
	if want.Values == nil {
		return
	}
	got64, err := ds.ReadFloat64()
	if sub, ok := unsupported[file+":"+path]; ok {
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("dataset %s: error %v, want one mentioning %q", path, err, sub)
		}
		return
	}
	if err != nil {
		t.Errorf("dataset %s: ReadFloat64: %v", path, err)
		return
	}
	if len(got64) != len(want.Values) {
		t.Errorf("dataset %s: %d values, h5py read %d", path, len(got64), len(want.Values))
		return
	}
	for i := range got64 {
		if !sameFloat(got64[i], want.Values[i]) {
			t.Errorf("dataset %s: value %d = %v, h5py read %v", path, i, got64[i], want.Values[i])
			break
		}
	}
	got32, err := ds.ReadFloat32()
	if err != nil {
		t.Errorf("dataset %s: ReadFloat32: %v", path, err)
		return
	}
	ref := want.Float32
	if ref == nil {
		ref = want.Values // integers: exact in float32 for the values used
	}
	for i := range got32 {
		if !sameFloat(float64(got32[i]), ref[i]) {
			t.Errorf("dataset %s: float32 value %d = %v, numpy gives %v", path, i, got32[i], ref[i])
			break
		}
	}
}

func checkAttrs(t *testing.T, f *File, path string, want map[string]manifestAttr) {
	t.Helper()
	var owner interface {
		Attr(string) (*Attribute, error)
		AttrNames() ([]string, error)
	}
	if k, err := f.Root().Kind(path); err != nil {
		t.Errorf("%s: %v", path, err)
		return
	} else if k == KindDataset {
		ds, err := f.Root().Dataset(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		owner = ds
	} else {
		g, err := f.Root().Group(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		owner = g
	}
	names, err := owner.AttrNames()
	if err != nil {
		t.Errorf("%s: AttrNames: %v", path, err)
		return
	}
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("%s: attributes %v, h5py lists %v", path, names, wantNames)
	}
	for name, wa := range want {
		a, err := owner.Attr(name)
		if err != nil {
			t.Errorf("%s: attribute %s: %v", path, name, err)
			continue
		}
		switch {
		case wa.Empty:
			if a.Len() != 0 {
				t.Errorf("%s: attribute %s: %d elements, want an empty attribute", path, name, a.Len())
			}
		case wa.Strings != nil:
			got, err := a.Strings()
			if err != nil {
				t.Errorf("%s: attribute %s: %v", path, name, err)
			} else if !reflect.DeepEqual(got, wa.Strings) {
				t.Errorf("%s: attribute %s = %q, h5py reads %q", path, name, got, wa.Strings)
			}
		default:
			got, err := a.Float64s()
			if err != nil {
				t.Errorf("%s: attribute %s: %v", path, name, err)
			} else if !slices.EqualFunc(got, wa.Floats, sameFloat) {
				t.Errorf("%s: attribute %s = %v, h5py reads %v", path, name, got, wa.Floats)
			}
			if wa.Floats != nil && len(wa.Floats) == 0 {
				// Keras 1 writes "no weights" as an empty float64 array: it reads as no names.
				if s, err := a.Strings(); err != nil || len(s) != 0 {
					t.Errorf("%s: attribute %s: Strings() = %q, %v; want empty, nil", path, name, s, err)
				}
			}
		}
	}
}

// TestSuperblockVersions checks that each libver setting gives the superblock version expected,
// so the tests above really cover the structures they claim to.
func TestSuperblockVersions(t *testing.T) {
	dir := h5pyFiles(t)
	for name, want := range map[string]int{"basic.h5": 0, "latest.h5": 3, "v108.h5": 2, "track.h5": 0, "userblock.h5": 0} {
		f, err := Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.SuperblockVersion(); got != want {
			t.Errorf("%s: superblock version %d, want %d", name, got, want)
		}
		f.Close()
	}
}

// TestMultiLevelBTree checks that the group B-trees in basic.h5 really have internal nodes (the
// case the published Go reader fails on), so TestAgainstH5py covers them.
func TestMultiLevelBTree(t *testing.T) {
	dir := h5pyFiles(t)
	f, err := Open(filepath.Join(dir, "basic.h5"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, path := range []string{"/", "/many"} {
		g, err := f.Root().Group(path)
		if err != nil {
			t.Fatal(err)
		}
		d := f.decoder(g.hdr.first(msgSymbolTable).data, "test")
		btree := d.addr()
		b, err := f.read(btree, 8, "test")
		if err != nil {
			t.Fatal(err)
		}
		if level := b[5]; level < 1 {
			t.Errorf("%s: root B-tree node has level %d; want an internal node (>= 1)", path, level)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.h5"), "hdf5: nope.h5: cannot open: no such file or directory"},
		{"empty", write("empty.h5", nil), "hdf5: empty.h5: empty file (0 bytes), not an HDF5 file"},
		{"text", write("text.h5", []byte("this is not HDF5 at all, just some text\n")), "hdf5: text.h5: not an HDF5 file (no HDF5 signature found)"},
		{"signature only", write("sig.h5", signature), "hdf5: sig.h5: truncated superblock"},
		{"directory", dir, "is a directory"},
	}
	for _, c := range cases {
		_, err := Open(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

// TestTruncated cuts real files at many lengths: each cut must give an error, never a panic.
func TestTruncated(t *testing.T) {
	dir := h5pyFiles(t)
	for _, name := range []string{"basic.h5", "latest.h5"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		step := len(data)/150 + 1
		for n := 0; n < len(data); n += step {
			err := walkAll(data[:n], name)
			if err == nil {
				// Cutting off only unused space or the tail of raw data that was not read is
				// harmless; but a cut before the end of metadata must be reported.
				continue
			}
			if !strings.HasPrefix(err.Error(), "hdf5: "+name+": ") {
				t.Errorf("%s cut at %d: error %q lacks the 'hdf5: %s: ' prefix", name, n, err, name)
			}
		}
		if err := walkAll(data[:len(data)/2], name); err == nil {
			t.Errorf("%s cut in half: no error", name)
		}
	}
}

// walkAll opens an in-memory file and reads every group, attribute and dataset in it.
func walkAll(data []byte, name string) error {
	f, err := NewReader(bytesReaderAt(data), int64(len(data)), name)
	if err != nil {
		return err
	}
	var walk func(g *Group, depth int) error
	walk = func(g *Group, depth int) error {
		if depth > 8 {
			return nil
		}
		if _, err := readAllAttrs(&g.object); err != nil {
			return err
		}
		for _, c := range g.Children() {
			k, err := g.Kind(c)
			if err != nil {
				return err
			}
			switch k {
			case KindGroup:
				sub, err := g.Group(c)
				if err != nil {
					return err
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			case KindDataset:
				ds, err := g.Dataset(c)
				if err != nil {
					return err
				}
				if _, err := readAllAttrs(&ds.object); err != nil {
					return err
				}
				if ds.dt.isNumeric() && ds.Len() <= 1<<20 {
					if _, err := ds.ReadFloat32(); err != nil && !strings.Contains(err.Error(), "not supported") {
						return err
					}
				}
			}
		}
		return nil
	}
	return walk(f.Root(), 0)
}

func readAllAttrs(o *object) (int, error) {
	names, err := o.AttrNames()
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		a, err := o.Attr(n)
		if err != nil {
			return 0, err
		}
		if a.IsString() {
			_, err = a.Strings()
		} else if a.dt.isNumeric() {
			_, err = a.Float64s()
		}
		if err != nil {
			return 0, err
		}
	}
	return len(names), nil
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, errors.New("offset out of range")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, errors.New("EOF")
	}
	return n, nil
}

func TestNotFound(t *testing.T) {
	dir := h5pyFiles(t)
	f, err := Open(filepath.Join(dir, "basic.h5"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Root().Dataset("a/b/nothing")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `no "nothing" in group /a/b (it has "c")`) {
		t.Errorf("missing dataset: %v", err)
	}
	_, err = f.Root().Attr("nothing")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing attribute: %v", err)
	}
	if _, err := f.Root().Group("f32"); err == nil || !strings.Contains(err.Error(), "/f32 is a dataset, not a group") {
		t.Errorf("dataset as group: %v", err)
	}
	if _, err := f.Root().Dataset("a"); err == nil || !strings.Contains(err.Error(), "/a is a group, not a dataset") {
		t.Errorf("group as dataset: %v", err)
	}
	a, err := f.Root().Attr("ints")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Strings(); err == nil || !strings.Contains(err.Error(), "not strings") {
		t.Errorf("Strings on ints: %v", err)
	}
}
