package training

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/internal/atomicfile"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

// FeatureCache is the fast path for training a head on a frozen base: every image goes through
// the base once, its output (e.g. VGG16's fc2 activations, 4096 values, or block5_pool's
// 7×7×512) is stored on disk, and the head trains on the stored features — an epoch then costs
// a few matrix products instead of a VGG16 forward pass per image (about 7 s per image on the
// pure-Go backend).
//
// The trade-off is augmentation. Keras' ImageDataGenerator draws a new random shear, zoom and
// flip for every image every time it is used; a cache holds fixed features. Features gives
// unaugmented features (right for validation data, and for training without augmentation);
// Augmented gives K fixed augmented copies per image, and FeatureGenerator picks one of them at
// random each time an image is drawn — K different views instead of a new one every epoch, at
// K times the extraction cost and disk space. The cache is valid only while the base is frozen:
// once any base layer trains (stage 2 of fine-tuning), train on images.
//
// Entries are keyed by everything the features depend on — Model and Weights (which the caller
// must name: a stale cache is worse than none), the image file (absolute path, size and
// modification time, or its content hash with HashContents), TargetSize, the preprocessing
// generator's settings, and for augmented copies the copy number and seed — and written
// atomically with a CRC-32C, one file per image and copy. WORKBOOK_CACHE=off (the notebooks'
// cache switch) makes every call compute afresh without reading or writing.
type FeatureCache struct {
	// Dir holds the entries; "" means the workbook's cache folder's features/ (nbcache.Subdir:
	// $WORKBOOK_CACHE_DIR/features if set; listed and cleared by `workbook cache`).
	Dir string
	// Model identifies the feature extractor, e.g. "vgg16/until=fc2".
	Model string
	// Weights identifies its weights, e.g. a weights file's content hash.
	Weights string
	// Extract maps a batch of preprocessed images (N, H, W, 3) to features (N, …), e.g. an
	// applications model's Predict.
	Extract func(x *kernelext.Array) (*kernelext.Array, error)
	// TargetSize is the (height, width) images are loaded at (Keras target_size).
	TargetSize [2]int
	// Preprocess is applied to unaugmented images: the validation generator's settings, e.g.
	// ImageDataGenerator{Rescale: 1. / 255} (its augmentation fields must be off).
	Preprocess datasets.ImageDataGenerator
	// Loader reads an image; nil means datasets.DefaultLoader (Keras' load_img + img_to_array).
	Loader datasets.Loader
	// BatchSize is the number of images per Extract call; 0 means 32.
	BatchSize int
	// HashContents keys images by a SHA-256 of their bytes instead of path, size and mtime
	// (survives copies and touch, costs a read of every file).
	HashContents bool
	// Out receives progress lines; nil means os.Stdout, io.Discard silences them.
	Out io.Writer
}

// Features returns the unaugmented features of the images at paths, one row per path.
func (c *FeatureCache) Features(paths []string) (*kernelext.Array, error) {
	if c.Preprocess.ShearRange != 0 || c.Preprocess.HorizontalFlip || c.Preprocess.VerticalFlip ||
		(c.Preprocess.ZoomRange != [2]float64{} && c.Preprocess.ZoomRange != [2]float64{1, 1}) {
		return nil, errors.New("training: FeatureCache.Preprocess must not augment (use Augmented for augmented copies)")
	}
	return c.extractAll(paths, c.Preprocess, 0, 0)
}

// Augmented returns copies arrays; array k holds, for every image, the features of one
// augmentation by aug (which includes the rescale: give it the training generator's settings)
// with parameters drawn from a NumPy generator seeded from seed, k and the image's path — so
// the same image gets the same copies whatever list it is in.
func (c *FeatureCache) Augmented(paths []string, aug datasets.ImageDataGenerator, copies int, seed int64) ([]*kernelext.Array, error) {
	if copies < 1 {
		return nil, fmt.Errorf("training: Augmented: copies %d, want ≥ 1", copies)
	}
	out := make([]*kernelext.Array, copies)
	for k := range out {
		a, err := c.extractAll(paths, aug, k+1, seed)
		if err != nil {
			return nil, err
		}
		out[k] = a
	}
	return out, nil
}

