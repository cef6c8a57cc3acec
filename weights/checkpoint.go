// Package weights reads Keras HDF5 weight checkpoints and fetches the official ImageNet
// checkpoints into Keras' own cache (~/.keras/models), so that the Go models in this workbook
// load exactly the files the book's Keras code loads.
//
// Open normalizes both layouts Keras has written — Keras 1 (the four official VGG16/ResNet50
// files: datasets such as block1_conv1_W_1:0 and bn_conv1_running_std:0) and Keras 2
// (model.save/save_weights: model_weights/<layer>/<layer>/kernel:0) — to layers holding arrays
// under the keys "kernel", "bias", "gamma", "beta", "moving_mean" and "moving_variance".
// Model builders then ask for each array with Expect, which names the layer and both shapes when
// the checkpoint does not fit the model, and says so plainly when the file is for another
// architecture altogether.
package weights

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/transfer-learning-go/workbook/weights/internal/hdf5"
)

// Canonical array keys, as Keras 2 names a layer's weights.
const (
	Kernel         = "kernel"
	Bias           = "bias"
	Gamma          = "gamma"
	Beta           = "beta"
	MovingMean     = "moving_mean"
	MovingVariance = "moving_variance"
)

// Tensor is a dense row-major float32 array as stored in the checkpoint: conv kernels are
// (kh, kw, in, out), dense kernels (in, out), biases and batch-norm vectors (C,).
type Tensor struct {
	Shape []int
	Data  []float32
}

// Size is the number of elements.
func (t *Tensor) Size() int { return len(t.Data) }

// ShapeString formats the shape as Python prints a tuple: "(3, 3, 64, 128)", "(64,)".
func (t *Tensor) ShapeString() string { return tuple(t.Shape) }

func tuple(dims []int) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = fmt.Sprint(d)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// Layer is one layer of a checkpoint.
type Layer struct {
	Name string
	// Arrays holds the layer's weights under canonical keys (Kernel, Bias, Gamma, Beta,
	// MovingMean, MovingVariance); a weight with any other name keeps its own name with the
	// layer prefix and the ":0"/"_1" suffixes removed. Weightless layers (pooling, activation,
	// ...) have an empty map.
	Arrays map[string]*Tensor
	// Keys lists the keys of Arrays in the file's weight_names order, the order Keras'
	// load_weights assigns them in.
	Keys []string
	// Datasets maps each key to the HDF5 path it was read from, for messages.
	Datasets map[string]string
}

// Checkpoint is a Keras weight checkpoint, loaded into memory.
type Checkpoint struct {
	path string
	file string
	// Layout is "keras1" (root attribute layer_names, no keras_version: the official ImageNet
	// files) or "keras2" (keras_version present; model.save files keep the weights under
	// model_weights/).
	Layout string
	// KerasVersion is the keras_version attribute, or "1" when absent (which is how Keras
	// itself treats such files).
	KerasVersion string
	// Backend is the backend attribute ("tensorflow", "theano", ...), or "" when absent.
	Backend string

	layers   []*Layer
	byName   map[string]*Layer
	warnings []string
	source   *Source
	arrays   ArrayMemory // where arrays are read into while loading; nil: allocated here
}

// Open reads the Keras HDF5 checkpoint at path into memory. Of the options only
// WithArrayMemory applies (the others are Fetch's).
func Open(path string, opts ...Option) (*Checkpoint, error) {
	c := &Checkpoint{path: path, file: filepath.Base(path), arrays: newConfig(opts).arrays}
	f, err := hdf5.Open(path)
	if err != nil {
		return nil, c.wrap(err)
	}
	defer f.Close()
	if err := c.load(f); err != nil {
		return nil, err
	}
	return c, nil
}

// MustOpen is Open for notebook cells: it panics on error.
func MustOpen(path string) *Checkpoint {
	c, err := Open(path)
	if err != nil {
		panic(err)
	}
	return c
}

