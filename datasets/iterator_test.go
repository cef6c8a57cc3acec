package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// pngLoader reads the lossless test PNGs without resizing (they are already the target size),
// converting to RGB as Pillow's convert('RGB') does for L and RGB images.
func pngLoader(path string, h, w int) (*kernelext.Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	if b.Dy() != h || b.Dx() != w {
		return nil, fmt.Errorf("test loader: %q is %dx%d, want %dx%d", path, b.Dy(), b.Dx(), h, w)
	}
	a := kernelext.NewArray(h, w, 3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			o := (y*w + x) * 3
			a.Data[o], a.Data[o+1], a.Data[o+2] = float32(c.R), float32(c.G), float32(c.B)
		}
	}
	return a, nil
}

type flowGolden struct {
	TargetSize [2]int `json:"target_size"`
	Cases      []flowCase
}

type flowCase struct {
	Name         string
	Message      string
	Filenames    []string
	ClassIndices map[string]int `json:"class_indices"`
	Calls        [][]any
	Batches      []flowBatch
}

type flowBatch struct {
	Index  []int
	Params []flowParams
	X      string
	Y      string
	YShape []int `json:"y_shape"`
}

type flowParams struct {
	Shear, Zx, Zy string
	Fh, Fv        bool
}

func loadFlowGolden(t *testing.T) *flowGolden {
	t.Helper()
	raw, err := os.ReadFile("testdata/flow_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g flowGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// flowConfig rebuilds the generator and options gen_flow.py used for each case.
func flowConfig(name string, target [2]int) (ImageDataGenerator, FlowOptions) {
	book := ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}
	o := FlowOptions{TargetSize: target, Loader: pngLoader}
	switch name {
	case "book_binary_next":
		o.ClassMode, o.BatchSize, o.Seed = Binary, 5, Seed(42)
		return book, o
	case "rescale_only_categorical":
		o.ClassMode, o.BatchSize, o.Seed = Categorical, 4, Seed(7)
		return ImageDataGenerator{Rescale: 1. / 255}, o
	case "sequence_vflip":
		o.BatchSize, o.Seed = 5, Seed(3) // categorical by default, as in Keras
		return ImageDataGenerator{ShearRange: 10, ZoomRange: [2]float64{0.7, 1.4}, HorizontalFlip: true, VerticalFlip: true}, o
	case "no_shuffle":
		o.ClassMode, o.BatchSize, o.Seed, o.NoShuffle = Binary, 5, Seed(5), true
		return book, o
	case "batch_larger_than_data":
		o.ClassMode, o.BatchSize, o.Seed = Binary, 20, Seed(1)
		return book, o
	}
	panic("unknown case " + name)
}

func TestFlowMatchesKeras(t *testing.T) {
	g := loadFlowGolden(t)
	for _, workers := range []int{1, 3} {
		for _, cs := range g.Cases {
			t.Run(fmt.Sprintf("%s/workers=%d", cs.Name, workers), func(t *testing.T) {
				gen, opts := flowConfig(cs.Name, g.TargetSize)
				var out bytes.Buffer
				opts.Out, opts.Workers = &out, workers
				it, err := gen.FlowFromDirectory("testdata/flow", opts)
				if err != nil {
					t.Fatal(err)
				}
				defer it.Close()
				if got := strings.TrimSpace(out.String()); got != cs.Message {
					t.Errorf("message %q, Keras %q", got, cs.Message)
				}
				if fn := it.Filenames(); !slices.Equal(fn, cs.Filenames) {
					t.Fatalf("filenames\n%q\nKeras\n%q", fn, cs.Filenames)
				}
				ci := it.ClassIndices()
				if len(ci) != len(cs.ClassIndices) {
					t.Fatalf("class indices %v, Keras %v", ci, cs.ClassIndices)
				}
				for k, v := range cs.ClassIndices {
					if ci[k] != v {
						t.Fatalf("class indices %v, Keras %v", ci, cs.ClassIndices)
					}
				}
				bi := 0
				for _, call := range cs.Calls {
					var b *Batch
					switch call[0] {
					case "next":
						b, err = it.Next()
					case "get":
						b, err = it.Batch(int(call[1].(float64)))
					case "epoch_end":
						it.OnEpochEnd()
						continue
					}
					if err != nil {
						t.Fatalf("batch %d: %v", bi, err)
					}
					compareBatch(t, bi, b, cs.Batches[bi])
					bi++
				}
			})
		}
	}
}

func compareBatch(t *testing.T, bi int, b *Batch, w flowBatch) {
	t.Helper()
	if !slices.Equal(b.Index, w.Index) {
		t.Fatalf("batch %d: indices %v, Keras %v", bi, b.Index, w.Index)
	}
	for i, p := range w.Params {
		want := TransformParams{Shear: parseF(t, p.Shear), Zx: parseF(t, p.Zx), Zy: parseF(t, p.Zy), FlipHorizontal: p.Fh, FlipVertical: p.Fv}
		if b.Params[i] != want {
			t.Fatalf("batch %d image %d: params %+v, Keras %+v", bi, i, b.Params[i], want)
		}
	}
	wantX := decodeF32(t, w.X)
	if len(wantX) != len(b.X.Data) {
		t.Fatalf("batch %d: %d values, Keras %d", bi, len(b.X.Data), len(wantX))
	}
	for i := range wantX {
		// The affine step matches SciPy to ≤ 1 ulp; the float32 rescale product keeps it at 1.
		if d := ulpDiff(b.X.Data[i], wantX[i]); d > 1 {
			t.Fatalf("batch %d value %d: Go %v, Keras %v (%d ulp)", bi, i, b.X.Data[i], wantX[i], d)
		}
	}
	if !slices.Equal(b.Y.Shape, w.YShape) {
		t.Fatalf("batch %d: y shape %v, Keras %v", bi, b.Y.Shape, w.YShape)
	}
	if !slices.Equal(b.Y.Data, decodeF32(t, w.Y)) {
		t.Fatalf("batch %d: labels %v, Keras %v", bi, b.Y.Data, decodeF32(t, w.Y))
	}
}

// TestSequenceMatchesKeras drives the Sequence case through the prefetching Sequence method,
// and checks that breaking out early leaves the state as if only received batches were asked.
func TestSequenceMatchesKeras(t *testing.T) {
	g := loadFlowGolden(t)
	i := slices.IndexFunc(g.Cases, func(c flowCase) bool { return c.Name == "sequence_vflip" })
	if i < 0 {
		t.Fatal("golden lacks sequence_vflip")
	}
	cs := g.Cases[i]
	gen, opts := flowConfig(cs.Name, g.TargetSize)
	opts.Out = io.Discard
	it := gen.MustFlowFromDirectory("testdata/flow", opts)
	defer it.Close()
	bi := 0
	check := func(b *Batch, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		compareBatch(t, bi, b, cs.Batches[bi])
		bi++
	}
	for b, err := range it.Sequence([]int{2, 0, 1}) {
		check(b, err)
	}
	it.OnEpochEnd()
	// Take one batch from a sequence of three, then continue with plain Batch calls: the
	// prefetched-but-unreceived batches must not have advanced anything.
	for b, err := range it.Sequence([]int{1, 2, 0}) {
		check(b, err)
		break
	}
	check(it.Batch(2))
	check(it.Batch(0))
	if bi != len(cs.Batches) {
		t.Fatalf("compared %d batches of %d", bi, len(cs.Batches))
	}
}

// TestNextInterleavedWithBatch: Keras' next() and it[i] share total_batches_seen and the index
// array; prefetching must not change what an interleaved program sees.
func TestNextInterleavedWithBatch(t *testing.T) {
	gen := ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}
	opts := FlowOptions{TargetSize: [2]int{6, 5}, BatchSize: 3, Seed: Seed(11), Loader: pngLoader, Out: io.Discard}
	run := func(prefetch int) [][]int {
		opts.Prefetch = prefetch
		it := gen.MustFlowFromDirectory("testdata/flow", opts)
		defer it.Close()
		var got [][]int
		for _, step := range []string{"n", "n", "b1", "n", "e", "n", "b0", "n", "n", "n"} {
			var b *Batch
			var err error
			switch step {
			case "n":
				b, err = it.Next()
			case "b0":
				b, err = it.Batch(0)
			case "b1":
				b, err = it.Batch(1)
			case "e":
				it.OnEpochEnd()
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, b.Index)
			got = append(got, []int{int(b.Params[0].Shear * 1e9)})
		}
		return got
	}
	// Model: the same program computed without any lookahead, by planning on a plain state.
	ref := func() [][]int {
		it := gen.MustFlowFromDirectory("testdata/flow", opts)
		defer it.Close()
		c := it.c
		st := c.committed
		var got [][]int
		for _, step := range []string{"n", "n", "b1", "n", "e", "n", "b0", "n", "n", "n"} {
			var p *plan
			switch step {
			case "n":
				p = c.planNext(&st)
			case "b0":
				p = c.planGetItem(&st, 0)
			case "b1":
				p = c.planGetItem(&st, 1)
			case "e":
				c.setIndexArray(&st)
				continue
			}
			got = append(got, p.idx, []int{int(p.params[0].Shear * 1e9)})
		}
		return got
	}()
	for _, pf := range []int{1, 2, 5} {
		got := run(pf)
		if fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Fatalf("prefetch %d:\n%v\nsequential model:\n%v", pf, got, ref)
		}
	}
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	gen := ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}
	collect := func(workers, prefetch int) []float32 {
		it := gen.MustFlowFromDirectory("testdata/flow", FlowOptions{TargetSize: [2]int{6, 5}, BatchSize: 4,
			Seed: Seed(123), Loader: pngLoader, Out: io.Discard, Workers: workers, Prefetch: prefetch})
		defer it.Close()
		var all []float32
		for i := 0; i < 9; i++ {
			all = append(all, it.MustNext().X.Data...)
		}
		return all
	}
	want := collect(1, 1)
	for _, c := range [][2]int{{2, 1}, {4, 3}, {8, 8}} {
		if got := collect(c[0], c[1]); !slices.Equal(got, want) {
			t.Fatalf("workers=%d prefetch=%d gives different batches", c[0], c[1])
		}
	}
}

