package datasets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// ClassMode says what labels a batch carries (Keras class_mode).
type ClassMode string

const (
	// Categorical labels are one-hot rows (b, K) — Keras' default.
	Categorical ClassMode = "categorical"
	// Binary labels are the class indices as float32, shape (b,). Keras does not check the
	// class count: one class gives all-zero labels and three classes give 0, 1, 2, neither of
	// which a sigmoid can fit; CheckBinary reports both.
	Binary ClassMode = "binary"
	// Sparse labels are the class indices as float32, shape (b,), for any number of classes.
	Sparse ClassMode = "sparse"
	// Input labels are a copy of the images (autoencoders).
	Input ClassMode = "input"
	// NoLabels yields images only (Keras class_mode=None); Batch.Y is nil.
	NoLabels ClassMode = "none"
)

// ErrorPolicy says what a batch does when some of its files cannot be loaded.
type ErrorPolicy int

const (
	// FailBatch returns the batch's *BatchError (naming every unreadable file) instead of the
	// batch. The iterator has moved past that batch, so a training loop can log the error and
	// call Next again. Keras raises and ends the run instead.
	FailBatch ErrorPolicy = iota
	// SkipImage drops the unreadable images from their batch (which gets smaller), lists them
	// in Batch.Skipped and writes one line per file to FlowOptions.Out. Random parameters stay
	// aligned: the dropped images' draws were made anyway, so the other images are augmented
	// exactly as without the bad files. A batch whose every image fails still returns a
	// *BatchError.
	SkipImage
)

// Loader reads one image file as a (height, width, 3) float32 array of values 0..255 in RGB
// order — Keras' load_img(path, target_size=(height, width)) followed by img_to_array.
type Loader func(path string, height, width int) (*kernelext.Array, error)

// FlowOptions are flow_from_directory's arguments. The zero value means Keras' defaults:
// target_size=(256, 256), batch_size=32, class_mode='categorical', shuffle=True, seed=None.
type FlowOptions struct {
	// TargetSize is (height, width); every image is resized to it (Pillow NEAREST).
	TargetSize [2]int
	// BatchSize is the number of images per batch; the last batch of a pass is smaller.
	BatchSize int
	// ClassMode selects the labels; "" means Categorical.
	ClassMode ClassMode
	// Classes, if set, lists the class folders to use, in index order (Keras classes=);
	// otherwise every sub-folder is a class, sorted by name.
	Classes []string
	// NoShuffle keeps files in folder order (Keras shuffle=False).
	NoShuffle bool
	// Seed makes shuffling and augmentation reproducible (Keras seed=): before every batch the
	// generator is reseeded with Seed + batches seen so far, as Keras reseeds NumPy's global
	// generator. Build it with the Seed function. nil draws a random seed.
	Seed *int64
	// FollowLinks descends into symbolic links to folders (Keras follow_links).
	FollowLinks bool

	// Out receives "Found N images belonging to K classes." and the SkipImage reports;
	// nil means os.Stdout, io.Discard silences it.
	Out io.Writer
	// Workers is the number of goroutines decoding and augmenting images; 0 means
	// runtime.GOMAXPROCS(0). Results do not depend on it.
	Workers int
	// Prefetch is how many batches Next and Sequence prepare ahead of the consumer; 0 means 2.
	Prefetch int
	// OnError is the policy for unreadable files (default FailBatch).
	OnError ErrorPolicy
	// Loader reads one file; nil means DefaultLoader (Pillow-exact load_img + img_to_array).
	Loader Loader
}

// Seed returns a pointer to n, for FlowOptions.Seed.
func Seed(n int64) *int64 { return &n }

// Batch is one batch as Keras yields it, plus what produced it.
type Batch struct {
	// X holds the images, (b, height, width, 3) float32, augmented and rescaled.
	X *kernelext.Array
	// Y holds the labels (see ClassMode); nil for NoLabels.
	Y *kernelext.Array
	// Index are the rows' positions in Filepaths().
	Index []int
	// Params are the rows' random transform parameters.
	Params []TransformParams
	// Skipped lists the images dropped under SkipImage.
	Skipped []*ImageError
}

// ImageError is one file that could not become an array.
type ImageError struct {
	Path  string
	Index int // position in Filepaths()
	Err   error
}

