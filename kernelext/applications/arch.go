package applications

import (
	"fmt"
	"strings"

	"github.com/transfer-learning-go/workbook/kernelext/layers"
)

// None marks a dimension Keras prints as None: the batch, or a spatial size left open
// (include_top=False without an input shape).
const None = -1

// Op is the computation a layer performs; together with LayerConfig it is all the graph builder
// needs, so the layer table is the single description of each network.
type Op int

// The layer computations VGG16 and ResNet50 use.
const (
	OpInput Op = iota
	OpConv2D
	OpBatchNorm
	OpActivation
	OpAdd
	OpZeroPad
	OpMaxPool
	OpFlatten
	OpDense
	OpGlobalAvgPool
	OpGlobalMaxPool
)

// LayerConfig holds the constructor arguments of a Keras layer that matter for its
// computation. Fields a layer kind does not use stay zero.
type LayerConfig struct {
	Filters    int     // Conv2D: output channels.
	KernelSize int     // Conv2D: square kernel side.
	Strides    int     // Conv2D, MaxPooling2D.
	Padding    string  // Conv2D: "same" or "valid" (pools are always "valid" here).
	PoolSize   int     // MaxPooling2D: square window side.
	Pad        int     // ZeroPadding2D: symmetric padding on H and W.
	Units      int     // Dense: output size.
	Activation string  // Conv2D, Dense, Activation: "relu", "softmax", "sigmoid" or "linear".
	Epsilon    float64 // BatchNormalization.
	Momentum   float64 // BatchNormalization: moving-average momentum (Keras default 0.99).
	// Initializer is the kernel initializer Keras uses when weights=None: "glorot_uniform"
	// (Keras' default, VGG16) or "he_normal" (ResNet50's convs).
	Initializer string
}

// Weight describes one variable of a layer, named as in Keras 2 (kernel, bias, gamma, beta,
// moving_mean, moving_variance).
type Weight struct {
	Key   string
	Shape []int
	// Updatable is false for weights Keras never trains (BatchNormalization's moving
	// statistics); the rest follow their layer's Trainable flag.
	Updatable bool
}

// Size is the number of values in the weight.
func (w Weight) Size() int { return prod(w.Shape) }

// Layer is one entry of keras Model.layers: the name and class Keras prints in summary(),
// its inputs (for the "Connected to" column and for building the graph), its output shape,
// weights and trainable flag.
type Layer struct {
	Name    string
	Class   string
	Op      Op
	Config  LayerConfig
	Inbound []string
	// OutputShape excludes the batch axis; None marks open dimensions.
	OutputShape []int
	Weights     []Weight
	// Trainable mirrors Keras' layer.trainable: when false the layer's weights are excluded
	// from training (its GoMLX variables are marked non-trainable).
	Trainable bool
	// Added marks layers appended to the application (AddDense, ...): checkpoints need not
	// hold their weights; when a checkpoint has them (a saved fine-tuned model), they load.
	Added bool
}

// Params is Keras' layer.count_params().
func (l *Layer) Params() int {
	n := 0
	for _, w := range l.Weights {
		n += w.Size()
	}
	return n
}

// TrainableParams counts the weights that training updates given the layer's flag.
func (l *Layer) TrainableParams() int {
	if !l.Trainable {
		return 0
	}
	n := 0
	for _, w := range l.Weights {
		if w.Updatable {
			n += w.Size()
		}
	}
	return n
}

// Weight returns the layer's weight with the given key, or nil.
func (l *Layer) Weight(key string) *Weight {
	for i := range l.Weights {
		if l.Weights[i].Key == key {
			return &l.Weights[i]
		}
	}
	return nil
}

// Architecture is the ordered layer table of a model — exactly Keras' model.layers, in
// Keras' order — from which both the GoMLX graph and the summary are produced.
type Architecture struct {
	// Name is the Keras model name ("vgg16", "resnet50").
	Name   string
	Layers []*Layer
	// IncludeTop and Pooling record how the table was made.
	IncludeTop bool
	Pooling    string
	// Sequential marks a keras.Sequential model (as Exercise 8.03 builds from VGG16's
	// layers): its summary omits the InputLayer row, as Keras' Sequential.layers does.
	Sequential bool

	names counters // Keras' automatic-name counters, for layers added later.
}