// badTree makes a class tree with a corrupt JPEG, a text file named .png and an empty class.
func badTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"a/1.png", "a/2.png", "a/3.png", "b/1.png"} {
		copyFile(t, filepath.Join("testdata/flow/car/c1.png"), filepath.Join(dir, p))
	}
	must(t, os.WriteFile(filepath.Join(dir, "a", "bad.png"), []byte("this is not a PNG"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "b", "truncated.png"), []byte("\x89PNG\r\n\x1a\n\x00\x00"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "c_empty"), 0o755))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	must(t, os.WriteFile(dst, b, 0o644))
}

func TestUnreadableFilesFailBatch(t *testing.T) {
	dir := badTree(t)
	var out bytes.Buffer
	it, err := ImageDataGenerator{}.FlowFromDirectory(dir, FlowOptions{TargetSize: [2]int{6, 5}, BatchSize: 6,
		ClassMode: Binary, NoShuffle: true, Loader: pngLoader, Out: &out})
	must(t, err)
	defer it.Close()
	if got := out.String(); got != "Found 6 images belonging to 3 classes.\n" {
		t.Fatalf("message %q", got)
	}
	if err := it.CheckBinary(); err == nil {
		t.Fatal("three classes: CheckBinary must complain")
	}
	_, err = it.Next()
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want *BatchError, got %v", err)
	}
	if len(be.Images) != 2 || be.Size != 6 || !strings.Contains(err.Error(), "bad.png") || !strings.Contains(err.Error(), "truncated.png") {
		t.Fatalf("error does not name both files: %v", err)
	}
	// The run goes on: the next pass works the same way, and a batch without bad files works.
	it2 := ImageDataGenerator{}.MustFlowFromDirectory(dir, FlowOptions{TargetSize: [2]int{6, 5}, BatchSize: 2,
		ClassMode: Binary, NoShuffle: true, Loader: pngLoader, Out: io.Discard})
	defer it2.Close()
	var oks, fails int
	for i := 0; i < 6; i++ {
		if _, err := it2.Next(); err != nil {
			fails++
		} else {
			oks++
		}
	}
	// Batches [a/1 a/2] [a/3 a/bad] [b/1 b/truncated], twice.
	if oks != 2 || fails != 4 {
		t.Fatalf("oks=%d fails=%d", oks, fails)
	}
}