func (e *ImageError) Error() string { return "datasets: " + e.describe() }

// describe names the file once: loader errors such as kernelext's already quote the path.
func (e *ImageError) describe() string {
	msg := fmt.Sprint(e.Err)
	if strings.Contains(msg, strconv.Quote(e.Path)) {
		return msg
	}
	return fmt.Sprintf("image %q: %s", e.Path, msg)
}
func (e *ImageError) Unwrap() error { return e.Err }

// BatchError reports the unreadable files of one batch.
type BatchError struct {
	// Seen is the number of batches produced before this one (Keras' total_batches_seen).
	Seen   int64
	Size   int // images the batch should have had
	Images []*ImageError
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "datasets: batch %d: %d of %d images unreadable", e.Seen, len(e.Images), e.Size)
	for _, ie := range e.Images {
		b.WriteString("\n  " + ie.describe())
	}
	return b.String()
}

// Unwrap gives errors.Is/As access to every file's error.
func (e *BatchError) Unwrap() []error {
	out := make([]error, len(e.Images))
	for i, ie := range e.Images {
		out[i] = ie
	}
	return out
}

// ErrClosed is returned by an iterator used after Close.
var ErrClosed = errors.New("datasets: iterator is closed")

// DirectoryIterator is the Go twin of Keras' DirectoryIterator (what flow_from_directory
// returns). Used with a seed, it yields the images, labels, order and augmentations that Keras
// yields with the same seed, whether driven like Python's next(it) (Next) or like a
// keras.utils.Sequence (Batch, Sequence, OnEpochEnd). Both styles share Keras' counters, as in
// Keras.
//
// Images are decoded and augmented by a pool of goroutines while the caller trains on the
// previous batch; all random numbers are drawn in order beforehand, so the output does not
// depend on the number of workers or on timing. Its methods are safe for concurrent use.
// Close releases the goroutines (an unreachable iterator is closed automatically).
type DirectoryIterator struct {
	c *core
}

// core holds everything the background goroutines touch, so that the DirectoryIterator handle
// can become unreachable and be cleaned up while they run.
type core struct {
	// Immutable after construction.
	dir          string
	gen          ImageDataGenerator
	h, w         int
	batchSize    int
	mode         ClassMode
	shuffle      bool
	seeded       bool
	seed         int64
	classes      []string
	classIndices map[string]int
	filenames    []string
	filepaths    []string
	labels       []int
	loader       Loader
	policy       ErrorPolicy
	out          io.Writer
	workers      int
	prefetch     int

	mu        sync.Mutex
	committed iterState // Keras' state as the consumer has seen it
	stream    *stream   // the running prefetch producer, if any
	tasks     chan task
	closed    bool
}

// iterState is Keras' mutable iterator state plus NumPy's global generator. It is copied by
// value to take snapshots (index arrays are never modified in place, only replaced).
type iterState struct {
	rs         RandomState
	total      int64 // total_batches_seen
	batchIndex int
	indexArray []int
}

