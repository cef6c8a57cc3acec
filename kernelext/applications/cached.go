package applications

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/weights"
)

// LazyModel is a VGG16 or ResNet50 described by its Keras arguments but not built: nothing is
// read from the checkpoint until a prediction is actually computed. It exists for notebooks,
// where every cell is a new process that re-evaluates every top-level variable declared so
// far: `var classifier = applications.MustVGG16()` would read 528 MB of weights in every later
// cell, while `var classifier = applications.MustLazyVGG16()` costs nothing there, and
// PredictCached serves repeated predictions from kernelext/nbcache without building the model.
//
// The weights are resolved with the rules of the weights package (WORKBOOK_WEIGHTS_DIR first,
// then Keras' cache, downloading into it when needed) and identified by their content, so a
// cached prediction is reused exactly when the model, its weights and the input are the same.
type LazyModel struct {
	name string
	opts []Option
	o    options
	arch *Architecture

	mu      sync.Mutex
	model   *Model
	weights *WeightsInfo
	backend string
}

// LazyVGG16 describes keras.applications.vgg16.VGG16 with the given options (see VGG16)
// without building it.
func LazyVGG16(opts ...Option) (*LazyModel, error) { return NewLazy("vgg16", opts...) }

// LazyResNet50 describes keras.applications.resnet50.ResNet50 with the given options (see
// ResNet50) without building it.
func LazyResNet50(opts ...Option) (*LazyModel, error) { return NewLazy("resnet50", opts...) }

// MustLazyVGG16 is LazyVGG16 for notebook cells: it panics on error.
func MustLazyVGG16(opts ...Option) *LazyModel { return mustLazy(LazyVGG16(opts...)) }

// MustLazyResNet50 is LazyResNet50 for notebook cells: it panics on error.
func MustLazyResNet50(opts ...Option) *LazyModel { return mustLazy(LazyResNet50(opts...)) }

// NewLazy describes the model named "vgg16" or "resnet50". The options are checked now (an
// unknown pooling, a bad Until layer), as New checks them; the weights are not looked at.
func NewLazy(model string, opts ...Option) (*LazyModel, error) {
	// The same defaults and checks as newModel, which builds the model from the same options.
	o := options{weights: "imagenet", includeTop: true, dtype: dtypes.Float32}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dtype != dtypes.Float32 && o.dtype != dtypes.Float64 {
		return nil, fmt.Errorf("applications: %s: dtype must be float32 or float64, got %s", model, o.dtype)
	}
	arch, err := ArchitectureByName(model, o.includeTop, o.pooling, o.inputShape)
	if err != nil {
		return nil, err
	}
	if o.until != "" {
		if err := arch.Until(o.until); err != nil {
			return nil, err
		}
	}
	spec := o.weights
	if spec != "imagenet" && spec != "" && !strings.HasSuffix(strings.ToLower(spec), ".h5") &&
		!strings.HasSuffix(strings.ToLower(spec), ".hdf5") {
		return nil, fmt.Errorf("applications: weights must be \"imagenet\", \"\" or the path of a .h5 file, got %q", spec)
	}
	return &LazyModel{name: arch.Name, opts: append([]Option(nil), opts...), o: o, arch: arch}, nil
}

func mustLazy(l *LazyModel, err error) *LazyModel {
	if err != nil {
		panic(err)
	}
	return l
}

// Name is the Keras model name ("vgg16" or "resnet50").
func (l *LazyModel) Name() string { return l.arch.Name }

// Architecture returns the layer table the model will have.
func (l *LazyModel) Architecture() *Architecture { return l.arch }

// Summary is Keras' model.summary() text — the same as the built model's, without reading any
// weights.
func (l *LazyModel) Summary() string { return l.arch.Summary() }

// Model builds the model (reading its weights) on the first call and returns the same Model
// afterwards.
func (l *LazyModel) Model() (*Model, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.model != nil {
		return l.model, nil
	}
	m, err := New(l.name, l.opts...)
	if err != nil {
		return nil, err
	}
	l.model = m
	return m, nil
}

// MustModel is Model for notebook cells: it panics on error.
func (l *LazyModel) MustModel() *Model {
	m, err := l.Model()
	if err != nil {
		panic(err)
	}
	return m
}

// WeightsInfo says which weights a LazyModel computes with. It is found without reading the
// checkpoint's arrays: the file is located as the weights package locates it and identified by
// digests that kernelext/nbcache keeps, so asking again in a later cell costs a few stat calls.
type WeightsInfo struct {
	// Spec is the WithWeights argument: "imagenet", a file path, or "" (random initialisation).
	Spec string
	// Path is the checkpoint file; "" for random initialisation.
	Path string
	// Origin is where the "imagenet" checkpoint was found (Keras' cache, WORKBOOK_WEIGHTS_DIR,
	// or downloaded now); "" for an explicit file or random initialisation.
	Origin weights.Origin
	// Published is true when the file is the published ImageNet checkpoint byte for byte (its
	// md5 is the one keras.applications checks), i.e. predictions are the book's.
	Published bool
	// Seed is the initialisation seed with random weights.
	Seed int64
	// Digest identifies the weights in cache keys: the file's content digest
	// (nbcache.FileHash), or the seed for random weights.
	Digest string
}