func TestUnreadableFilesSkip(t *testing.T) {
	dir := badTree(t)
	var out bytes.Buffer
	it := ImageDataGenerator{Rescale: 0.5}.MustFlowFromDirectory(dir, FlowOptions{TargetSize: [2]int{6, 5}, BatchSize: 6,
		ClassMode: Categorical, NoShuffle: true, Loader: pngLoader, Out: &out, OnError: SkipImage})
	defer it.Close()
	b, err := it.Next()
	must(t, err)
	if b.X.Shape[0] != 4 || !slices.Equal(b.Y.Shape, []int{4, 3}) || len(b.Skipped) != 2 {
		t.Fatalf("x %v y %v skipped %d", b.X.Shape, b.Y.Shape, len(b.Skipped))
	}
	if !slices.Equal(b.Index, []int{0, 1, 2, 4}) {
		t.Fatalf("kept %v", b.Index)
	}
	if !strings.Contains(out.String(), "skipped") || !strings.Contains(out.String(), "bad.png") {
		t.Fatalf("report %q", out.String())
	}
	want, _ := pngLoader("testdata/flow/car/c1.png", 6, 5)
	for i, v := range want.Data {
		if b.X.Data[3*90+i] != v*0.5 {
			t.Fatal("rows not compacted correctly")
		}
	}
	wantY := []float32{1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0}
	if !slices.Equal(b.Y.Data, wantY) {
		t.Fatalf("labels %v", b.Y.Data)
	}
}