// FlowFromDirectory is ImageDataGenerator.flow_from_directory: it indexes dir (one sub-folder
// per class) and prints "Found N images belonging to K classes." to opts.Out.
func (g ImageDataGenerator) FlowFromDirectory(dir string, opts FlowOptions) (*DirectoryIterator, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	c := &core{dir: dir, gen: g, h: opts.TargetSize[0], w: opts.TargetSize[1], batchSize: opts.BatchSize,
		mode: opts.ClassMode, shuffle: !opts.NoShuffle, loader: opts.Loader, policy: opts.OnError,
		out: opts.Out, workers: opts.Workers, prefetch: opts.Prefetch}
	if c.h == 0 && c.w == 0 {
		c.h, c.w = 256, 256
	}
	if c.h <= 0 || c.w <= 0 {
		return nil, fmt.Errorf("datasets: TargetSize %v: want positive (height, width)", opts.TargetSize)
	}
	if c.batchSize == 0 {
		c.batchSize = 32
	}
	if c.batchSize < 0 {
		return nil, fmt.Errorf("datasets: BatchSize %d: want > 0", opts.BatchSize)
	}
	if c.mode == "" {
		c.mode = Categorical
	}
	switch c.mode {
	case Categorical, Binary, Sparse, Input, NoLabels:
	default:
		return nil, fmt.Errorf("datasets: ClassMode %q: want categorical, binary, sparse, input or none", opts.ClassMode)
	}
	if c.policy != FailBatch && c.policy != SkipImage {
		return nil, fmt.Errorf("datasets: OnError %d: want FailBatch or SkipImage", opts.OnError)
	}
	if c.workers == 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	if c.prefetch == 0 {
		c.prefetch = 2
	}
	if c.workers < 0 || c.prefetch < 0 {
		return nil, fmt.Errorf("datasets: Workers %d, Prefetch %d: want ≥ 0", opts.Workers, opts.Prefetch)
	}
	if c.loader == nil {
		c.loader = DefaultLoader
	}
	if c.out == nil {
		c.out = os.Stdout
	}
	if opts.Seed != nil {
		if *opts.Seed < 0 || *opts.Seed > math.MaxUint32 {
			return nil, fmt.Errorf("datasets: Seed %d: NumPy accepts seeds in [0, 2**32-1]", *opts.Seed)
		}
		c.seeded, c.seed = true, *opts.Seed
		c.committed.rs.Seed(uint32(c.seed))
	} else {
		c.committed.rs.Seed(rand.Uint32())
	}

	if opts.Classes != nil {
		c.classes = slices.Clone(opts.Classes)
		seen := map[string]bool{}
		for _, name := range c.classes {
			if seen[name] {
				return nil, fmt.Errorf("datasets: Classes lists %q twice", name)
			}
			seen[name] = true
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil || !st.IsDir() {
				// Keras' os.walk would silently find no images; a typo deserves an error.
				return nil, fmt.Errorf("datasets: class folder %q not found in %q", name, dir)
			}
		}
	} else {
		classes, err := discoverClasses(dir)
		if err != nil {
			return nil, err
		}
		c.classes = classes
	}
	c.classIndices = make(map[string]int, len(c.classes))
	for i, name := range c.classes {
		c.classIndices[name] = i
		files, err := listClassFiles(filepath.Join(dir, name), opts.FollowLinks)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			rel := filepath.Join(name, f)
			c.filenames = append(c.filenames, rel)
			c.filepaths = append(c.filepaths, filepath.Join(dir, rel))
			c.labels = append(c.labels, i)
		}
	}
	fmt.Fprintf(c.out, "Found %d images belonging to %d classes.\n", len(c.filenames), len(c.classes))

	it := &DirectoryIterator{c: c}
	runtime.AddCleanup(it, func(c *core) { c.close() }, c)
	return it, nil
}

// MustFlowFromDirectory is FlowFromDirectory for notebook cells: it panics on error.
func (g ImageDataGenerator) MustFlowFromDirectory(dir string, opts FlowOptions) *DirectoryIterator {
	it, err := g.FlowFromDirectory(dir, opts)
	if err != nil {
		panic(err)
	}
	return it
}

// Directory is the folder the iterator reads.
func (it *DirectoryIterator) Directory() string { return it.c.dir }

// Samples is the number of images (Keras it.samples / it.n).
func (it *DirectoryIterator) Samples() int { return len(it.c.filenames) }

// Len is the number of batches per pass, ceil(Samples/BatchSize) (Keras len(it)).
func (it *DirectoryIterator) Len() int {
	return (len(it.c.filenames) + it.c.batchSize - 1) / it.c.batchSize
}

// BatchSize is the configured batch size.
func (it *DirectoryIterator) BatchSize() int { return it.c.batchSize }

// TargetSize is (height, width).
func (it *DirectoryIterator) TargetSize() [2]int { return [2]int{it.c.h, it.c.w} }

// ClassMode is the label mode in use.
func (it *DirectoryIterator) ClassMode() ClassMode { return it.c.mode }

// ClassNames are the classes in index order.
func (it *DirectoryIterator) ClassNames() []string { return slices.Clone(it.c.classes) }

// ClassIndices maps class name to index (Keras it.class_indices).
func (it *DirectoryIterator) ClassIndices() map[string]int {
	m := make(map[string]int, len(it.c.classIndices))
	for k, v := range it.c.classIndices {
		m[k] = v
	}
	return m
}

// Filenames are the image paths relative to Directory, in index order (Keras it.filenames).
func (it *DirectoryIterator) Filenames() []string { return slices.Clone(it.c.filenames) }