// Layer returns the layer with the given name, or nil.
func (a *Architecture) Layer(name string) *Layer {
	for _, l := range a.Layers {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// Output is the last layer, whose output is the model's output.
func (a *Architecture) Output() *Layer { return a.Layers[len(a.Layers)-1] }

// InputShape is the (H, W, C) input shape, None for open sizes.
func (a *Architecture) InputShape() []int { return a.Layers[0].OutputShape }

// SequentialLike reports whether Keras prints the model as a chain (every layer fed by at
// most one other), which selects the 65-column summary layout.
func (a *Architecture) SequentialLike() bool {
	for _, l := range a.Layers {
		if len(l.Inbound) > 1 {
			return false
		}
	}
	return true
}

// Params returns Keras' total, trainable and non-trainable parameter counts.
func (a *Architecture) Params() (total, trainable, nonTrainable int) {
	for _, l := range a.Layers {
		total += l.Params()
		trainable += l.TrainableParams()
	}
	return total, trainable, total - trainable
}

// Clone returns a deep copy, so trainable flags can be changed independently.
func (a *Architecture) Clone() *Architecture {
	c := *a
	c.names = counters{}
	for k, v := range a.names {
		c.names[k] = v
	}
	c.Layers = make([]*Layer, len(a.Layers))
	for i, l := range a.Layers {
		cl := *l
		cl.Inbound = append([]string(nil), l.Inbound...)
		cl.OutputShape = append([]int(nil), l.OutputShape...)
		cl.Weights = make([]Weight, len(l.Weights))
		for j, w := range l.Weights {
			cl.Weights[j] = Weight{Key: w.Key, Shape: append([]int(nil), w.Shape...), Updatable: w.Updatable}
		}
		c.Layers[i] = &cl
	}
	return &c
}

// SetTrainable sets layer.trainable on the named layers, or on every layer when no name is
// given — the Go form of `for layer in model.layers: layer.trainable = False`.
func (a *Architecture) SetTrainable(trainable bool, names ...string) error {
	if len(names) == 0 {
		for _, l := range a.Layers {
			l.Trainable = trainable
		}
		return nil
	}
	for _, name := range names {
		l := a.Layer(name)
		if l == nil {
			return fmt.Errorf("applications: %s has no layer %q", a.Name, name)
		}
		l.Trainable = trainable
	}
	return nil
}

// SetTrainableFrom makes the named layer and every layer after it trainable and freezes the
// layers before it — the Keras fine-tuning recipe `for layer in model.layers[:k]:
// layer.trainable = False` with k the index of the named layer (e.g. "block5_conv1").
func (a *Architecture) SetTrainableFrom(name string) error {
	k := a.index(name)
	if k < 0 {
		return fmt.Errorf("applications: %s has no layer %q", a.Name, name)
	}
	for i, l := range a.Layers {
		l.Trainable = i >= k
	}
	return nil
}

// Until drops every layer after the named one, which becomes the output — the Go form of
// rebuilding the model without its last layers (e.g. VGG16 up to "fc2", without
// "predictions", as Exercise 8.03 does). Every layer kept must feed the new output, so a
// cut inside a residual block between its two branches is refused.
func (a *Architecture) Until(name string) error {
	k := a.index(name)
	if k < 0 {
		return fmt.Errorf("applications: %s has no layer %q", a.Name, name)
	}
	ancestors := map[string]bool{name: true}
	for i := k; i >= 0; i-- {
		l := a.Layers[i]
		if !ancestors[l.Name] {
			return fmt.Errorf("applications: %s cannot end at %q: layer %q would be left unconnected",
				a.Name, name, l.Name)
		}
		for _, in := range l.Inbound {
			ancestors[in] = true
		}
	}
	a.Layers = a.Layers[:k+1]
	return nil
}

func (a *Architecture) index(name string) int {
	for i, l := range a.Layers {
		if l.Name == name {
			return i
		}
	}
	return -1
}

// counters gives Keras' automatic layer names: snake_case class name plus a per-class
// counter starting at 1, as in a fresh Keras session.
type counters map[string]int

func (c counters) next(prefix string) string {
	c[prefix]++
	return fmt.Sprintf("%s_%d", prefix, c[prefix])
}

// tableBuilder appends layers while tracking the current output and its shape.
type tableBuilder struct {
	arch  *Architecture
	names counters
}

func newTable(name string, input []int) (*tableBuilder, string) {
	names := counters{}
	t := &tableBuilder{arch: &Architecture{Name: name, names: names}, names: names}
	in := t.names.next("input")
	t.arch.Layers = append(t.arch.Layers, &Layer{Name: in, Class: "InputLayer", Op: OpInput,
		OutputShape: append([]int(nil), input...), Trainable: true})
	return t, in
}

func (t *tableBuilder) shape(name string) []int { return t.arch.Layer(name).OutputShape }

func (t *tableBuilder) add(l *Layer) string {
	l.Trainable = true
	t.arch.Layers = append(t.arch.Layers, l)
	return l.Name
}

func (t *tableBuilder) conv(name, in string, filters, k, stride int, padding, activation, init string) string {
	s := t.shape(in)
	cin := s[2]
	var h, w int
	if padding == "same" {
		h, w = ceilDiv(s[0], stride), ceilDiv(s[1], stride)
	} else {
		h, w = validOut(s[0], k, stride), validOut(s[1], k, stride)
	}
	return t.add(&Layer{Name: name, Class: "Conv2D", Op: OpConv2D, Inbound: []string{in},
		Config: LayerConfig{Filters: filters, KernelSize: k, Strides: stride, Padding: padding,
			Activation: activation, Initializer: init},
		OutputShape: []int{h, w, filters},
		Weights: []Weight{{Key: "kernel", Shape: []int{k, k, cin, filters}, Updatable: true},
			{Key: "bias", Shape: []int{filters}, Updatable: true}}})
}

func (t *tableBuilder) bn(name, in string) string {
	s := t.shape(in)
	c := s[len(s)-1]
	return t.add(&Layer{Name: name, Class: "BatchNormalization", Op: OpBatchNorm, Inbound: []string{in},
		Config:      LayerConfig{Epsilon: 1e-3, Momentum: 0.99},
		OutputShape: append([]int(nil), s...),
		Weights: []Weight{{Key: "gamma", Shape: []int{c}, Updatable: true},
			{Key: "beta", Shape: []int{c}, Updatable: true},
			{Key: "moving_mean", Shape: []int{c}}, {Key: "moving_variance", Shape: []int{c}}}})
}

func (t *tableBuilder) relu(in string) string {
	return t.add(&Layer{Name: t.names.next("activation"), Class: "Activation", Op: OpActivation,
		Inbound: []string{in}, Config: LayerConfig{Activation: "relu"},
		OutputShape: append([]int(nil), t.shape(in)...)})
}

func (t *tableBuilder) addLayer(a, b string) string {
	return t.add(&Layer{Name: t.names.next("add"), Class: "Add", Op: OpAdd, Inbound: []string{a, b},
		OutputShape: append([]int(nil), t.shape(a)...)})
}

func (t *tableBuilder) zeroPad(name, in string, pad int) string {
	s := t.shape(in)
	return t.add(&Layer{Name: name, Class: "ZeroPadding2D", Op: OpZeroPad, Inbound: []string{in},
		Config: LayerConfig{Pad: pad}, OutputShape: []int{addDim(s[0], 2*pad), addDim(s[1], 2*pad), s[2]}})
}

func (t *tableBuilder) maxPool(name, in string, pool, stride int) string {
	if name == "" {
		name = t.names.next("max_pooling2d")
	}
	s := t.shape(in)
	return t.add(&Layer{Name: name, Class: "MaxPooling2D", Op: OpMaxPool, Inbound: []string{in},
		Config:      LayerConfig{PoolSize: pool, Strides: stride, Padding: "valid"},
		OutputShape: []int{validOut(s[0], pool, stride), validOut(s[1], pool, stride), s[2]}})
}

func (t *tableBuilder) flatten(name, in string) string {
	return t.add(&Layer{Name: name, Class: "Flatten", Op: OpFlatten, Inbound: []string{in},
		OutputShape: []int{prodOrNone(t.shape(in))}})
}

func (t *tableBuilder) dense(name, in string, units int, activation string) string {
	s := t.shape(in)
	return t.add(&Layer{Name: name, Class: "Dense", Op: OpDense, Inbound: []string{in},
		Config:      LayerConfig{Units: units, Activation: activation, Initializer: "glorot_uniform"},
		OutputShape: []int{units},
		Weights: []Weight{{Key: "kernel", Shape: []int{s[0], units}, Updatable: true},
			{Key: "bias", Shape: []int{units}, Updatable: true}}})
}

func (t *tableBuilder) globalPool(name, in, pooling string) string {
	s := t.shape(in)
	l := &Layer{Name: name, Inbound: []string{in}, OutputShape: []int{s[2]}}
	if pooling == "avg" {
		l.Class, l.Op = "GlobalAveragePooling2D", OpGlobalAvgPool
		if name == "" {
			l.Name = t.names.next("global_average_pooling2d")
		}
	} else {
		l.Class, l.Op = "GlobalMaxPooling2D", OpGlobalMaxPool
		if name == "" {
			l.Name = t.names.next("global_max_pooling2d")
		}
	}
	return t.add(l)
}

// appendLayer adds a layer on top of the current output, as Keras' Sequential.add or a
// functional call on model.output would.
func (a *Architecture) appendLayer(build func(t *tableBuilder, in string) string) string {
	if a.names == nil {
		a.names = counters{}
	}
	t := &tableBuilder{arch: a, names: a.names}
	name := build(t, a.Output().Name)
	l := a.Layer(name)
	l.Added = true
	return name
}

// AddFlatten appends Keras' Flatten on top of the output (name "" gives Keras' automatic
// name, e.g. "flatten_1").
func (a *Architecture) AddFlatten(name string) (string, error) {
	if len(a.Output().OutputShape) < 2 {
		return "", fmt.Errorf("applications: %s: Flatten needs a feature map, the output is %s",
			a.Name, PythonTuple(append([]int{None}, a.Output().OutputShape...)))
	}
	if prodOrNone(a.Output().OutputShape) == None {
		return "", fmt.Errorf("applications: %s: Flatten needs a fixed input size (use InputShape)", a.Name)
	}
	return a.appendLayer(func(t *tableBuilder, in string) string {
		if name == "" {
			name = t.names.next("flatten")
		}
		return t.flatten(name, in)
	}), nil
}

// AddGlobalPooling appends GlobalAveragePooling2D ("avg") or GlobalMaxPooling2D ("max").
func (a *Architecture) AddGlobalPooling(name, pooling string) (string, error) {
	if len(a.Output().OutputShape) != 3 {
		return "", fmt.Errorf("applications: %s: global pooling needs a feature map, the output is %s",
			a.Name, PythonTuple(append([]int{None}, a.Output().OutputShape...)))
	}
	if pooling != "avg" && pooling != "max" {
		return "", fmt.Errorf("applications: pooling must be \"avg\" or \"max\", got %q", pooling)
	}
	return a.appendLayer(func(t *tableBuilder, in string) string { return t.globalPool(name, in, pooling) }), nil
}

// AddDense appends Keras' Dense(units, activation) ("relu", "sigmoid", "softmax" or
// "linear"), glorot_uniform-initialised, on top of a 1-D output — e.g. the Dense(1,
// activation='sigmoid') of Exercise 8.03. Name "" gives Keras' automatic name ("dense_1").
func (a *Architecture) AddDense(name string, units int, activation string) (string, error) {
	out := a.Output().OutputShape
	if len(out) != 1 || out[0] == None {
		return "", fmt.Errorf("applications: %s: Dense needs a flat input, the output is %s (add Flatten or pooling first)",
			a.Name, PythonTuple(append([]int{None}, out...)))
	}
	if err := layers.CheckActivation(activation); err != nil {
		return "", fmt.Errorf("applications: %w", err)
	}
	if units < 1 {
		return "", fmt.Errorf("applications: Dense needs at least 1 unit, got %d", units)
	}
	if name != "" && a.Layer(name) != nil {
		return "", fmt.Errorf("applications: %s already has a layer %q", a.Name, name)
	}
	return a.appendLayer(func(t *tableBuilder, in string) string {
		if name == "" {
			name = t.names.next("dense")
		}
		return t.dense(name, in, units, activation)
	}), nil
}

// AsSequential renames the model and marks it a keras.Sequential, as Exercise 8.03 does by
// adding VGG16's layers to `keras.Sequential()` (Keras names it "sequential_1"): the summary
// then omits the InputLayer row.
func (a *Architecture) AsSequential(name string) {
	a.Name = name
	a.Sequential = true
}

// checkOptions validates include_top/pooling/input shape as keras_applications'
// _obtain_input_shape does, returning the (H, W, 3) input shape.
func checkOptions(model string, includeTop bool, pooling string, inputShape []int) ([]int, error) {
	switch pooling {
	case "", "avg", "max":
	default:
		return nil, fmt.Errorf("applications: %s: pooling must be \"\", \"avg\" or \"max\", got %q", model, pooling)
	}
	if inputShape == nil {
		if includeTop {
			return []int{224, 224, 3}, nil
		}
		return []int{None, None, 3}, nil
	}
	if len(inputShape) == 2 {
		inputShape = []int{inputShape[0], inputShape[1], 3}
	}
	if len(inputShape) != 3 || inputShape[2] != 3 {
		return nil, fmt.Errorf("applications: %s: input shape must be (height, width, 3), got %v", model, inputShape)
	}
	if includeTop && (inputShape[0] != 224 || inputShape[1] != 224) {
		return nil, fmt.Errorf("applications: %s: with include_top the input shape must be (224, 224, 3), got %v",
			model, inputShape)
	}
	for _, d := range inputShape[:2] {
		if d != None && d < 32 {
			return nil, fmt.Errorf("applications: %s: input height and width must be at least 32, got %v",
				model, inputShape)
		}
	}
	return append([]int(nil), inputShape...), nil
}

// VGG16Architecture returns the layer table of keras.applications.VGG16(include_top,
// pooling, input_shape) (keras-applications 1.0.8 vgg16.py). inputShape is (H, W) or
// (H, W, 3); nil means Keras' default: (224, 224, 3) with the top, (None, None, 3) without.
func VGG16Architecture(includeTop bool, pooling string, inputShape []int) (*Architecture, error) {
	input, err := checkOptions("vgg16", includeTop, pooling, inputShape)
	if err != nil {
		return nil, err
	}
	t, x := newTable("vgg16", input)
	for b, block := range [][2]int{{2, 64}, {2, 128}, {3, 256}, {3, 512}, {3, 512}} {
		for c := 1; c <= block[0]; c++ {
			x = t.conv(fmt.Sprintf("block%d_conv%d", b+1, c), x, block[1], 3, 1, "same", "relu", "glorot_uniform")
		}
		x = t.maxPool(fmt.Sprintf("block%d_pool", b+1), x, 2, 2)
	}
	if includeTop {
		x = t.flatten("flatten", x)
		x = t.dense("fc1", x, 4096, "relu")
		x = t.dense("fc2", x, 4096, "relu")
		t.dense("predictions", x, 1000, "softmax")
	} else if pooling != "" {
		t.globalPool("", x, pooling)
	}
	t.arch.IncludeTop, t.arch.Pooling = includeTop, pooling
	return t.arch, nil
}

// ResNet50Architecture returns the layer table of keras.applications.ResNet50 as Keras 2.3
// builds it (keras-applications 1.0.8 resnet50.py): ResNet v1 with the stride on the first
// 1×1 convolution of each stage's first block, explicit symmetric zero padding, and
// BatchNormalization epsilon 1e-3. Arguments as for VGG16Architecture.
func ResNet50Architecture(includeTop bool, pooling string, inputShape []int) (*Architecture, error) {
	input, err := checkOptions("resnet50", includeTop, pooling, inputShape)
	if err != nil {
		return nil, err
	}
	t, x := newTable("resnet50", input)
	x = t.zeroPad("conv1_pad", x, 3)
	x = t.conv("conv1", x, 64, 7, 2, "valid", "linear", "he_normal")
	x = t.bn("bn_conv1", x)
	x = t.relu(x)
	x = t.zeroPad("pool1_pad", x, 1)
	x = t.maxPool("", x, 3, 2)

	stages := []struct {
		stage   int
		filters [3]int
		blocks  int
		stride  int
	}{
		{2, [3]int{64, 64, 256}, 3, 1},
		{3, [3]int{128, 128, 512}, 4, 2},
		{4, [3]int{256, 256, 1024}, 6, 2},
		{5, [3]int{512, 512, 2048}, 3, 2},
	}
	for _, s := range stages {
		for b := 0; b < s.blocks; b++ {
			x = t.residualBlock(x, s.stage, string(rune('a'+b)), s.filters, s.stride, b == 0)
		}
	}
	if includeTop {
		x = t.globalPool("avg_pool", x, "avg")
		t.dense("fc1000", x, 1000, "softmax")
	} else if pooling != "" {
		t.globalPool("", x, pooling)
	}
	t.arch.IncludeTop, t.arch.Pooling = includeTop, pooling
	return t.arch, nil
}

// residualBlock appends Keras' conv_block (convShortcut) or identity_block. The layer order
// is the one Keras' Network gives (by depth, then traversal): the shortcut's conv and BN
// come right after the main path's 2c conv and BN respectively.
func (t *tableBuilder) residualBlock(in string, stage int, block string, f [3]int, stride int, convShortcut bool) string {
	conv := func(branch string) string { return fmt.Sprintf("res%d%s_branch%s", stage, block, branch) }
	bn := func(branch string) string { return fmt.Sprintf("bn%d%s_branch%s", stage, block, branch) }
	s := 1
	if convShortcut {
		s = stride
	}
	x := t.conv(conv("2a"), in, f[0], 1, s, "valid", "linear", "he_normal")
	x = t.bn(bn("2a"), x)
	x = t.relu(x)
	x = t.conv(conv("2b"), x, f[1], 3, 1, "same", "linear", "he_normal")
	x = t.bn(bn("2b"), x)
	x = t.relu(x)
	x = t.conv(conv("2c"), x, f[2], 1, 1, "valid", "linear", "he_normal")
	shortcut := in
	if convShortcut {
		shortcut = t.conv(conv("1"), in, f[2], 1, stride, "valid", "linear", "he_normal")
		x = t.bn(bn("2c"), x)
		shortcut = t.bn(bn("1"), shortcut)
	} else {
		x = t.bn(bn("2c"), x)
	}
	x = t.addLayer(x, shortcut)
	return t.relu(x)
}

// ArchitectureByName returns VGG16Architecture or ResNet50Architecture for "vgg16" or
// "resnet50" (case-insensitive).
func ArchitectureByName(model string, includeTop bool, pooling string, inputShape []int) (*Architecture, error) {
	switch strings.ToLower(model) {
	case "vgg16":
		return VGG16Architecture(includeTop, pooling, inputShape)
	case "resnet50":
		return ResNet50Architecture(includeTop, pooling, inputShape)
	}
	return nil, fmt.Errorf("applications: unknown model %q (want vgg16 or resnet50)", model)
}

func ceilDiv(d, s int) int {
	if d == None {
		return None
	}
	return (d + s - 1) / s
}

func validOut(d, k, s int) int {
	if d == None {
		return None
	}
	return (d-k)/s + 1
}

func addDim(d, n int) int {
	if d == None {
		return None
	}
	return d + n
}

func prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

func prodOrNone(dims []int) int {
	for _, d := range dims {
		if d == None {
			return None
		}
	}
	return prod(dims)
}