func (c *FeatureCache) dir() (string, error) {
	if c.Dir != "" {
		return c.Dir, nil
	}
	return nbcache.Subdir("features")
}

// extractAll returns the features of copy k of every image (k = 0: unaugmented).
func (c *FeatureCache) extractAll(paths []string, gen datasets.ImageDataGenerator, k int, seed int64) (*kernelext.Array, error) {
	if c.Model == "" || c.Weights == "" {
		return nil, errors.New("training: FeatureCache needs Model and Weights to key its entries")
	}
	if c.Extract == nil {
		return nil, errors.New("training: FeatureCache.Extract is nil")
	}
	if c.TargetSize[0] <= 0 || c.TargetSize[1] <= 0 {
		return nil, fmt.Errorf("training: FeatureCache.TargetSize %v: want positive (height, width)", c.TargetSize)
	}
	if len(paths) == 0 {
		return nil, errors.New("training: FeatureCache: no images")
	}
	dir, err := c.dir()
	if err != nil {
		return nil, err
	}
	out := c.Out
	if out == nil {
		out = os.Stdout
	}
	use := nbcache.Enabled()
	keys := make([]string, len(paths))
	rows := make([][]float32, len(paths))
	var rowShape []int
	var missing []int
	for i, p := range paths {
		key, err := c.entryKey(p, gen, k, seed)
		if err != nil {
			return nil, err
		}
		keys[i] = key
		if !use {
			missing = append(missing, i)
			continue
		}
		shape, data, err := readFeatureEntry(entryFile(dir, key))
		switch {
		case errors.Is(err, os.ErrNotExist):
			missing = append(missing, i)
		case err != nil:
			return nil, fmt.Errorf("training: feature cache entry for %q: %w", p, err)
		default:
			if rowShape != nil && !slices.Equal(shape, rowShape) {
				return nil, fmt.Errorf("training: feature cache entry for %q has shape %v, others %v", p, shape, rowShape)
			}
			rowShape, rows[i] = shape, data
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(out, "Extracting %s features (copy %d) of %d images (%d cached)...\n", c.Model, k, len(missing), len(paths)-len(missing))
	}
	bs := c.BatchSize
	if bs <= 0 {
		bs = 32
	}
	h, w := c.TargetSize[0], c.TargetSize[1]
	for start := 0; start < len(missing); start += bs {
		chunk := missing[start:min(start+bs, len(missing))]
		x := kernelext.NewArray(len(chunk), h, w, 3)
		if err := c.loadChunk(paths, chunk, gen, k, seed, x); err != nil {
			return nil, err
		}
		f, err := c.Extract(x)
		if err != nil {
			return nil, fmt.Errorf("training: extract features: %w", err)
		}
		if len(f.Shape) < 1 || f.Shape[0] != len(chunk) || len(f.Data) != f.Size() {
			return nil, fmt.Errorf("training: Extract returned shape %s for %d images", f.ShapeString(), len(chunk))
		}
		shape := f.Shape[1:]
		if rowShape != nil && !slices.Equal(shape, rowShape) {
			return nil, fmt.Errorf("training: Extract returned rows of shape %v, cached entries have %v (change Model or Weights?)", shape, rowShape)
		}
		rowShape = append([]int(nil), shape...)
		per := f.Size() / len(chunk)
		for j, i := range chunk {
			rows[i] = f.Data[j*per : (j+1)*per]
			if use {
				if err := writeFeatureEntry(entryFile(dir, keys[i]), rowShape, rows[i]); err != nil {
					return nil, fmt.Errorf("training: feature cache for %q: %w", paths[i], err)
				}
			}
		}
		done := min(start+bs, len(missing))
		if done == len(missing) || (done/bs)%10 == 0 {
			fmt.Fprintf(out, "  %d/%d\n", done, len(missing))
		}
	}
	per := 1
	for _, d := range rowShape {
		per *= d
	}
	res := kernelext.NewArray(append([]int{len(paths)}, rowShape...)...)
	for i, r := range rows {
		if len(r) != per {
			return nil, fmt.Errorf("training: feature cache entry for %q has %d values, want %d", paths[i], len(r), per)
		}
		copy(res.Data[i*per:], r)
	}
	return res, nil
}

// loadChunk loads, augments (copy k > 0) or just preprocesses the chunk's images into x, in
// parallel.
func (c *FeatureCache) loadChunk(paths []string, chunk []int, gen datasets.ImageDataGenerator, k int, seed int64, x *kernelext.Array) error {
	loader := c.Loader
	if loader == nil {
		loader = datasets.DefaultLoader
	}
	h, w := c.TargetSize[0], c.TargetSize[1]
	per := h * w * 3
	errs := make([]error, len(chunk))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for j, i := range chunk {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			img, err := loader(paths[i], h, w)
			if err != nil {
				errs[j] = err
				return
			}
			if len(img.Data) != per {
				errs[j] = fmt.Errorf("training: loader gave shape %s for %q, want (%d, %d, 3)", img.ShapeString(), paths[i], h, w)
				return
			}
			p := datasets.TransformParams{Zx: 1, Zy: 1}
			if k > 0 {
				p = gen.RandomTransform(datasets.NewRandomState(augmentSeed(seed, k, paths[i])))
			}
			errs[j] = gen.Apply(img.Data, h, w, 3, p, x.Data[j*per:(j+1)*per])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// augmentSeed derives the NumPy seed of copy k of an image.
func augmentSeed(seed int64, k int, path string) uint32 {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%d\x00%d\x00%s", seed, k, abs)
	return h.Sum32()
}

func (c *FeatureCache) entryKey(path string, gen datasets.ImageDataGenerator, k int, seed int64) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("training: %q: %v", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("training: image %q: %v", path, err)
	}
	var id string
	if c.HashContents {
		f, err := os.Open(abs)
		if err != nil {
			return "", fmt.Errorf("training: image %q: %v", path, err)
		}
		hh := sha256.New()
		_, err = io.Copy(hh, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("training: image %q: %v", path, err)
		}
		id = "sha256:" + hex.EncodeToString(hh.Sum(nil))
	} else {
		id = fmt.Sprintf("file:%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano())
	}
	aug := fmt.Sprintf("rescale=%x shear=%x zoom=%x,%x hflip=%t vflip=%t",
		math.Float64bits(gen.Rescale), math.Float64bits(gen.ShearRange), math.Float64bits(gen.ZoomRange[0]),
		math.Float64bits(gen.ZoomRange[1]), gen.HorizontalFlip, gen.VerticalFlip)
	if k == 0 {
		seed = 0
	}
	key := strings.Join([]string{"kernelext/training/features/v1", c.Model, c.Weights,
		fmt.Sprint(c.TargetSize[0], "x", c.TargetSize[1]), aug, fmt.Sprint(k), fmt.Sprint(seed), id}, "\x00")
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:]), nil
}

func entryFile(dir, key string) string { return filepath.Join(dir, key[:2], key+".feat") }

const featureMagic = "KXFEAT01"

func writeFeatureEntry(path string, shape []int, data []float32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	buf := make([]byte, 0, 16+4*len(shape)+4*len(data))
	buf = append(buf, featureMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(shape)))
	for _, d := range shape {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(d))
	}
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, crc32.MakeTable(crc32.Castagnoli)))
	return atomicfile.WriteFile(path, buf)
}