// String is one line for a notebook to print next to results, saying plainly whether they
// can be compared with the book's.
func (w WeightsInfo) String() string {
	const notBook = " — predictions are NOT the book's ImageNet results"
	switch {
	case w.Path == "":
		return fmt.Sprintf("weights: random initialisation (weights=None, seed %d)%s", w.Seed, notBook)
	case w.Published:
		where := ""
		switch w.Origin {
		case weights.OriginKerasCache:
			where = " from the Keras cache"
		case weights.OriginDownloaded:
			where = ", downloaded into the Keras cache"
		case weights.OriginWeightsDir:
			where = " from $" + weights.WeightsDirEnv
		}
		return fmt.Sprintf("weights: the published ImageNet checkpoint%s, md5 verified (%s)", where, w.Path)
	case w.Origin == weights.OriginWeightsDir:
		return fmt.Sprintf("weights: stand-in checkpoint from $%s (%s)%s", weights.WeightsDirEnv, w.Path, notBook)
	}
	return fmt.Sprintf("weights: %s, not the published ImageNet checkpoint%s", w.Path, notBook)
}

// Weights locates the model's weights and says which they are. For "imagenet" it follows
// weights.Fetch: with WORKBOOK_WEIGHTS_DIR set, the file of the same name there; otherwise
// (or when it is missing there) a copy in Keras' cache with the published md5; failing both,
// Fetch itself decides — it downloads the file, or explains why it cannot.
func (l *LazyModel) Weights() (WeightsInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.weights != nil {
		return *l.weights, nil
	}
	w, err := l.resolveWeights()
	if err != nil {
		return WeightsInfo{}, err
	}
	l.weights = &w
	return w, nil
}

// MustWeights is Weights for notebook cells: it panics on error.
func (l *LazyModel) MustWeights() WeightsInfo {
	w, err := l.Weights()
	if err != nil {
		panic(err)
	}
	return w
}

func (l *LazyModel) resolveWeights() (WeightsInfo, error) {
	w := WeightsInfo{Spec: l.o.weights}
	switch l.o.weights {
	case "":
		if l.o.seed == 0 {
			// newModel draws a seed from the clock: no two runs have the same weights.
			return WeightsInfo{}, fmt.Errorf("applications: %s with random weights (WithWeights(\"\")) has no fixed identity: add WithSeed to use it here", l.name)
		}
		w.Seed = l.o.seed
		w.Digest = fmt.Sprintf("random-seed-%d", l.o.seed)
		return w, nil
	case "imagenet":
		name := imagenetFile(l.arch)
		published := publishedMD5(name)
		if dir := os.Getenv(weights.WeightsDirEnv); dir != "" {
			if p := filepath.Join(dir, name); isRegularFile(p) {
				w.Path, w.Origin = p, weights.OriginWeightsDir
			}
		}
		if w.Path == "" {
			if dir, err := weights.KerasCacheDir(); err == nil {
				p := filepath.Join(dir, name)
				if isRegularFile(p) {
					sum, err := weights.FileMD5(p)
					if err != nil {
						return WeightsInfo{}, err
					}
					if published != "" && sum == published {
						w.Path, w.Origin = p, weights.OriginKerasCache
					}
				}
			}
		}
		if w.Path == "" {
			src, err := weights.Fetch(context.Background(), name)
			if err != nil {
				return WeightsInfo{}, err
			}
			w.Path, w.Origin = src.Path, src.Origin
		}
	default:
		if !isRegularFile(l.o.weights) {
			return WeightsInfo{}, fmt.Errorf("applications: weights file %q: not found or not a regular file", l.o.weights)
		}
		w.Path = l.o.weights
	}
	sums, err := weights.FileSums(w.Path)
	if err != nil {
		return WeightsInfo{}, fmt.Errorf("applications: %w", err)
	}
	for _, f := range weights.Catalog() {
		if f.MD5 != "" && f.MD5 == sums.MD5 {
			w.Published = true
		}
	}
	w.Digest = sums.Digest
	return w, nil
}

func publishedMD5(name string) string {
	for _, f := range weights.Catalog() {
		if f.Name == name {
			return f.MD5
		}
	}
	return ""
}

func isRegularFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// predictCacheVersion is part of every PredictCached key: bump it when the computation of a
// prediction changes (graph code, preprocessing inside Predict), so old entries stop matching.
const predictCacheVersion = "v2"