func TestLoaderPanicAndShape(t *testing.T) {
	dir := badTree(t)
	var calls atomic.Int32
	loader := func(path string, h, w int) (*kernelext.Array, error) {
		if calls.Add(1) == 1 {
			panic("decoder bug")
		}
		return kernelext.NewArray(h, w, 1), nil
	}
	it := ImageDataGenerator{}.MustFlowFromDirectory(dir, FlowOptions{TargetSize: [2]int{6, 5}, BatchSize: 2,
		NoShuffle: true, Loader: loader, Out: io.Discard, Workers: 1})
	defer it.Close()
	_, err := it.Next()
	if err == nil || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "want (6, 5, 3)") {
		t.Fatalf("got %v", err)
	}
}

func TestEdgeCases(t *testing.T) {
	gen := ImageDataGenerator{}
	quiet := FlowOptions{TargetSize: [2]int{6, 5}, Loader: pngLoader, Out: io.Discard}

	// Empty classes only: Keras prints Found 0 and fails on the first batch.
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "x"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "y"), 0o755))
	var out bytes.Buffer
	o := quiet
	o.Out = &out
	it := gen.MustFlowFromDirectory(dir, o)
	if out.String() != "Found 0 images belonging to 2 classes.\n" || it.Len() != 0 {
		t.Fatalf("%q len %d", out.String(), it.Len())
	}
	if _, err := it.Next(); err == nil {
		t.Fatal("Next on an empty data set must fail")
	}
	if _, err := it.Batch(0); err == nil {
		t.Fatal("Batch(0) on an empty data set must fail")
	}
	it.Close()
	if _, err := it.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}

	// One class, binary: Keras allows it; labels are all 0.
	one := t.TempDir()
	copyFile(t, "testdata/flow/car/c1.png", filepath.Join(one, "only", "a.png"))
	o = quiet
	o.ClassMode = Binary
	it = gen.MustFlowFromDirectory(one, o)
	b := it.MustNext()
	if !slices.Equal(b.Y.Data, []float32{0}) || it.CheckBinary() == nil {
		t.Fatalf("one class: labels %v", b.Y.Data)
	}
	it.Close()

	// Batch(i) range, like Keras' ValueError.
	it = gen.MustFlowFromDirectory("testdata/flow", quiet)
	if _, err := it.Batch(it.Len()); err == nil {
		t.Fatal("Batch(Len()) must fail")
	}
	if _, err := it.Batch(-1); err == nil {
		t.Fatal("Batch(-1) must fail")
	}
	it.Close()

	// Missing directory, explicit classes, bad options.
	if _, err := gen.FlowFromDirectory(filepath.Join(dir, "nope"), quiet); err == nil {
		t.Fatal("missing directory must fail")
	}
	o = quiet
	o.Classes = []string{"flower", "car"}
	it = gen.MustFlowFromDirectory("testdata/flow", o)
	if ci := it.ClassIndices(); ci["flower"] != 0 || ci["car"] != 1 || it.Samples() != 10 {
		t.Fatalf("explicit classes: %v, %d samples", ci, it.Samples())
	}
	it.Close()
	o.Classes = []string{"car", "truck"}
	if _, err := gen.FlowFromDirectory("testdata/flow", o); err == nil {
		t.Fatal("unknown explicit class must fail")
	}
	for _, bad := range []FlowOptions{{BatchSize: -1}, {TargetSize: [2]int{-1, 3}}, {ClassMode: "multi"}, {Seed: Seed(-1)}, {Seed: Seed(1 << 32)}, {OnError: 7}} {
		bad.Out = io.Discard
		if _, err := gen.FlowFromDirectory("testdata/flow", bad); err == nil {
			t.Errorf("%+v: want error", bad)
		}
	}

	// Seed overflow: NumPy rejects seeds ≥ 2**32.
	o = quiet
	o.Seed = Seed(1<<32 - 2)
	o.BatchSize = 5
	it = gen.MustFlowFromDirectory("testdata/flow", o)
	it.MustNext()
	it.MustNext()
	if _, err := it.Next(); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Fatalf("want a seed range error, got %v", err)
	}
	it.Close()

	// NoLabels and Input modes.
	o = quiet
	o.ClassMode = NoLabels
	it = gen.MustFlowFromDirectory("testdata/flow", o)
	if b := it.MustNext(); b.Y != nil {
		t.Fatal("NoLabels must give nil Y")
	}
	it.Close()
	o.ClassMode = Input
	it = gen.MustFlowFromDirectory("testdata/flow", o)
	if b := it.MustNext(); !slices.Equal(b.Y.Data, b.X.Data) || &b.Y.Data[0] == &b.X.Data[0] {
		t.Fatal("Input mode must give a copy of X")
	}
	it.Close()
}