// Filepaths are the image paths including Directory (Keras it.filepaths).
func (it *DirectoryIterator) Filepaths() []string { return slices.Clone(it.c.filepaths) }

// Labels are the class indices of all images in index order (Keras it.classes).
func (it *DirectoryIterator) Labels() []int { return slices.Clone(it.c.labels) }

// CheckBinary returns an error unless the iterator has exactly two classes: with
// class_mode='binary' Keras accepts any count, but labels are then all 0 (one class) or exceed 1
// (three or more), which binary cross-entropy cannot learn from.
func (it *DirectoryIterator) CheckBinary() error {
	if n := len(it.c.classes); n != 2 {
		return fmt.Errorf("datasets: %q has %d classes %q; binary labels need exactly 2", it.c.dir, n, it.c.classes)
	}
	return nil
}

// Next returns the next batch, like Python's next(it): batches run through a shuffled pass,
// the last one smaller, then a new pass starts with a new permutation. With a seed, NumPy is
// reseeded with seed + batches seen before each batch, as Keras does. Later batches are being
// prepared in the background meanwhile.
//
// An error (see ErrorPolicy) still consumes the batch: the next call moves on.
func (it *DirectoryIterator) Next() (*Batch, error) {
	c := it.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if len(c.filenames) == 0 {
		// Keras fails here with ZeroDivisionError.
		return nil, fmt.Errorf("datasets: %q holds no images (classes %q)", c.dir, c.classes)
	}
	if c.stream == nil || c.stream.owner != nextOwner {
		c.stopStream()
		c.startStream(nextOwner, func(st *iterState) (*plan, bool) { return c.planNext(st), true })
	}
	return c.finish(<-c.stream.out)
}

// MustNext is Next for notebook cells: it panics on error.
func (it *DirectoryIterator) MustNext() *Batch {
	b, err := it.Next()
	if err != nil {
		panic(err)
	}
	return b
}

// Batch returns batch i of the current pass, like Keras' it[i] (the keras.utils.Sequence
// interface fit_generator uses): with a seed, NumPy is reseeded with seed + batches seen; the
// permutation is drawn on first use and replaced only by OnEpochEnd. It decodes in parallel
// but prepares nothing ahead; use Sequence for that.
func (it *DirectoryIterator) Batch(i int) (*Batch, error) {
	c := it.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.stopStream()
	st := c.committed
	p := c.planGetItem(&st, i)
	if p.err != nil {
		return nil, p.err
	}
	c.startPool()
	c.dispatch(context.Background(), p)
	return c.finish(p)
}

// Sequence yields Batch(order[0]), Batch(order[1]), … — the calls a Keras Sequence consumer
// makes in one pass (fit_generator's OrderedEnqueuer shuffles the batch order with Python's
// random.shuffle) — preparing the following batches in the background. Stopping the loop
// early leaves the iterator exactly as if only the batches received had been requested.
func (it *DirectoryIterator) Sequence(order []int) iter.Seq2[*Batch, error] {
	order = slices.Clone(order)
	return func(yield func(*Batch, error) bool) {
		c := it.c
		owner := new(int) // identity of this loop's producer
		for k := 0; k < len(order); k++ {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				yield(nil, ErrClosed)
				return
			}
			if c.stream == nil || c.stream.owner != owner {
				c.stopStream()
				rest, pos := order[k:], 0
				c.startStream(owner, func(st *iterState) (*plan, bool) {
					if pos == len(rest) {
						return nil, false
					}
					pos++
					return c.planGetItem(st, rest[pos-1]), true
				})
			}
			b, err := c.finish(<-c.stream.out)
			c.mu.Unlock()
			if !yield(b, err) {
				break
			}
		}
		c.mu.Lock()
		if c.stream != nil && c.stream.owner == owner {
			c.stopStream()
		}
		c.mu.Unlock()
	}
}

// OnEpochEnd draws a new permutation, as Keras' on_epoch_end (called by the Sequence
// consumers after each pass).
func (it *DirectoryIterator) OnEpochEnd() {
	c := it.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopStream()
	c.setIndexArray(&c.committed)
}

// Reset makes the next Next call start a new pass (Keras' reset()).
func (it *DirectoryIterator) Reset() {
	c := it.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopStream()
	c.committed.batchIndex = 0
}