func readFeatureEntry(path string) ([]int, []float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	bad := func(why string) ([]int, []float32, error) {
		return nil, nil, fmt.Errorf("%s: %s (delete the file to recompute it)", path, why)
	}
	if len(b) < 16 {
		return bad("too short to be a feature cache entry (checksum missing)")
	}
	// The checksum covers every byte before it, magic included, and is checked first: a damaged
	// entry of any kind reads as a checksum mismatch. CRC-32C catches every error burst up to 32
	// bits long.
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return bad("checksum mismatch")
	}
	if string(b[:8]) != featureMagic {
		return bad("not a feature cache entry")
	}
	rank := int(binary.LittleEndian.Uint32(body[8:]))
	if rank > 8 || len(body) < 12+4*rank {
		return bad("corrupt header")
	}
	shape := make([]int, rank)
	n := 1
	for i := range shape {
		shape[i] = int(binary.LittleEndian.Uint32(body[12+4*i:]))
		n *= shape[i]
	}
	raw := body[12+4*rank:]
	if len(raw) != 4*n {
		return bad("size does not match its shape")
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return shape, data, nil
}

// FeatureGenerator yields batches of cached features and their labels for Fit, like Keras'
// NumpyArrayIterator: each pass visits every sample once in a new random order (or in order
// without Shuffle), batches of BatchSize with a smaller last one. With several copies (from
// FeatureCache.Augmented), each drawn sample takes one copy chosen at random.
type FeatureGenerator struct {
	copies    []*kernelext.Array
	labels    []float32
	batchSize int
	shuffle   bool
	rng       *rand.Rand
	order     []int
	pos       int
}