func TestCheckSameClasses(t *testing.T) {
	quiet := FlowOptions{TargetSize: [2]int{6, 5}, Loader: pngLoader, Out: io.Discard}
	a := ImageDataGenerator{}.MustFlowFromDirectory("testdata/flow", quiet)
	defer a.Close()
	b := ImageDataGenerator{}.MustFlowFromDirectory("testdata/flow", quiet)
	defer b.Close()
	if err := CheckSameClasses(a, b); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []string{"Bus", "car", "flower", ".ipynb_checkpoints"} {
		must(t, os.MkdirAll(filepath.Join(dir, c), 0o755))
	}
	v := ImageDataGenerator{}.MustFlowFromDirectory(dir, quiet)
	defer v.Close()
	err := CheckSameClasses(a, v)
	if err == nil || !strings.Contains(err.Error(), `".hidden"`) || !strings.Contains(err.Error(), `".ipynb_checkpoints"`) {
		t.Fatalf("got %v", err)
	}
}

// TestSymlinks follows os.walk: links to files count, links to folders are not descended
// unless FollowLinks, a link to a folder at class level is a class.
func TestSymlinks(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	copyFile(t, "testdata/flow/car/c1.png", filepath.Join(dir, "a", "x.png"))
	copyFile(t, "testdata/flow/car/c1.png", filepath.Join(other, "inner", "y.png"))
	must(t, os.Symlink(filepath.Join(dir, "a", "x.png"), filepath.Join(dir, "a", "link.png")))
	must(t, os.Symlink(filepath.Join(other, "inner"), filepath.Join(dir, "a", "linkdir")))
	must(t, os.Symlink(filepath.Join(other, "inner"), filepath.Join(dir, "b")))
	quiet := FlowOptions{TargetSize: [2]int{6, 5}, Loader: pngLoader, Out: io.Discard}
	it := ImageDataGenerator{}.MustFlowFromDirectory(dir, quiet)
	defer it.Close()
	want := []string{"a/link.png", "a/x.png", "b/y.png"}
	if got := it.Filenames(); !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	quiet.FollowLinks = true
	it2 := ImageDataGenerator{}.MustFlowFromDirectory(dir, quiet)
	defer it2.Close()
	want = []string{"a/link.png", "a/x.png", "a/linkdir/y.png", "b/y.png"}
	if got := it2.Filenames(); !slices.Equal(got, want) {
		t.Fatalf("FollowLinks: got %q want %q", got, want)
	}
}

