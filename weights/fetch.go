package weights

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/transfer-learning-go/workbook/internal/atomicfile"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

// The official ImageNet checkpoints the book's keras.applications code downloads.
const (
	VGG16         = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
	VGG16NoTop    = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
	ResNet50      = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
	ResNet50NoTop = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
)

// WeightsDirEnv names the environment variable that points at a directory of stand-in
// checkpoints (same file names as the official ones). While it is set, Fetch looks there first
// and never downloads: for CI and classrooms without internet access or without the ImageNet
// weights.
const WeightsDirEnv = "WORKBOOK_WEIGHTS_DIR"

// File is a downloadable checkpoint: its cache file name, URL and md5 (hex; "" to skip checks).
type File struct {
	Name string
	URL  string
	MD5  string
}

const releases = "https://github.com/fchollet/deep-learning-models/releases/download/"

// catalog is keras-applications 1.0.8's table (vgg16.py, resnet50.py): same URLs, same md5s.
var catalog = []File{
	{VGG16, releases + "v0.1/" + VGG16, "64373286793e3c8b2b4e3219cbf3544b"},
	{VGG16NoTop, releases + "v0.1/" + VGG16NoTop, "6d6bbae143d832006294945121d1f1fc"},
	{ResNet50, releases + "v0.2/" + ResNet50, "a7b3fe01876f51b976af0dea6bc144eb"},
	{ResNet50NoTop, releases + "v0.2/" + ResNet50NoTop, "a268eb855778b3df3c7506639542a6af"},
}

// Catalog returns the official checkpoints Fetch knows.
func Catalog() []File { return append([]File(nil), catalog...) }

// Origin says where Fetch found a checkpoint.
type Origin string

const (
	OriginKerasCache Origin = "keras-cache" // already in Keras' cache (~/.keras/models)
	OriginWeightsDir Origin = WeightsDirEnv // in the WORKBOOK_WEIGHTS_DIR directory
	OriginDownloaded Origin = "downloaded"  // downloaded now into Keras' cache
)

// Source tells which weights were used: print it next to results so readers know whether they
// come from the published ImageNet weights or from stand-ins.
type Source struct {
	Name   string // the checkpoint's file name, e.g. VGG16
	Path   string // the file to open
	Origin Origin
	URL    string // the official URL (the one downloaded from, for OriginDownloaded)
	MD5    string // md5 of the file at Path, hex
	// MD5Verified is true when MD5 equals the published md5, i.e. the file is the official
	// checkpoint byte for byte. Stand-ins in WORKBOOK_WEIGHTS_DIR normally differ.
	MD5Verified bool
}

// String describes the source in one line, e.g.
// "vgg16_weights_tf_dim_ordering_tf_kernels.h5 from the Keras cache (/root/.keras/models/...), md5 verified".
func (s Source) String() string {
	var where string
	switch s.Origin {
	case OriginKerasCache:
		where = "from the Keras cache"
	case OriginWeightsDir:
		where = "from " + WeightsDirEnv
	case OriginDownloaded:
		where = "downloaded from " + s.URL + " into the Keras cache"
	default:
		where = "from " + string(s.Origin)
	}
	check := "md5 verified: the published ImageNet weights"
	if !s.MD5Verified {
		check = "md5 " + s.MD5 + " differs from the published file: stand-in weights, results will not match the book"
	}
	return fmt.Sprintf("%s %s (%s), %s", s.Name, where, s.Path, check)
}

// Option adjusts Fetch, Load or Open.
type Option func(*config)

type config struct {
	baseURL     string
	cacheDir    string
	catalog     []File
	client      *http.Client
	progress    io.Writer
	weightsDir  string
	weightsSet  bool
	tmpFallback string
	arrays      ArrayMemory
}

// WithBaseURL downloads from baseURL + "/" + name instead of the official URL (a mirror, or a
// test server).
func WithBaseURL(baseURL string) Option {
	return func(c *config) { c.baseURL = strings.TrimRight(baseURL, "/") }
}

// WithCacheDir uses dir instead of Keras' cache directory (~/.keras/models).
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithCatalog replaces the table of known checkpoints (names, URLs, md5s).
func WithCatalog(files ...File) Option {
	return func(c *config) { c.catalog = append([]File(nil), files...) }
}