// NewFeatureGenerator builds a generator over copies (each (N, …), same shape) and labels (N).
// seed 0 draws a random seed.
func NewFeatureGenerator(copies []*kernelext.Array, labels []float32, batchSize int, shuffle bool, seed uint64) (*FeatureGenerator, error) {
	if len(copies) == 0 || copies[0] == nil || len(copies[0].Shape) < 1 {
		return nil, errors.New("training: NewFeatureGenerator: no features")
	}
	n := copies[0].Shape[0]
	for _, c := range copies[1:] {
		if c == nil || !slices.Equal(c.Shape, copies[0].Shape) {
			return nil, errors.New("training: NewFeatureGenerator: copies differ in shape")
		}
	}
	if len(labels) != n || n == 0 {
		return nil, fmt.Errorf("training: NewFeatureGenerator: %d labels for %d samples", len(labels), n)
	}
	if batchSize <= 0 {
		return nil, fmt.Errorf("training: NewFeatureGenerator: batch size %d", batchSize)
	}
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &FeatureGenerator{copies: copies, labels: labels, batchSize: batchSize, shuffle: shuffle,
		rng: rand.New(rand.NewPCG(seed, 0x6665617475726573))}, nil
}

// Len is the number of batches per pass.
func (g *FeatureGenerator) Len() int { return (len(g.labels) + g.batchSize - 1) / g.batchSize }

// Next implements Generator.
func (g *FeatureGenerator) Next() (x, y *kernelext.Array, err error) {
	n := len(g.labels)
	if g.order == nil || g.pos >= n {
		if g.shuffle {
			g.order = g.rng.Perm(n)
		} else {
			g.order = make([]int, n)
			for i := range g.order {
				g.order[i] = i
			}
		}
		g.pos = 0
	}
	idx := g.order[g.pos:min(g.pos+g.batchSize, n)]
	g.pos += len(idx)
	feat := g.copies[0]
	per := feat.Size() / n
	x = kernelext.NewArray(append([]int{len(idx)}, feat.Shape[1:]...)...)
	y = kernelext.NewArray(len(idx))
	for j, i := range idx {
		src := feat
		if len(g.copies) > 1 {
			src = g.copies[g.rng.IntN(len(g.copies))]
		}
		copy(x.Data[j*per:(j+1)*per], src.Data[i*per:(i+1)*per])
		y.Data[j] = g.labels[i]
	}
	return x, y, nil
}

// Labels converts a DirectoryIterator's class indices (Keras it.classes) to float32 labels.
func Labels(classes []int) []float32 {
	out := make([]float32, len(classes))
	for i, c := range classes {
		out[i] = float32(c)
	}
	return out
}

// MustFeatures is Features for notebook cells: it panics on error.
func (c *FeatureCache) MustFeatures(paths []string) *kernelext.Array {
	f, err := c.Features(paths)
	if err != nil {
		panic(err)
	}
	return f
}

// MustAugmented is Augmented for notebook cells: it panics on error.
func (c *FeatureCache) MustAugmented(paths []string, aug datasets.ImageDataGenerator, copies int, seed int64) []*kernelext.Array {
	f, err := c.Augmented(paths, aug, copies, seed)
	if err != nil {
		panic(err)
	}
	return f
}
