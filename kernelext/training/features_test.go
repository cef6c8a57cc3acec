package training

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
)

const sampleDir = "../../datasets/cars-flowers-sample"

// copyImages copies n images of each class of the shipped sample into a temporary folder (the
// test changes their modification times).
func copyImages(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, class := range []string{"car", "flower"} {
		src := filepath.Join(sampleDir, "training_set", class)
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries[:n] {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, class+"_"+e.Name())
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// channelStats is a stand-in feature extractor: per image, the mean and the mean square of
// each channel, rows of shape (2, 3). It counts the images it sees.
type channelStats struct{ images int }

func (c *channelStats) extract(x *kernelext.Array) (*kernelext.Array, error) {
	n, per := x.Shape[0], x.Size()/x.Shape[0]
	out := kernelext.NewArray(n, 2, 3)
	for i := 0; i < n; i++ {
		img := x.Data[i*per : (i+1)*per]
		for j, v := range img {
			out.Data[i*6+j%3] += v / float32(per/3)
			out.Data[i*6+3+j%3] += v * v / float32(per/3)
		}
	}
	c.images += n
	return out, nil
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestFeatureCache(t *testing.T) {
	t.Setenv("WORKBOOK_CACHE", "")
	paths := copyImages(t, 3)
	stats := &channelStats{}
	cache := &FeatureCache{
		Dir: t.TempDir(), Model: "channel-stats", Weights: "none", Extract: stats.extract,
		TargetSize: [2]int{16, 16}, Preprocess: datasets.ImageDataGenerator{Rescale: 1. / 255},
		BatchSize: 4, Out: io.Discard,
	}
	f1, err := cache.Features(paths)
	if err != nil {
		t.Fatal(err)
	}
	if got := f1.ShapeString(); got != "(6, 2, 3)" || stats.images != 6 {
		t.Fatalf("features %s after %d extractions, want (6, 2, 3) after 6", got, stats.images)
	}
	// Independently: load with Keras' loader, rescale by float32(1/255) as standardize does.
	for i, p := range paths {
		img, err := datasets.DefaultLoader(p, 16, 16)
		if err != nil {
			t.Fatal(err)
		}
		for j := range img.Data {
			img.Data[j] *= float32(1. / 255)
		}
		want, _ := (&channelStats{}).extract(&kernelext.Array{Shape: []int{1, 16, 16, 3}, Data: img.Data})
		if !bitsEqual(f1.Data[i*6:(i+1)*6], want.Data) {
			t.Fatalf("features of %s = %v, want %v", p, f1.Data[i*6:(i+1)*6], want.Data)
		}
	}

	// Cached: nothing extracted, same values.
	f2, err := cache.Features(paths)
	if err != nil || stats.images != 6 || !bitsEqual(f1.Data, f2.Data) {
		t.Fatalf("second call extracted %d more images (err %v)", stats.images-6, err)
	}

	// A changed file (modification time) is extracted again; the others are not.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(paths[2], later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Features(paths); err != nil || stats.images != 7 {
		t.Fatalf("after touching one file: %d more extractions (err %v), want 1", stats.images-6, err)
	}

	// Keyed by content: a copy under another name is found.
	cache.HashContents = true
	if _, err := cache.Features(paths); err != nil || stats.images != 13 {
		t.Fatalf("HashContents: %d extractions (err %v), want 6 new", stats.images-7, err)
	}
	dup := filepath.Join(filepath.Dir(paths[0]), "copy.jpg")
	b, _ := os.ReadFile(paths[0])
	if err := os.WriteFile(dup, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Features([]string{dup}); err != nil || stats.images != 13 {
		t.Fatalf("a copy was extracted again with HashContents (err %v)", err)
	}
	cache.HashContents = false

	// Another model or weights identity never sees these entries.
	other := *cache
	other.Weights = "other"
	if _, err := other.Features(paths[:1]); err != nil || stats.images != 14 {
		t.Fatalf("another weights identity reused an entry (err %v)", err)
	}

	// WORKBOOK_CACHE=off computes and stores nothing.
	files := countFiles(t, cache.Dir)
	t.Setenv("WORKBOOK_CACHE", "off")
	if _, err := cache.Features(paths); err != nil || stats.images != 20 || countFiles(t, cache.Dir) != files {
		t.Fatalf("WORKBOOK_CACHE=off: %d extractions, %d files (was %d), err %v", stats.images-14, countFiles(t, cache.Dir), files, err)
	}
	t.Setenv("WORKBOOK_CACHE", "")

	// Augmented copies: reproducible, different from each other and from the plain features.
	aug := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 20, ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
	c1, err := cache.Augmented(paths, aug, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	before := stats.images
	c2, err := cache.Augmented(paths, aug, 2, 7)
	if err != nil || stats.images != before {
		t.Fatalf("augmented copies were not cached (err %v)", err)
	}
	if !bitsEqual(c1[0].Data, c2[0].Data) || !bitsEqual(c1[1].Data, c2[1].Data) {
		t.Error("augmented copies are not reproducible")
	}
	if bitsEqual(c1[0].Data, c1[1].Data) || bitsEqual(c1[0].Data, f1.Data) {
		t.Error("augmented copies equal each other or the unaugmented features")
	}
	bad := *cache
	bad.Preprocess = aug
	if _, err := bad.Features(paths); err == nil {
		t.Error("Features with an augmenting Preprocess should be refused")
	}

	// A corrupt entry is an error naming the file, not a silent recomputation — whichever byte
	// is damaged, in the entries these two calls read (the folder also holds entries of other
	// keys, which they never open).
	plainKey, err := cache.entryKey(paths[0], cache.Preprocess, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	augKey, err := cache.entryKey(paths[1], aug, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	plain, augmented := entryFile(cache.Dir, plainKey), entryFile(cache.Dir, augKey)
	good, err := os.ReadFile(plain)
	if err != nil {
		t.Fatalf("the entry of %s is not where the cache keeps it: %v", paths[0], err)
	}
	goodAug, err := os.ReadFile(augmented)
	if err != nil {
		t.Fatalf("the augmented entry of %s is not where the cache keeps it: %v", paths[1], err)
	}
	for _, at := range []int{0, 9, 12, len(good) / 2, len(good) - 5, len(good) - 1} {
		for _, e := range []struct {
			file string
			raw  []byte
			call func() error
		}{
			{plain, good, func() error { _, err := cache.Features(paths); return err }},
			{augmented, goodAug, func() error { _, err := cache.Augmented(paths, aug, 2, 7); return err }},
		} {
			raw := slices.Clone(e.raw)
			raw[at] ^= 1
			if err := os.WriteFile(e.file, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			err := e.call()
			if err == nil {
				t.Fatalf("a flipped bit at byte %d of %s went unnoticed", at, e.file)
			}
			if !strings.Contains(err.Error(), e.file) || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("error %v should name %s and the checksum", err, e.file)
			}
			if err := os.WriteFile(e.file, e.raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A truncated entry too.
	if err := os.WriteFile(plain, good[:len(good)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Features(paths); err == nil || !strings.Contains(err.Error(), plain) {
		t.Errorf("a truncated entry: error %v, want one naming %s", err, plain)
	}
	if err := os.WriteFile(plain, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Features(paths); err != nil {
		t.Fatalf("the restored entry: %v", err)
	}

	// Identity is mandatory.
	anon := *cache
	anon.Weights = ""
	if _, err := anon.Features(paths); err == nil {
		t.Error("a cache without a weights identity should be refused")
	}
}

// TestFeatureGenerator checks passes: every sample once per pass, batches of the size with a
// smaller last one, labels aligned, copies mixed.
func TestFeatureGenerator(t *testing.T) {
	const n = 10
	a := kernelext.NewArray(n, 2)
	b := kernelext.NewArray(n, 2)
	labels := make([]float32, n)
	for i := 0; i < n; i++ {
		a.Data[2*i], a.Data[2*i+1] = float32(i), 0
		b.Data[2*i], b.Data[2*i+1] = float32(i), 1
		labels[i] = float32(i % 2)
	}
	g, err := NewFeatureGenerator([]*kernelext.Array{a, b}, labels, 4, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 3 {
		t.Fatalf("Len = %d, want 3", g.Len())
	}
	usedCopy := map[float32]bool{}
	for pass := 0; pass < 3; pass++ {
		seen := map[int]bool{}
		for s, want := range []int{4, 4, 2} {
			x, y, err := g.Next()
			if err != nil {
				t.Fatal(err)
			}
			if x.Shape[0] != want || y.Shape[0] != want {
				t.Fatalf("pass %d batch %d: %s, want %d rows", pass, s, x.ShapeString(), want)
			}
			for r := 0; r < want; r++ {
				i := int(x.Data[2*r])
				if seen[i] || y.Data[r] != float32(i%2) {
					t.Fatalf("pass %d: sample %d twice or label %v", pass, i, y.Data[r])
				}
				seen[i] = true
				usedCopy[x.Data[2*r+1]] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("pass %d saw %d samples", pass, len(seen))
		}
	}
	if !usedCopy[0] || !usedCopy[1] {
		t.Error("only one of the two copies was ever used")
	}
}

// TestSequenceGenerator drives a real DirectoryIterator the way fit_generator's enqueuer does:
// one pass = Len() batches covering every image once, then a new pass.
func TestSequenceGenerator(t *testing.T) {
	it, err := datasets.ImageDataGenerator{Rescale: 1. / 255}.FlowFromDirectory(filepath.Join(sampleDir, "test_set"),
		datasets.FlowOptions{TargetSize: [2]int{8, 8}, BatchSize: 5, ClassMode: datasets.Binary, Seed: datasets.Seed(3), Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for _, shuffle := range []bool{false, true} {
		g := NewSequenceGenerator(it, shuffle)
		if g.Len() != 7 {
			t.Fatalf("Len = %d, want ceil(32/5) = 7", g.Len())
		}
		for pass := 0; pass < 2; pass++ {
			samples, ones := 0, 0
			for s := 0; s < g.Len(); s++ {
				x, y, err := g.Next()
				if err != nil {
					t.Fatal(err)
				}
				if x.Shape[1] != 8 || x.Shape[3] != 3 || y.Shape[0] != x.Shape[0] {
					t.Fatalf("batch shapes %s, %s", x.ShapeString(), y.ShapeString())
				}
				samples += x.Shape[0]
				for _, v := range y.Data {
					ones += int(v)
				}
			}
			if samples != 32 || ones != 16 {
				t.Errorf("shuffle=%v pass %d: %d samples, %d flowers; want 32 and 16", shuffle, pass, samples, ones)
			}
		}
		g.Close()
	}
}