// WithHTTPClient downloads with client instead of http.DefaultClient.
func WithHTTPClient(client *http.Client) Option { return func(c *config) { c.client = client } }

// WithProgress writes download progress to w instead of os.Stderr; nil silences it.
func WithProgress(w io.Writer) Option { return func(c *config) { c.progress = w } }

// WithWeightsDir acts as if WORKBOOK_WEIGHTS_DIR were set to dir ("" acts as if it were unset).
func WithWeightsDir(dir string) Option {
	return func(c *config) { c.weightsDir, c.weightsSet = dir, true }
}

// ArrayMemory returns the memory the array key of layer, of the given shape, is read into:
// exactly as many values as the shape holds, or nil to let the checkpoint allocate them.
type ArrayMemory func(layer, key string, shape []int) []float32

// WithArrayMemory makes Open (and Load) read each array straight into the memory arrays
// returns — a GoMLX tensor's own buffer, say — instead of into memory of its own that the
// caller then copies. For VGG16 that copy is 528 MB, and in a fresh process (every notebook
// cell is one) writing memory for the first time costs a page fault per page: seconds.
func WithArrayMemory(arrays ArrayMemory) Option { return func(c *config) { c.arrays = arrays } }

func newConfig(opts []Option) *config {
	c := &config{catalog: catalog, client: http.DefaultClient, progress: os.Stderr, tmpFallback: os.TempDir()}
	for _, o := range opts {
		o(c)
	}
	if !c.weightsSet {
		c.weightsDir = os.Getenv(WeightsDirEnv)
	}
	return c
}

// KerasCacheDir returns the directory Keras' get_file(cache_subdir='models') uses, creating it:
// $KERAS_HOME/models if KERAS_HOME is set, else ~/.keras/models, and /tmp/.keras/models when
// that cannot be written (Keras falls back the same way).
func KerasCacheDir() (string, error) { return kerasCacheDir(os.TempDir(), true) }

func kerasCacheDir(tmp string, create bool) (string, error) {
	base := os.Getenv("KERAS_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".keras")
		}
	}
	tried := ""
	if base != "" {
		dir := filepath.Join(base, "models")
		if !create || writableDir(dir) {
			return dir, nil
		}
		tried = dir + " and "
	}
	dir := filepath.Join(tmp, ".keras", "models")
	if create && !writableDir(dir) {
		return "", fmt.Errorf("weights: no writable Keras cache directory (tried %s%s)", tried, dir)
	}
	return dir, nil
}