// errorsOnly is a compile-time check that BatchError exposes its files to errors.As.
var _ interface{ Unwrap() []error } = (*BatchError)(nil)

// TestSampleFlowMatchesKeras runs the real loader (Pillow-exact JPEG decoding and NEAREST
// resize) and the book's augmentation on the shipped sample, against gen_sample_flow.py.
func TestSampleFlowMatchesKeras(t *testing.T) {
	raw, err := os.ReadFile("testdata/sample_flow_golden.json")
	must(t, err)
	var g flowGolden
	must(t, json.Unmarshal(raw, &g))
	for _, cs := range g.Cases {
		t.Run(cs.Name, func(t *testing.T) {
			var gen ImageDataGenerator
			opts := FlowOptions{TargetSize: g.TargetSize, ClassMode: Binary}
			dir := "cars-flowers-sample/training_set"
			switch cs.Name {
			case "train_book":
				gen = ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}
				opts.BatchSize, opts.Seed = 6, Seed(42)
			case "test_rescale":
				gen = ImageDataGenerator{Rescale: 1. / 255}
				opts.BatchSize, opts.NoShuffle = 5, true
				dir = "cars-flowers-sample/test_set"
			default:
				t.Fatalf("unknown case %s", cs.Name)
			}
			var out bytes.Buffer
			opts.Out = &out
			it, err := gen.FlowFromDirectory(dir, opts)
			must(t, err)
			defer it.Close()
			if strings.TrimSpace(out.String()) != cs.Message || !slices.Equal(it.Filenames(), cs.Filenames) {
				t.Fatalf("message %q / filenames differ from Keras %q", out.String(), cs.Message)
			}
			for bi := range cs.Batches {
				b, err := it.Next()
				must(t, err)
				compareBatch(t, bi, b, cs.Batches[bi])
			}
		})
	}
}

// TestDefaultLoaderBadFile: a text file with an image extension is reported by name through
// the real loader.
func TestDefaultLoaderBadFile(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, "cars-flowers-sample/test_set/car/"+firstFile(t, "cars-flowers-sample/test_set/car"), filepath.Join(dir, "car", "good.jpg"))
	must(t, os.WriteFile(filepath.Join(dir, "car", "notes.jpg"), []byte("plain text"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "car", "empty.JPEG"), nil, 0o644))
	it := ImageDataGenerator{}.MustFlowFromDirectory(dir, FlowOptions{TargetSize: [2]int{8, 8}, NoShuffle: true, Out: io.Discard})
	defer it.Close()
	_, err := it.Next()
	if err == nil || !strings.Contains(err.Error(), "notes.jpg") || !strings.Contains(err.Error(), "empty.JPEG") || strings.Contains(err.Error(), "good.jpg") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}