// Close stops the background goroutines; later calls return ErrClosed.
func (it *DirectoryIterator) Close() error {
	it.c.close()
	return nil
}

func (c *core) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.stopStream()
	if c.tasks != nil {
		close(c.tasks)
	}
	c.closed = true
}

// --- planning: Keras' index bookkeeping and the random draws, in Keras' order ---

// plan is one batch: chosen indices and parameters (drawn sequentially), then decoded by the
// pool into x.
type plan struct {
	seen    int64
	idx     []int
	params  []TransformParams
	after   iterState // Keras' state once this batch has been produced
	err     error     // planning failed; nothing was dispatched
	x       *kernelext.Array
	slotErr []error
	wg      sync.WaitGroup
}

func (c *core) reseed(st *iterState) error {
	v := c.seed + st.total
	if v > math.MaxUint32 {
		return fmt.Errorf("datasets: seed %d + %d batches seen exceeds NumPy's seed range [0, 2**32-1] (Keras raises ValueError here)", c.seed, st.total)
	}
	st.rs.Seed(uint32(v))
	return nil
}

// setIndexArray is Keras' _set_index_array: arange(n), or permutation(n) when shuffling.
func (c *core) setIndexArray(st *iterState) {
	n := len(c.filenames)
	if c.shuffle {
		st.indexArray, _ = st.rs.Permutation(n) // n ≥ 0: cannot fail
		return
	}
	st.indexArray = make([]int, n)
	for i := range st.indexArray {
		st.indexArray[i] = i
	}
}

// planNext is one step of Keras' Iterator._flow_index generator followed by the per-image
// get_random_transform draws of _get_batches_of_transformed_samples.
func (c *core) planNext(st *iterState) *plan {
	n, b := len(c.filenames), c.batchSize
	seen := st.total
	if c.seeded {
		if err := c.reseed(st); err != nil {
			return &plan{err: err}
		}
	}
	if st.batchIndex == 0 {
		c.setIndexArray(st)
	}
	cur := (st.batchIndex * b) % n
	if n > cur+b {
		st.batchIndex++
	} else {
		st.batchIndex = 0
	}
	st.total++
	return c.drawParams(st, seen, st.indexArray[cur:min(cur+b, n)])
}

// planGetItem is Keras' Iterator.__getitem__(i) followed by the per-image draws.
func (c *core) planGetItem(st *iterState, i int) *plan {
	n, b := len(c.filenames), c.batchSize
	if l := (n + b - 1) / b; i >= l || i < 0 {
		return &plan{err: fmt.Errorf("datasets: batch %d requested, but the sequence has length %d", i, l)}
	}
	seen := st.total
	if c.seeded {
		if err := c.reseed(st); err != nil {
			return &plan{err: err}
		}
	}
	st.total++
	if st.indexArray == nil {
		c.setIndexArray(st)
	}
	return c.drawParams(st, seen, st.indexArray[b*i:min(b*(i+1), n)])
}

func (c *core) drawParams(st *iterState, seen int64, idx []int) *plan {
	p := &plan{seen: seen, idx: idx, params: make([]TransformParams, len(idx))}
	for i := range idx {
		p.params[i] = c.gen.RandomTransform(&st.rs)
	}
	p.after = *st
	return p
}

// --- the worker pool and the prefetching producer ---

type task struct {
	p   *plan
	i   int
	ctx context.Context
}

// nextOwner marks the producer started by Next.
var nextOwner = new(int)

type stream struct {
	owner  any
	cancel context.CancelFunc
	out    chan *plan
	exited chan struct{}
}

// startPool starts the workers on first use. Called with c.mu held.
func (c *core) startPool() {
	if c.tasks != nil {
		return
	}
	c.tasks = make(chan task)
	for w := 0; w < max(c.workers, 1); w++ {
		go func(tasks <-chan task) {
			for t := range tasks {
				if t.ctx.Err() != nil {
					t.p.slotErr[t.i] = t.ctx.Err()
				} else {
					t.p.slotErr[t.i] = c.process(t.p, t.i)
				}
				t.p.wg.Done()
			}
		}(c.tasks)
	}
}