// errorf builds an error "weights: <file>: <reason>".
func (c *Checkpoint) errorf(format string, args ...any) error {
	return &Error{File: c.file, Reason: fmt.Sprintf(format, args...)}
}

// wrap turns a reader error into "weights: <file>: <reason>" (the reader already names the file).
func (c *Checkpoint) wrap(err error) error {
	var he *hdf5.Error
	if errors.As(err, &he) {
		msg := strings.TrimPrefix(err.Error(), "hdf5: "+he.File+": ")
		return &Error{File: c.file, Reason: msg, Err: err}
	}
	return &Error{File: c.file, Reason: err.Error(), Err: err}
}

// Error is the error type for problems with a checkpoint file; it prints as
// "weights: <file>: <reason>". Err is the HDF5 reader's error, if that is the cause.
type Error struct {
	File   string
	Reason string
	Err    error
}

func (e *Error) Error() string { return "weights: " + e.File + ": " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// Path is the file the checkpoint was read from.
func (c *Checkpoint) Path() string { return c.path }

// Source tells where the file came from when the checkpoint was loaded with Load (nil after Open).
func (c *Checkpoint) Source() *Source { return c.source }

// Layers lists all layers in the file's layer_names order, weightless ones included.
func (c *Checkpoint) Layers() []*Layer { return c.layers }

// Layer returns the named layer.
func (c *Checkpoint) Layer(name string) (*Layer, bool) {
	l, ok := c.byName[name]
	return l, ok
}

// Warnings lists problems that do not stop loading, such as NaN or infinite weights.
func (c *Checkpoint) Warnings() []string { return c.warnings }

// NumParams is the total number of values in all arrays.
func (c *Checkpoint) NumParams() int {
	n := 0
	for _, l := range c.layers {
		for _, t := range l.Arrays {
			n += t.Size()
		}
	}
	return n
}

// String summarizes the checkpoint, e.g.
// "vgg16_weights_tf_dim_ordering_tf_kernels.h5: VGG16, Keras 1 layout, 23 layers (16 with weights), 138,357,544 parameters".
func (c *Checkpoint) String() string {
	withW := 0
	for _, l := range c.layers {
		if len(l.Arrays) > 0 {
			withW++
		}
	}
	arch := c.Architecture()
	if arch == "" {
		arch = "unknown architecture"
	}
	return fmt.Sprintf("%s: %s, %s layout, %d layers (%d with weights), %s parameters",
		c.file, arch, map[string]string{"keras1": "Keras 1", "keras2": "Keras 2"}[c.Layout],
		len(c.layers), withW, commas(c.NumParams()))
}

func commas(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// stringsAttr reads a string-list attribute, joining the pieces "name0", "name1", ... Keras
// writes when the list exceeds HDF5's 64 KiB attribute limit. ok is false if it is absent.
func stringsAttr(g *hdf5.Group, name string) (vals []string, ok bool, err error) {
	if g.HasAttr(name) {
		a, err := g.Attr(name)
		if err != nil {
			return nil, true, err
		}
		vals, err := a.Strings()
		return vals, true, err
	}
	for i := 0; g.HasAttr(fmt.Sprintf("%s%d", name, i)); i++ {
		a, err := g.Attr(fmt.Sprintf("%s%d", name, i))
		if err != nil {
			return nil, true, err
		}
		part, err := a.Strings()
		if err != nil {
			return nil, true, err
		}
		vals = append(vals, part...)
		ok = true
	}
	return vals, ok, nil
}

func (c *Checkpoint) load(f *hdf5.File) error {
	root := f.Root()
	wg := root
	c.Layout = "keras1"
	if root.Has("model_weights") {
		g, err := root.Group("model_weights")
		if err != nil {
			return c.wrap(err)
		}
		wg = g
	}
	names, ok, err := stringsAttr(wg, "layer_names")
	if err != nil {
		return c.wrap(err)
	}
	if !ok {
		hint := ""
		if root.Has("layers") && root.Has("vars") || root.Has("_layer_checkpoint_dependencies") {
			hint = "; it looks like a Keras 3 .weights.h5 file, which this package does not read"
		}
		return c.errorf("not a Keras weights file: no layer_names attribute in %s (top-level members: %s)%s",
			wg.Path(), listShort(root.Children(), 6), hint)
	}
	for _, src := range []*hdf5.Group{wg, root} {
		if v, ok, _ := stringsAttrOrScalar(src, "keras_version"); ok && c.KerasVersion == "" {
			c.KerasVersion = v
		}
		if v, ok, _ := stringsAttrOrScalar(src, "backend"); ok && c.Backend == "" {
			c.Backend = v
		}
	}
	if c.KerasVersion == "" {
		c.KerasVersion = "1"
	} else {
		c.Layout = "keras2"
	}
	c.byName = map[string]*Layer{}
	for _, name := range names {
		if err := c.loadLayer(wg, name); err != nil {
			return err
		}
	}
	return nil
}

// stringsAttrOrScalar reads a one-string attribute such as keras_version.
func stringsAttrOrScalar(g *hdf5.Group, name string) (string, bool, error) {
	vals, ok, err := stringsAttr(g, name)
	if err != nil || !ok || len(vals) == 0 {
		return "", ok && err == nil && len(vals) > 0, err
	}
	return vals[0], true, nil
}

var indexSuffix = regexp.MustCompile(`(_\d+)?(:\d+)?$`)

// aliases maps Keras 1 names to Keras 2 names. Keras 1's BatchNormalization called the
// variance running_std, but it always held the variance (it was passed to
// batch_normalization as var).
var aliases = map[string]string{
	"W":               Kernel,
	"b":               Bias,
	"kernel":          Kernel,
	"bias":            Bias,
	"gamma":           Gamma,
	"beta":            Beta,
	"running_mean":    MovingMean,
	"running_std":     MovingVariance,
	"moving_mean":     MovingMean,
	"moving_variance": MovingVariance,
}

// canonicalKey maps a weight name to a key: "block1_conv1_W_1:0" in layer "block1_conv1" gives
// "kernel", "bn_conv1_running_std:0" gives "moving_variance", "block1_conv1/kernel:0" gives
// "kernel".
func canonicalKey(layer, weightName string) string {
	base := weightName
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if i := strings.LastIndexByte(base, ':'); i >= 0 {
		base = base[:i]
	}
	rest := strings.TrimPrefix(base, layer+"_")
	if k, ok := aliases[rest]; ok {
		return k
	}
	rest = indexSuffix.ReplaceAllString(rest, "")
	if k, ok := aliases[rest]; ok {
		return k
	}
	// The prefix is not the layer's name (a renamed layer): match on the suffix alone.
	stripped := indexSuffix.ReplaceAllString(base, "")
	for _, suffix := range []string{"running_mean", "running_std", "moving_mean", "moving_variance", "kernel", "bias", "gamma", "beta", "W", "b"} {
		if stripped == suffix || strings.HasSuffix(stripped, "_"+suffix) {
			if suffix == "kernel" && (strings.HasSuffix(stripped, "depthwise_kernel") || strings.HasSuffix(stripped, "pointwise_kernel") || strings.HasSuffix(stripped, "recurrent_kernel")) {
				break
			}
			return aliases[suffix]
		}
	}
	return rest
}

// owner returns the layer a weight belongs to, from the last directory part of its name:
// "block1_conv1/kernel:0" gives "block1_conv1"; a Keras 1 name without "/" gives "".
func owner(weightName string) string {
	i := strings.LastIndexByte(weightName, '/')
	if i < 0 {
		return ""
	}
	p := weightName[:i]
	if j := strings.LastIndexByte(p, '/'); j >= 0 {
		p = p[j+1:]
	}
	return p
}

func (c *Checkpoint) loadLayer(wg *hdf5.Group, name string) error {
	if _, dup := c.byName[name]; dup {
		return c.errorf("layer_names lists %q twice", name)
	}
	g, err := wg.Group(name)
	if err != nil {
		return c.wrap(err)
	}
	wnames, ok, err := stringsAttr(g, "weight_names")
	if err != nil {
		return c.wrap(err)
	}
	if !ok {
		return c.errorf("layer group %s has no weight_names attribute (not a Keras weights file?)", g.Path())
	}
	// A layer whose weights live under several different sub-layer names is a nested model
	// (e.g. a VGG16 base inside a Sequential): its sub-layers become layers of their own.
	owners := map[string]bool{}
	for _, w := range wnames {
		owners[owner(w)] = true
	}
	nested := len(owners) > 1
	layer := &Layer{Name: name, Arrays: map[string]*Tensor{}, Datasets: map[string]string{}}
	c.add(layer)
	for _, w := range wnames {
		target := layer
		if nested {
			sub := owner(w)
			if sub == "" {
				sub = name
			}
			if t, ok := c.byName[sub]; ok {
				target = t
			} else {
				target = &Layer{Name: sub, Arrays: map[string]*Tensor{}, Datasets: map[string]string{}}
				c.add(target)
			}
		}
		prefix := target.Name
		if !nested {
			if o := owner(w); o != "" {
				prefix = o
			}
		}
		key := canonicalKey(prefix, w)
		if prev, dup := target.Datasets[key]; dup {
			return c.errorf("layer %q: weights %q and %q both map to %q", target.Name, prev, g.Path()+"/"+w, key)
		}
		ds, err := g.Dataset(w)
		if err != nil {
			return c.wrap(err)
		}
		data, err := c.read(ds, target.Name, key)
		if err != nil {
			return err
		}
		t := &Tensor{Shape: ds.Shape(), Data: data}
		if t.Shape == nil {
			t.Shape = []int{}
		}
		target.Arrays[key] = t
		target.Keys = append(target.Keys, key)
		target.Datasets[key] = ds.Path()
		if nan, inf := countNonFinite(data); nan+inf > 0 {
			c.warnings = append(c.warnings, fmt.Sprintf("layer %q %s (%s): %d NaN and %d infinite values of %d",
				target.Name, key, ds.Path(), nan, inf, len(data)))
		}
	}
	return nil
}

// read reads a dataset into the memory c.arrays provides for it, or into new memory.
func (c *Checkpoint) read(ds *hdf5.Dataset, layer, key string) ([]float32, error) {
	if c.arrays != nil {
		if dst := c.arrays(layer, key, ds.Shape()); dst != nil {
			if len(dst) != ds.Len() {
				return nil, c.errorf("layer %q %s: %d values provided for %s's %d", layer, key, len(dst), ds.Path(), ds.Len())
			}
			if err := ds.ReadFloat32Into(dst); err != nil {
				return nil, c.wrap(err)
			}
			return dst, nil
		}
	}
	data, err := ds.ReadFloat32()
	if err != nil {
		return nil, c.wrap(err)
	}
	return data, nil
}

func (c *Checkpoint) add(l *Layer) {
	c.layers = append(c.layers, l)
	c.byName[l.Name] = l
}

// countNonFinite counts the NaN and infinite values. Checkpoints rarely hold any, so a
// branch-free pass (an exponent of all ones, plus one, carries into bit 8) decides first and
// only a file with some pays for telling them apart: VGG16's 138 million values take a tenth
// of the time a test per value took.
func countNonFinite(data []float32) (nan, inf int) {
	bad := 0
	for _, v := range data {
		bad += int((math.Float32bits(v)>>23)&0xff+1) >> 8
	}
	if bad == 0 {
		return 0, 0
	}
	for _, v := range data {
		if b := math.Float32bits(v); b&0x7f800000 == 0x7f800000 {
			if b&0x007fffff != 0 {
				nan++
			} else {
				inf++
			}
		}
	}
	return nan, inf
}