// writableDir creates dir if needed and checks that a file can be created in it (a permission
// check alone would pass for root on a read-only file system).
func writableDir(dir string) bool {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

func (c *config) lookup(name string) (File, error) {
	for _, f := range c.catalog {
		if f.Name == name {
			if c.baseURL != "" {
				f.URL = c.baseURL + "/" + name
			}
			return f, nil
		}
	}
	names := make([]string, len(c.catalog))
	for i, f := range c.catalog {
		names[i] = f.Name
	}
	return File{}, fmt.Errorf("weights: unknown checkpoint %q (known: %s)", name, strings.Join(names, ", "))
}

// Fetch returns the checkpoint file called name (one of VGG16, VGG16NoTop, ResNet50,
// ResNet50NoTop), downloading it into Keras' cache if needed, and says where it came from.
//
//   - With WORKBOOK_WEIGHTS_DIR set, the file is taken from that directory, else from the Keras
//     cache if a copy there has the published md5; nothing is ever downloaded.
//   - Otherwise a cached copy whose md5 matches is used; a missing or mismatching one is
//     downloaded again (as Keras does). Downloads go to a temporary file in the cache directory
//     that is renamed into place only when complete and its md5 matches — stricter than Keras
//     2.3, which checks md5 only for files already present — so an interrupted or corrupt
//     download never leaves a file under the final name, and concurrent downloads of the same
//     file by several processes all end with a correct file.
func Fetch(ctx context.Context, name string, opts ...Option) (Source, error) {
	c := newConfig(opts)
	entry, err := c.lookup(name)
	if err != nil {
		return Source{}, err
	}
	src := Source{Name: name, URL: entry.URL}
	if c.weightsDir != "" {
		return c.fromWeightsDir(entry, src)
	}
	dir := c.cacheDir
	if dir == "" {
		if dir, err = kerasCacheDir(c.tmpFallback, true); err != nil {
			return Source{}, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return Source{}, fmt.Errorf("weights: cannot create cache directory %s: %v", dir, err)
	}
	final := filepath.Join(dir, name)
	if sum, err := FileMD5(final); err == nil {
		if entry.MD5 == "" || sum == entry.MD5 {
			src.Path, src.Origin, src.MD5, src.MD5Verified = final, OriginKerasCache, sum, entry.MD5 != ""
			return src, nil
		}
		if c.progress != nil {
			fmt.Fprintf(c.progress, "%s: md5 %s differs from the published %s (incomplete or corrupt file); downloading it again\n", final, sum, entry.MD5)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Source{}, fmt.Errorf("weights: cannot read %s: %v", final, err)
	}
	sum, err := c.download(ctx, entry, dir, final)
	if err != nil {
		return Source{}, err
	}
	src.Path, src.Origin, src.MD5, src.MD5Verified = final, OriginDownloaded, sum, entry.MD5 != ""
	return src, nil
}

func (c *config) fromWeightsDir(entry File, src Source) (Source, error) {
	p := filepath.Join(c.weightsDir, entry.Name)
	sum, err := FileMD5(p)
	if err == nil {
		src.Path, src.Origin, src.MD5, src.MD5Verified = p, OriginWeightsDir, sum, entry.MD5 != "" && sum == entry.MD5
		return src, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Source{}, fmt.Errorf("weights: cannot read %s: %v", p, err)
	}
	// Not there: a verified copy in the Keras cache is still the right file.
	cached := ""
	dir := c.cacheDir
	if dir == "" {
		dir, _ = kerasCacheDir(c.tmpFallback, false)
	}
	if dir != "" {
		cached = filepath.Join(dir, entry.Name)
		if sum, err := FileMD5(cached); err == nil && entry.MD5 != "" && sum == entry.MD5 {
			src.Path, src.Origin, src.MD5, src.MD5Verified = cached, OriginKerasCache, sum, true
			return src, nil
		}
	}
	return Source{}, fmt.Errorf("weights: %s is not in %s=%s (and the Keras cache %s has no verified copy); nothing is downloaded while %s is set",
		entry.Name, WeightsDirEnv, c.weightsDir, cached, WeightsDirEnv)
}

// staleTemp is how old a leftover partial download must be before Fetch deletes it: a live
// download writes to its file continuously, so an untouched one belongs to a killed process.
const staleTemp = time.Hour

func (c *config) download(ctx context.Context, entry File, dir, final string) (string, error) {
	fail := func(err error) error {
		return fmt.Errorf("weights: cannot download %s from %s: %v; download it elsewhere and copy it to %s",
			entry.Name, entry.URL, err, final)
	}
	removeStaleTemps(dir, entry.Name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, entry.URL, nil)
	if err != nil {
		return "", fail(err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fail(fmt.Errorf("HTTP status %s", resp.Status))
	}
	prog := newProgress(c.progress, entry, resp.ContentLength)
	var sum string
	var mismatch error
	err = atomicfile.Write(final, func(f atomicfile.File) error {
		h := md5.New()
		n, err := io.Copy(io.MultiWriter(f, h, prog), resp.Body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = fmt.Errorf("connection closed after %d of %d bytes", n, resp.ContentLength)
		}
		if err != nil {
			return err
		}
		sum = hex.EncodeToString(h.Sum(nil))
		if entry.MD5 != "" && sum != entry.MD5 {
			mismatch = fmt.Errorf("weights: downloaded %s from %s has md5 %s, the published file has %s; the download was discarded (download it elsewhere and copy it to %s)",
				entry.Name, entry.URL, sum, entry.MD5, final)
			return mismatch
		}
		return nil
	})
	switch {
	case mismatch != nil:
		prog.abort()
		return "", mismatch
	case err != nil:
		prog.abort()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fail(err)
	}
	prog.finish(entry.MD5 != "")
	rememberMD5(final, sum)
	return sum, nil
}

// removeStaleTemps deletes partial downloads of name left by killed processes.
func removeStaleTemps(dir, name string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*")) // atomicfile's temporary files
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && time.Since(st.ModTime()) > staleTemp {
			os.Remove(m)
		}
	}
}

// FileMD5 is the md5 of the file at path (hex), the digest keras.applications checks
// downloads against. Hashing VGG16's 528 MB takes about a second, and every notebook cell that
// loads the model is a new process asking again, some more than once: the sum is kept for the
// process (by path, size and modification time) and in the notebook cache (kernelext/nbcache)
// under the file's content digest, which nbcache keeps by path, size, modification time and
// inode, so an unchanged file is hashed once. The cache only saves work: when it is off, or
// cannot be read or written, the file is hashed, never reported missing.
func FileMD5(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("weights: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("weights: %s is not a regular file", path)
	}
	md5Memo.Lock()
	e, ok := md5Memo.m[path]
	md5Memo.Unlock()
	if ok && e.size == st.Size() && e.mod.Equal(st.ModTime()) {
		return e.sum, nil
	}
	sum := ""
	if nbcache.Enabled() {
		if digest, _ := nbcache.FileHash(path); digest != "" {
			sum, _ = nbcache.Cached(md5Key(digest), func() (string, error) { return hashMD5(path) })
		}
	}
	if sum == "" {
		if sum, err = hashMD5(path); err != nil {
			return "", err
		}
	}
	memoMD5(path, st, sum)
	return sum, nil
}

func hashMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("weights: %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func md5Key(digest string) string { return "weights/md5/v1/" + digest }

// Sums identifies a checkpoint file's contents: the notebook cache's content digest
// (nbcache.FileHash), by which cached predictions know their weights, and the md5 Keras checks.
type Sums struct{ Digest, MD5 string }

// FileSums returns the Sums of the file at path.
func FileSums(path string) (Sums, error) {
	digest, err := nbcache.FileHash(path)
	if err != nil {
		return Sums{}, fmt.Errorf("weights: %w", err)
	}
	sum, err := FileMD5(path)
	if err != nil {
		return Sums{}, err
	}
	return Sums{Digest: digest, MD5: sum}, nil
}

// SeedCache stores s, the Sums of the checkpoint at path, in the notebook cache folder dir, as a
// program using that folder sees the same file at seenAs (a bind mount or a hard link). A
// fresh cache — a graded submission's — would otherwise read 528 MB twice, in 1.3 s of CPU, to
// hash VGG16's checkpoint in its first model cell. It returns the entry files written.
func SeedCache(dir, seenAs, path string, s Sums) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	digestEntry, err := nbcache.StoreFileHash(dir, seenAs, info, s.Digest)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	sumEntry, err := nbcache.StoreIn(dir, md5Key(s.Digest), s.MD5)
	if err != nil {
		return []string{digestEntry}, fmt.Errorf("weights: %w", err)
	}
	return []string{digestEntry, sumEntry}, nil
}

// md5Memo is FileMD5's memory for the process.
var md5Memo struct {
	sync.Mutex
	m map[string]md5Entry
}

type md5Entry struct {
	size int64
	mod  time.Time
	sum  string
}

func memoMD5(path string, st os.FileInfo, sum string) {
	md5Memo.Lock()
	defer md5Memo.Unlock()
	if md5Memo.m == nil {
		md5Memo.m = map[string]md5Entry{}
	}
	md5Memo.m[path] = md5Entry{st.Size(), st.ModTime(), sum}
}

// rememberMD5 keeps the sum of a file just downloaded (and hashed while it arrived).
func rememberMD5(path, sum string) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	memoMD5(path, st, sum)
	if digest, _ := nbcache.FileHash(path); digest != "" {
		_, _ = nbcache.Cached(md5Key(digest), func() (string, error) { return sum, nil })
	}
}

// MustFetch is Fetch for notebook cells (background context); it panics on error.
func MustFetch(name string, opts ...Option) Source {
	s, err := Fetch(context.Background(), name, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Load fetches the named checkpoint (see Fetch) and opens it; Checkpoint.Source tells where it
// came from.
func Load(ctx context.Context, name string, opts ...Option) (*Checkpoint, error) {
	src, err := Fetch(ctx, name, opts...)
	if err != nil {
		return nil, err
	}
	c, err := Open(src.Path, opts...)
	if err != nil {
		return nil, err
	}
	c.source = &src
	return c, nil
}

// MustLoad is Load for notebook cells (background context); it panics on error.
func MustLoad(name string, opts ...Option) *Checkpoint {
	c, err := Load(context.Background(), name, opts...)
	if err != nil {
		panic(err)
	}
	return c
}