// dispatch queues the batch's images for the workers; false if ctx ended first.
func (c *core) dispatch(ctx context.Context, p *plan) bool {
	p.x = kernelext.NewArray(len(p.idx), c.h, c.w, 3)
	p.slotErr = make([]error, len(p.idx))
	p.wg.Add(len(p.idx))
	for i := range p.idx {
		select {
		case c.tasks <- task{p: p, i: i, ctx: ctx}:
		case <-ctx.Done():
			for j := i; j < len(p.idx); j++ {
				p.slotErr[j] = ctx.Err()
				p.wg.Done()
			}
			return false
		}
	}
	return true
}

// process loads and augments one image into its slot of the batch. A panic in a loader is
// turned into that image's error: one odd file must not end a long training run.
func (c *core) process(p *plan, i int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loader panicked: %v", r)
		}
	}()
	arr, err := c.loader(c.filepaths[p.idx[i]], c.h, c.w)
	if err != nil {
		return err
	}
	if arr == nil || !slices.Equal(arr.Shape, []int{c.h, c.w, 3}) || len(arr.Data) != c.h*c.w*3 {
		var shape []int
		if arr != nil {
			shape = arr.Shape
		}
		return fmt.Errorf("loader returned shape %v, want (%d, %d, 3)", shape, c.h, c.w)
	}
	n := c.h * c.w * 3
	return c.gen.Apply(arr.Data, c.h, c.w, 3, p.params[i], p.x.Data[i*n:(i+1)*n])
}

// startStream runs a producer that plans batches with planFn (on its own copy of the committed
// state), queues their images and hands them over in order. Called with c.mu held.
func (c *core) startStream(owner any, planFn func(st *iterState) (*plan, bool)) {
	c.startPool()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{owner: owner, cancel: cancel, out: make(chan *plan, c.prefetch), exited: make(chan struct{})}
	st := c.committed
	go func() {
		defer close(s.exited)
		for {
			p, ok := planFn(&st)
			if !ok {
				return
			}
			if p.err == nil && !c.dispatch(ctx, p) {
				return
			}
			select {
			case s.out <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	c.stream = s
}

// stopStream cancels the producer and forgets what it planned beyond the batches the consumer
// received: the committed state is the truth. Called with c.mu held.
func (c *core) stopStream() {
	if c.stream == nil {
		return
	}
	c.stream.cancel()
	<-c.stream.exited
	c.stream = nil
}

// finish waits for a planned batch, commits its state and builds the Batch. Called with c.mu
// held.
func (c *core) finish(p *plan) (*Batch, error) {
	if p.err != nil {
		c.stopStream()
		return nil, p.err
	}
	p.wg.Wait()
	c.committed = p.after
	return c.assemble(p)
}

func (c *core) assemble(p *plan) (*Batch, error) {
	var failed []*ImageError
	for i, e := range p.slotErr {
		if e != nil {
			failed = append(failed, &ImageError{Path: c.filepaths[p.idx[i]], Index: p.idx[i], Err: e})
		}
	}
	if len(failed) > 0 && (c.policy == FailBatch || len(failed) == len(p.idx)) {
		return nil, &BatchError{Seen: p.seen, Size: len(p.idx), Images: failed}
	}
	b := &Batch{X: p.x, Index: slices.Clone(p.idx), Params: p.params, Skipped: failed}
	if len(failed) > 0 {
		n := c.h * c.w * 3
		keep := len(p.idx) - len(failed)
		x := kernelext.NewArray(keep, c.h, c.w, 3)
		b.Index, b.Params = b.Index[:0], nil
		k := 0
		for i, e := range p.slotErr {
			if e != nil {
				continue
			}
			copy(x.Data[k*n:(k+1)*n], p.x.Data[i*n:(i+1)*n])
			b.Index = append(b.Index, p.idx[i])
			b.Params = append(b.Params, p.params[i])
			k++
		}
		b.X = x
		for _, ie := range failed {
			fmt.Fprintf(c.out, "datasets: skipped %s\n", ie.describe())
		}
	}
	rows := len(b.Index)
	switch c.mode {
	case Binary, Sparse:
		b.Y = kernelext.NewArray(rows)
		for i, j := range b.Index {
			b.Y.Data[i] = float32(c.labels[j])
		}
	case Categorical:
		b.Y = kernelext.NewArray(rows, len(c.classes))
		for i, j := range b.Index {
			b.Y.Data[i*len(c.classes)+c.labels[j]] = 1
		}
	case Input:
		b.Y = b.X.Clone()
	}
	return b, nil
}