// PredictCached is Predict through kernelext/nbcache: the result for the same model, weights,
// backend and input is read from disk instead of computed, and on a cache hit the model is
// never built. The key holds the model name and every option that changes the output
// (include_top, pooling, input shape, Until, dtype), the backend kind, the weights' content
// digest and the input's shape and digest. With WORKBOOK_CACHE=off it builds the model and
// predicts every time.
//
// Models whose variables come from outside (WithContext) have no identity a key could hold
// and are refused. If the result was computed but could not be stored, it is returned together
// with the error.
func (l *LazyModel) PredictCached(x *kernelext.Array) (*kernelext.Array, error) {
	if err := l.checkInput(x); err != nil {
		return nil, err
	}
	if l.o.ctx != nil {
		return nil, fmt.Errorf("applications: %s.PredictCached: a model built WithContext holds variables no cache key can identify; use Model().Predict", l.name)
	}
	if !nbcache.Enabled() {
		return l.predict(x)
	}
	key, err := l.predictKey(x)
	if err != nil {
		return nil, err
	}
	v, err := nbcache.Cached(key, func() (storedArray, error) {
		y, err := l.predict(x)
		if err != nil {
			return storedArray{}, err
		}
		return storedArray(*y), nil
	})
	if v.Shape == nil && v.Data == nil {
		return nil, err
	}
	y := kernelext.Array(v)
	return &y, err
}

// MustPredictCached is PredictCached for notebook cells: it panics on error.
func (l *LazyModel) MustPredictCached(x *kernelext.Array) *kernelext.Array {
	y, err := l.PredictCached(x)
	if err != nil {
		panic(err)
	}
	return y
}

func (l *LazyModel) predict(x *kernelext.Array) (*kernelext.Array, error) {
	m, err := l.Model()
	if err != nil {
		return nil, err
	}
	return m.Predict(x)
}

// checkInput applies Predict's checks before anything is hashed or built, so a wrong shape is
// reported at once rather than after the weights were read.
func (l *LazyModel) checkInput(x *kernelext.Array) error { return checkImages(l.arch, x) }

func (l *LazyModel) predictKey(x *kernelext.Array) (string, error) {
	w, err := l.Weights()
	if err != nil {
		return "", err
	}
	b, err := l.backendKind()
	if err != nil {
		return "", err
	}
	pureGo := b == "go"
	if l.o.backend != nil {
		pureGo = backend.IsPureGo(l.o.backend)
	}
	if onEngine, _ := enginePlan(pureGo, l.o.dtype); onEngine && !l.o.noEngine {
		b += "+engine-" + gemm.KernelName() // the engine rounds differently from GoMLX
	}
	config := fmt.Sprintf("top=%t,pooling=%s,input=%s,until=%s,dtype=%s",
		l.o.includeTop, l.o.pooling, PythonTuple(l.arch.InputShape()), l.o.until, l.o.dtype)
	return strings.Join([]string{"applications/predict", predictCacheVersion, l.name, config,
		"backend=" + b, "weights=" + w.Digest, "x=" + x.ShapeString() + "/" + nbcache.HashFloat32s(x.Data)}, "/"), nil
}

// backendKind names the backend the prediction runs on, without creating it: backends differ
// in the last bits of their results, so their predictions are cached apart.
func (l *LazyModel) backendKind() (string, error) {
	if l.o.backend != nil {
		return l.o.backend.Name(), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.backend != "" {
		return l.backend, nil
	}
	plan, err := backend.PlanFromEnvironment()
	if err != nil {
		return "", err
	}
	switch plan.Kind {
	case backend.KindGo:
		l.backend = "go"
	case backend.KindXLACPU:
		l.backend = "xla-cpu"
	case backend.KindXLACUDA:
		l.backend = "xla-cuda"
	default:
		cfg := plan.Config
		if name, _, _ := strings.Cut(cfg, ":"); name == "go" {
			cfg = "go"
		}
		l.backend = cfg
	}
	return l.backend, nil
}

// storedArray is how PredictCached stores an Array: the shape, then the values as raw
// little-endian float32s (gob would spend seconds on a large feature map).
type storedArray kernelext.Array

// MarshalBinary implements encoding.BinaryMarshaler.
func (a storedArray) MarshalBinary() ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(a.Shape)))
	for _, d := range a.Shape {
		b = binary.AppendVarint(b, int64(d))
	}
	b = binary.AppendUvarint(b, uint64(len(a.Data)))
	return nbcache.AppendFloat32s(b, a.Data), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (a *storedArray) UnmarshalBinary(b []byte) error {
	bad := errors.New("applications: stored prediction is malformed")
	rank, n := binary.Uvarint(b)
	if n <= 0 || rank > 16 {
		return bad
	}
	b = b[n:]
	shape := make([]int, rank)
	size := 1
	for i := range shape {
		d, n := binary.Varint(b)
		if n <= 0 || d < 0 {
			return bad
		}
		shape[i], size, b = int(d), size*int(d), b[n:]
	}
	count, n := binary.Uvarint(b)
	if n <= 0 || count != uint64(size) {
		return bad
	}
	data, rest, err := nbcache.Float32sFrom(b[n:], size)
	if err != nil || len(rest) != 0 {
		return bad
	}
	a.Shape, a.Data = shape, data
	return nil
}
