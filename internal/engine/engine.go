// Package engine runs the forward pass of a VGG16 or ResNet50 layer table in float32 on the
// workbook's own SIMD matrix multiplication (internal/gemm), without GoMLX.
//
// It exists because GoMLX's pure-Go backend multiplies with scalar Go code: VGG16 costs it
// about ten times PyTorch's CPU time per image, ResNet50 eleven. Here every convolution is
// an im2col product (in bands of output rows, so the copy stays in cache and memory per image
// stays bounded; a 1×1 stride-1 convolution multiplies the feature map directly), an
// inference-mode BatchNormalization right after a convolution is folded into that
// convolution's weights and bias, a ReLU is fused into the step that feeds it, and the
// images of a batch are spread over the cores; the Dense layers at the end multiply the
// whole batch at once.
//
// The package knows nothing of Keras or GoMLX: it takes a plain layer table (Layer) and reads
// the weights through a callback (Source) whenever a layer is marked stale, so the caller —
// kernelext/applications — decides when the engine runs and keeps it in step with the
// model's variables.
package engine

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/internal/hugepages"
)

// Op is the computation of a layer.
type Op int

// The layer computations of VGG16 and ResNet50 (and the Flatten, pooling and Dense layers a
// transfer-learning head adds).
const (
	Conv Op = iota
	BatchNorm
	Activation
	Add
	ZeroPad
	MaxPool
	Flatten
	GlobalAvgPool
	GlobalMaxPool
	Dense
)

// Input is the index Layer.Inputs uses for the network's input image.
const Input = -1

// Layer is one entry of the table, in topological order (every input comes earlier).
type Layer struct {
	Name   string
	Op     Op
	Inputs []int // indices of earlier layers, or Input
	// Kernel is the square kernel side (Conv) or window side (MaxPool); Stride their stride.
	Kernel, Stride int
	// Same selects TensorFlow's 'same' padding for a Conv (else 'valid').
	Same bool
	// Pad is ZeroPad's symmetric padding of height and width.
	Pad int
	// In and Out are a Conv's input and output channels, a Dense layer's input and output
	// sizes, a BatchNorm's channels (both).
	In, Out int
	// Activation of Conv, Dense and Activation layers: "relu", "linear" or "" (and, for the
	// last Dense, "softmax" or "sigmoid").
	Activation string
	Epsilon    float64 // BatchNorm
}

// Weights are one layer's arrays, as Keras stores them: a Conv kernel (kh, kw, cin, cout), a
// Dense kernel (in, out), bias (out), and BatchNorm's gamma, beta, moving mean and variance.
type Weights struct {
	Kernel, Bias                []float32
	Gamma, Beta, Mean, Variance []float32
}

// Source passes layer i's current weights to use. Convolution and batch-norm weights are
// copied (packed, folded); a Dense kernel is kept by reference, because packing VGG16's
// 411 MB fc1 kernel would double the memory a loaded model needs and, in a fresh process
// such as a notebook cell's, cost more than a second of page faults: the Source must lend
// Dense kernels that stay unchanged until the layer is marked Stale.
type Source func(layer int, use func(Weights)) error

// bandFloats bounds the im2col buffer of one convolution band (output rows × width × k·k·Cin
// values): 1 MiB, about a core's L2, so the packed copy gemm makes reads it from cache.
const bandFloats = 1 << 18

type stepKind int

const (
	stepConv   stepKind = iota
	stepAffine          // a BatchNorm not folded into a convolution
	stepRelu
	stepAdd
	stepPad
	stepMaxPool
	stepFlatten
	stepGlobalAvg
	stepGlobalMax
	stepDense
)

// step is one computation after fusion: a Conv with the BatchNorm, ReLU and ZeroPadding2D
// around it, an Add with its ReLU, and so on.
type step struct {
	kind   stepKind
	name   string
	inputs []int // step indices, or Input
	layers []int // the table layers whose weights it reads (conv, then its batch norm)

	// conv: kernel side, stride, 'same' padding, explicit zero padding taken from a ZeroPad.
	k, stride int
	same      bool
	pad       int
	in, out   int
	relu      bool
	act       string // dense
	epsilon   float64

	// weights, filled by refresh.
	packed *gemm.PackedB // conv
	kernel []float32     // dense: the Source's kernel, lent until the layer is Stale
	bias   []float32     // conv, dense: bias; affine: shift
	scale  []float32     // affine
	stale  bool
}

// Net is a layer table ready to run. Its weights are read from the Source at the first Forward
// and again for every layer marked Stale since. Forward spreads one call over the cores; calls
// to Forward and Stale must not overlap (the caller serialises them).
type Net struct {
	steps  []*step
	source Source
	// spatial is the number of steps computed image by image; the rest are Dense layers
	// computed on the whole batch.
	spatial int
	byLayer map[int][]int // table layer → the steps that read its weights

	mu    sync.Mutex
	plans map[[2]int]*plan
}

// New plans the table: it checks that every layer is supported and fuses the steps. Weights
// are read later, through src.
func New(layers []Layer, src Source) (*Net, error) {
	if len(layers) == 0 {
		return nil, errors.New("engine: empty layer table")
	}
	consumers := make([]int, len(layers))
	for i, l := range layers {
		for _, in := range l.Inputs {
			if in != Input && (in < 0 || in >= i) {
				return nil, fmt.Errorf("engine: layer %q: input %d is not an earlier layer", l.Name, in)
			}
			if in != Input {
				consumers[in]++
			}
		}
		want := 1
		if l.Op == Add {
			want = 2
		}
		if len(l.Inputs) != want {
			return nil, fmt.Errorf("engine: layer %q has %d inputs, want %d", l.Name, len(l.Inputs), want)
		}
	}
	n := &Net{source: src, byLayer: map[int][]int{}, plans: map[[2]int]*plan{}}
	stepOf := make([]int, len(layers)) // table layer → the step whose output is its output
	pendingPad := map[int]int{}        // ZeroPad layers folded into their consumer: layer → pad
	src0 := func(l Layer) int {
		if l.Inputs[0] == Input {
			return Input
		}
		return stepOf[l.Inputs[0]]
	}
	// only reports whether layer i's single consumer is layer i+1 and has op.
	only := func(i int, op Op) bool {
		return i+1 < len(layers) && consumers[i] == 1 && layers[i+1].Op == op && layers[i+1].Inputs[0] == i
	}
	for i := 0; i < len(layers); i++ {
		l := layers[i]
		s := &step{name: l.Name, inputs: []int{src0(l)}, layers: []int{i}, stale: true}
		switch l.Op {
		case ZeroPad:
			if only(i, Conv) && !layers[i+1].Same {
				// Folded into the convolution: its im2col reads zeros outside the image.
				pendingPad[i] = l.Pad
				stepOf[i] = -1 // never read: its only consumer reads the padding's input
				continue
			}
			if l.Pad < 0 {
				return nil, fmt.Errorf("engine: layer %q: negative padding %d", l.Name, l.Pad)
			}
			s.kind, s.pad = stepPad, l.Pad
		case Conv:
			if l.Kernel < 1 || l.Stride < 1 || l.In < 1 || l.Out < 1 {
				return nil, fmt.Errorf("engine: layer %q: bad convolution %d×%d stride %d, %d→%d channels",
					l.Name, l.Kernel, l.Kernel, l.Stride, l.In, l.Out)
			}
			s.kind, s.k, s.stride, s.same, s.in, s.out = stepConv, l.Kernel, l.Stride, l.Same, l.In, l.Out
			if p, ok := pendingPad[l.Inputs[0]]; ok {
				s.pad = p
				s.inputs = []int{src0(layers[l.Inputs[0]])}
			}
			switch l.Activation {
			case "relu":
				s.relu = true
			case "", "linear":
				if only(i, BatchNorm) {
					i++
					s.layers = append(s.layers, i)
					s.epsilon = layers[i].Epsilon
				}
				if only(i, Activation) && isRelu(layers[i+1].Activation) {
					i++
					s.relu = true
				}
			default:
				return nil, fmt.Errorf("engine: layer %q: unsupported convolution activation %q", l.Name, l.Activation)
			}
		case BatchNorm:
			s.kind, s.epsilon, s.in, s.out = stepAffine, l.Epsilon, l.In, l.Out
			if only(i, Activation) && isRelu(layers[i+1].Activation) {
				i++
				s.relu = true
			}
		case Activation:
			if !isRelu(l.Activation) && l.Activation != "linear" && l.Activation != "" {
				return nil, fmt.Errorf("engine: layer %q: unsupported activation %q", l.Name, l.Activation)
			}
			if !isRelu(l.Activation) {
				stepOf[i] = src0(l)
				continue
			}
			s.kind, s.relu = stepRelu, true
		case Add:
			s.kind = stepAdd
			s.inputs = append(s.inputs, Input)
			if l.Inputs[1] != Input {
				s.inputs[1] = stepOf[l.Inputs[1]]
			}
			if only(i, Activation) && isRelu(layers[i+1].Activation) {
				i++
				s.relu = true
			}
		case MaxPool:
			if l.Kernel < 1 || l.Stride < 1 {
				return nil, fmt.Errorf("engine: layer %q: bad pooling %d×%d stride %d", l.Name, l.Kernel, l.Kernel, l.Stride)
			}
			s.kind, s.k, s.stride = stepMaxPool, l.Kernel, l.Stride
		case Flatten:
			s.kind = stepFlatten
		case GlobalAvgPool:
			s.kind = stepGlobalAvg
		case GlobalMaxPool:
			s.kind = stepGlobalMax
		case Dense:
			switch l.Activation {
			case "relu", "linear", "", "softmax", "sigmoid":
			default:
				return nil, fmt.Errorf("engine: layer %q: unsupported activation %q", l.Name, l.Activation)
			}
			s.kind, s.in, s.out, s.act = stepDense, l.In, l.Out, l.Activation
		default:
			return nil, fmt.Errorf("engine: layer %q: unsupported op %d", l.Name, l.Op)
		}
		for j := range s.layers {
			n.byLayer[s.layers[j]] = append(n.byLayer[s.layers[j]], len(n.steps))
		}
		n.steps = append(n.steps, s)
		for j := s.layers[0]; j <= i; j++ {
			stepOf[j] = len(n.steps) - 1
		}
	}
	if last := stepOf[len(layers)-1]; last != len(n.steps)-1 {
		// The output is an alias of an earlier step (e.g. a linear Activation at the end).
		n.steps = append(n.steps, &step{kind: stepRelu, name: layers[len(layers)-1].Name, inputs: []int{last}})
	}
	// Image by image up to the first Dense; from there a chain of Dense layers on the batch.
	n.spatial = len(n.steps)
	for i, s := range n.steps {
		if s.kind == stepDense {
			n.spatial = i
			break
		}
	}
	for i := n.spatial; i < len(n.steps); i++ {
		s := n.steps[i]
		if s.kind != stepDense || (i > n.spatial && s.inputs[0] != i-1) {
			return nil, fmt.Errorf("engine: layer %q: after a Dense layer only a chain of Dense layers is supported", s.name)
		}
		if s.act != "relu" && s.act != "linear" && s.act != "" && i != len(n.steps)-1 {
			return nil, fmt.Errorf("engine: layer %q: %s is supported on the last layer only", s.name, s.act)
		}
	}
	return n, nil
}

func isRelu(a string) bool { return a == "relu" }

// Stale marks table layer i's weights as changed: the steps reading them are rebuilt from the
// Source at the next Forward.
func (n *Net) Stale(layer int) {
	for _, s := range n.byLayer[layer] {
		n.steps[s].stale = true
	}
}

// refresh reads the weights of the stale steps.
func (n *Net) refresh() error {
	for _, s := range n.steps {
		if !s.stale {
			continue
		}
		var err, useErr error // useErr: what the callbacks found wrong with the weights
		switch s.kind {
		case stepConv:
			err = n.source(s.layers[0], func(cw Weights) {
				if len(s.layers) == 1 {
					useErr = s.setConv(cw, nil)
					return
				}
				if err := n.source(s.layers[1], func(bw Weights) { useErr = s.setConv(cw, &bw) }); err != nil {
					useErr = err
				}
			})
		case stepAffine:
			err = n.source(s.layers[0], func(bw Weights) {
				if useErr = checkLen(s.name, "batch norm", s.out, bw.Gamma, bw.Beta, bw.Mean, bw.Variance); useErr == nil {
					s.scale, s.bias = bnAffine(bw, s.epsilon)
				}
			})
		case stepDense:
			err = n.source(s.layers[0], func(w Weights) {
				if len(w.Kernel) != s.in*s.out || len(w.Bias) != s.out {
					useErr = fmt.Errorf("engine: layer %q: %d kernel and %d bias values for %d×%d", s.name, len(w.Kernel), len(w.Bias), s.in, s.out)
					return
				}
				s.kernel = w.Kernel
				s.bias = append(s.bias[:0], w.Bias...)
			})
		}
		if err = errors.Join(err, useErr); err != nil {
			return err
		}
		s.stale = false
	}
	return nil
}

func checkLen(name, what string, n int, arrays ...[]float32) error {
	for _, a := range arrays {
		if len(a) != n {
			return fmt.Errorf("engine: layer %q: %s has %d values, want %d", name, what, len(a), n)
		}
	}
	return nil
}

// bnAffine turns inference-mode BatchNormalization, γ(x−μ)/√(σ²+ε)+β, into x·scale + shift,
// computed in float64.
func bnAffine(bw Weights, eps float64) (scale, shift []float32) {
	scale, shift = make([]float32, len(bw.Gamma)), make([]float32, len(bw.Gamma))
	for c := range bw.Gamma {
		s := float64(bw.Gamma[c]) / math.Sqrt(float64(bw.Variance[c])+eps)
		scale[c] = float32(s)
		shift[c] = float32(float64(bw.Beta[c]) - float64(bw.Mean[c])*s)
	}
	return scale, shift
}

// setConv packs a convolution's kernel, folding the batch norm that follows it (bn, if not
// nil) into it: W' = W·s, b' = (b − μ)·s + β with s = γ/√(σ²+ε), per output channel.
func (s *step) setConv(cw Weights, bn *Weights) error {
	rows := s.k * s.k * s.in
	if len(cw.Kernel) != rows*s.out || len(cw.Bias) != s.out {
		return fmt.Errorf("engine: layer %q: %d kernel and %d bias values for %d×%d×%d×%d", s.name,
			len(cw.Kernel), len(cw.Bias), s.k, s.k, s.in, s.out)
	}
	if bn == nil {
		s.packed = gemm.PackB(rows, s.out, cw.Kernel, s.out)
		s.bias = append(s.bias[:0], cw.Bias...)
		return nil
	}
	if err := checkLen(s.name, "batch norm", s.out, bn.Gamma, bn.Beta, bn.Mean, bn.Variance); err != nil {
		return err
	}
	scale := make([]float64, s.out)
	s.bias = s.bias[:0]
	for c := range scale {
		scale[c] = float64(bn.Gamma[c]) / math.Sqrt(float64(bn.Variance[c])+s.epsilon)
		s.bias = append(s.bias, float32((float64(cw.Bias[c])-float64(bn.Mean[c]))*scale[c]+float64(bn.Beta[c])))
	}
	folded := make([]float32, len(cw.Kernel))
	for r := range rows {
		for c, v := range cw.Kernel[r*s.out : (r+1)*s.out] {
			folded[r*s.out+c] = float32(float64(v) * scale[c])
		}
	}
	s.packed = gemm.PackB(rows, s.out, folded, s.out)
	return nil
}

// shape is a step's output per image: a feature map (h, w, c), or flat (c values, h = 0).
type shape struct{ h, w, c int }

func (s shape) size() int {
	if s.h == 0 {
		return s.c
	}
	return s.h * s.w * s.c
}

// plan is the per-input-size part: every step's output shape and padding, and which scratch
// buffer holds each spatial output.
type plan struct {
	shapes []shape
	pads   [][4]int // conv: top, left, bottom, right
	slot   []int    // spatial steps: scratch buffer index (the last one writes to the output)
	sizes  []int    // scratch buffer sizes
	col    int      // im2col buffer size
	pool   sync.Pool
}

// OutputShape is the output per image for an h×w×3 input, or an error naming the layer that
// cannot take it (a pooling window larger than its input, a Dense layer of another size).
func (n *Net) OutputShape(h, w int) ([]int, error) {
	p, err := n.plan(h, w)
	if err != nil {
		return nil, err
	}
	s := p.shapes[len(p.shapes)-1]
	if s.h == 0 {
		return []int{s.c}, nil
	}
	return []int{s.h, s.w, s.c}, nil
}

func (n *Net) plan(h, w int) (*plan, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.plans[[2]int{h, w}]; p != nil {
		return p, nil
	}
	p := &plan{shapes: make([]shape, len(n.steps)), pads: make([][4]int, len(n.steps))}
	in := func(s *step, j int) shape {
		if s.inputs[j] == Input {
			return shape{h, w, 3}
		}
		return p.shapes[s.inputs[j]]
	}
	for i, s := range n.steps {
		x := in(s, 0)
		if x.h == 0 && s.kind != stepDense && s.kind != stepRelu && s.kind != stepAffine {
			return nil, fmt.Errorf("engine: layer %q needs a feature map, gets %d values", s.name, x.c)
		}
		var y shape
		switch s.kind {
		case stepConv:
			if x.c != s.in {
				return nil, fmt.Errorf("engine: layer %q expects %d channels, gets %d", s.name, s.in, x.c)
			}
			ph, pw := x.h+2*s.pad, x.w+2*s.pad
			var pad [4]int
			if s.same {
				y = shape{ceilDiv(ph, s.stride), ceilDiv(pw, s.stride), s.out}
				th := max((y.h-1)*s.stride+s.k-ph, 0)
				tw := max((y.w-1)*s.stride+s.k-pw, 0)
				pad = [4]int{th / 2, tw / 2, th - th/2, tw - tw/2}
			} else {
				if ph < s.k || pw < s.k {
					return nil, fmt.Errorf("engine: layer %q needs a %d×%d input, gets %d×%d", s.name, s.k, s.k, ph, pw)
				}
				y = shape{(ph-s.k)/s.stride + 1, (pw-s.k)/s.stride + 1, s.out}
			}
			for j := range pad {
				pad[j] += s.pad
			}
			p.pads[i] = pad
			p.col = max(p.col, bandRows(y.h, y.w, s.k*s.k*s.in)*y.w*s.k*s.k*s.in)
		case stepAffine:
			if x.c != s.in {
				return nil, fmt.Errorf("engine: layer %q expects %d channels, gets %d", s.name, s.in, x.c)
			}
			y = x
		case stepRelu:
			y = x
		case stepAdd:
			if z := in(s, 1); z != x {
				return nil, fmt.Errorf("engine: layer %q adds %v to %v", s.name, x, z)
			}
			y = x
		case stepPad:
			y = shape{x.h + 2*s.pad, x.w + 2*s.pad, x.c}
		case stepMaxPool:
			if x.h < s.k || x.w < s.k {
				return nil, fmt.Errorf("engine: layer %q needs a %d×%d input, gets %d×%d", s.name, s.k, s.k, x.h, x.w)
			}
			y = shape{(x.h-s.k)/s.stride + 1, (x.w-s.k)/s.stride + 1, x.c}
		case stepFlatten:
			y = shape{c: x.size()}
		case stepGlobalAvg, stepGlobalMax:
			y = shape{c: x.c}
		case stepDense:
			if x.size() != s.in {
				return nil, fmt.Errorf("engine: layer %q expects %d inputs, gets %d", s.name, s.in, x.size())
			}
			y = shape{c: s.out}
		}
		p.shapes[i] = y
	}
	p.assignSlots(n.steps[:n.spatial])
	n.plans[[2]int{h, w}] = p
	return p, nil
}

// assignSlots gives every spatial step but the last a scratch buffer, reusing a buffer once
// the last step reading it has run (the residual blocks keep their shortcut alive).
func (p *plan) assignSlots(steps []*step) {
	last := make([]int, len(steps))
	for i, s := range steps {
		last[i] = i
		for _, in := range s.inputs {
			if in != Input {
				last[in] = i
			}
		}
	}
	p.slot = make([]int, len(steps))
	var free []int
	for i, s := range steps {
		if i == len(steps)-1 {
			p.slot[i] = -1
			break
		}
		size := p.shapes[i].size()
		if len(free) > 0 {
			p.slot[i] = free[len(free)-1]
			free = free[:len(free)-1]
			p.sizes[p.slot[i]] = max(p.sizes[p.slot[i]], size)
		} else {
			p.slot[i] = len(p.sizes)
			p.sizes = append(p.sizes, size)
		}
		for _, in := range s.inputs {
			if in != Input && last[in] == i && !contains(free, p.slot[in]) {
				free = append(free, p.slot[in])
			}
		}
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// scratch is one worker's buffers for the spatial part of one image.
type scratch struct {
	bufs [][]float32
	col  []float32
}

func (p *plan) scratch() *scratch {
	if s, ok := p.pool.Get().(*scratch); ok {
		return s
	}
	// One im2col buffer per core: a lone image spreads its convolution bands over them.
	s := &scratch{bufs: make([][]float32, len(p.sizes)), col: hugepages.Make[float32](p.col * runtime.GOMAXPROCS(0))}
	for i, size := range p.sizes {
		s.bufs[i] = hugepages.Make[float32](size)
	}
	return s
}

// Forward computes count images (h×w×3 each, NHWC, in x) into out (count × the
// OutputShape's size).
func (n *Net) Forward(x []float32, count, h, w int, out []float32) error {
	p, err := n.plan(h, w)
	if err != nil {
		return err
	}
	if err := n.refresh(); err != nil {
		return err
	}
	if len(x) != count*h*w*3 {
		return fmt.Errorf("engine: %d input values for %d images of %d×%d×3", len(x), count, h, w)
	}
	outPer := p.shapes[len(p.shapes)-1].size()
	if len(out) != count*outPer {
		return fmt.Errorf("engine: output has %d values, want %d", len(out), count*outPer)
	}
	if count == 0 {
		return nil
	}
	procs := runtime.GOMAXPROCS(0)
	// The spatial part's output per image.
	per := h * w * 3
	if n.spatial > 0 {
		per = p.shapes[n.spatial-1].size()
	}
	feat := out
	if n.spatial < len(n.steps) {
		feat = make([]float32, count*per)
	}
	if n.spatial > 0 {
		// One image per core; with fewer images than cores the rest go inside the products.
		workers := max(1, min(procs, count))
		inner := max(1, procs/workers)
		next := make(chan int, count)
		for i := range count {
			next <- i
		}
		close(next)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				s := p.scratch()
				defer p.pool.Put(s)
				for i := range next {
					n.image(p, s, x[i*h*w*3:(i+1)*h*w*3], h, w, feat[i*per:(i+1)*per], inner)
				}
			})
		}
		wg.Wait()
	} else {
		copy(feat, x)
	}
	// Dense layers: the batch as one matrix (count × size).
	cur := feat
	for i := n.spatial; i < len(n.steps); i++ {
		s := n.steps[i]
		dst := out
		if i != len(n.steps)-1 {
			dst = make([]float32, count*s.out)
		}
		// The product packs the kernel block by block as it goes: with a handful of rows it
		// reads each weight once either way, and the kernel is not copied whole.
		gemm.MulWorkers(procs, count, s.out, s.in, cur, s.in, s.kernel, s.out, dst, s.out)
		for r := range count {
			biasActivate(dst[r*s.out:(r+1)*s.out], s.bias, s.act)
		}
		cur = dst
	}
	return nil
}

// image runs the spatial steps on one image into out.
func (n *Net) image(p *plan, s *scratch, img []float32, h, w int, out []float32, workers int) {
	in := func(st *step, j int) ([]float32, shape) {
		if st.inputs[j] == Input {
			return img, shape{h, w, 3}
		}
		k := st.inputs[j]
		return s.bufs[p.slot[k]][:p.shapes[k].size()], p.shapes[k]
	}
	for i, st := range n.steps[:n.spatial] {
		y := p.shapes[i]
		var dst []float32
		if p.slot[i] < 0 {
			dst = out
		} else {
			dst = s.bufs[p.slot[i]][:y.size()]
		}
		src, x := in(st, 0)
		switch st.kind {
		case stepConv:
			conv(dst, src, x, y, st, p.pads[i], s.col, workers)
		case stepAffine:
			for q := 0; q < len(src); q += x.c {
				d, v := dst[q:q+x.c], src[q:q+x.c]
				for c := range d {
					d[c] = v[c]*st.scale[c] + st.bias[c]
				}
				if st.relu {
					relu(d)
				}
			}
		case stepRelu:
			copy(dst, src)
			if st.relu {
				relu(dst)
			}
		case stepAdd:
			other, _ := in(st, 1)
			add(dst, src, other, st.relu, workers)
		case stepPad:
			zeroPad(dst, src, x, st.pad)
		case stepMaxPool:
			maxPool(dst, src, x, y, st.k, st.stride)
		case stepFlatten:
			copy(dst, src) // NHWC is already Keras' (H, W, C) order
		case stepGlobalAvg, stepGlobalMax:
			globalPool(dst, src, x.c, st.kind == stepGlobalMax)
		}
	}
}

// add is a residual connection (dst = a + b, then the ReLU), split over workers: at batch 1
// a lone image has both cores, and the adds of a large feature map are worth sharing.
func add(dst, a, b []float32, relu bool, workers int) {
	const minShare = 1 << 15 // values below which a second goroutine costs more than it saves
	workers = max(1, min(workers, len(dst)/minShare))
	if workers == 1 {
		gemm.Add(dst, a, b, relu)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(dst)/workers, (w+1)*len(dst)/workers
		wg.Go(func() { gemm.Add(dst[lo:hi], a[lo:hi], b[lo:hi], relu) })
	}
	wg.Wait()
}

func relu(v []float32) {
	for j, a := range v {
		v[j] = max(a, 0)
	}
}

// conv computes a convolution with its folded batch norm, bias and ReLU: out = im2col(in) ·
// kernel, a band of output rows at a time. With several workers and at least as many bands,
// the bands are spread over them (im2col and bias too, not only the products; col holds one
// buffer per worker); otherwise the workers split each product. A band is computed the same
// way either way, so the result does not depend on workers.
func conv(out, in []float32, x, y shape, st *step, pad [4]int, col []float32, workers int) {
	k := st.k * st.k * st.in
	rows := bandRows(y.h, y.w, k)
	bands := ceilDiv(y.h, rows)
	direct := st.k == 1 && st.stride == 1 && pad == [4]int{}
	band := func(b int, col []float32, workers int) {
		y0, y1 := b*rows, min(y.h, (b+1)*rows)
		m := (y1 - y0) * y.w
		a := in[y0*y.w*st.in:]
		if !direct {
			im2col(col[:m*k], in, x, st.k, st.stride, pad[0], pad[1], y0, y1, y.w)
			a = col
		}
		dst := out[y0*y.w*st.out : y1*y.w*st.out]
		gemm.MulPackedBias(workers, m, a, k, st.packed, st.bias, st.relu, dst, st.out)
	}
	if workers > 1 && bands >= workers && bands%workers != 0 {
		// Thinner bands, as many for each worker: 7 bands on 2 cores keep one idle for the
		// last, 8 do not. The bits do not depend on the band height.
		bands = ceilDiv(bands, workers) * workers
		rows = ceilDiv(y.h, bands)
		bands = ceilDiv(y.h, rows)
	}
	if workers < 2 || bands < workers || len(col)/workers < rows*y.w*k {
		for b := range bands {
			band(b, col, workers)
		}
		return
	}
	per := len(col) / workers
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		own := col[w*per : (w+1)*per]
		wg.Go(func() {
			for b := int(next.Add(1) - 1); b < bands; b = int(next.Add(1) - 1) {
				band(b, own, 1)
			}
		})
	}
	wg.Wait()
}

// bandRows is the number of output rows a convolution band holds: as many as fit in
// bandFloats im2col values, at least one.
func bandRows(h, w, k int) int { return max(1, min(h, bandFloats/(w*k))) }

// im2col writes, for each output pixel of rows [y0, y1) (ow wide), the kk×kk×Cin input patch
// it reads, in Keras' kernel order (kh, kw, cin), with zeros outside the image (padding top,
// left).
func im2col(dst, in []float32, x shape, kk, stride, top, left, y0, y1, ow int) {
	cin := x.c
	k := kk * kk * cin
	for oy := y0; oy < y1; oy++ {
		for ox := range ow {
			row := dst[((oy-y0)*ow+ox)*k : ((oy-y0)*ow+ox+1)*k]
			ix0 := ox*stride - left
			for kh := range kk {
				seg := row[kh*kk*cin : (kh+1)*kk*cin]
				iy := oy*stride + kh - top
				if iy < 0 || iy >= x.h {
					clear(seg)
					continue
				}
				base := iy * x.w
				if ix0 >= 0 && ix0+kk <= x.w {
					copy(seg, in[(base+ix0)*cin:(base+ix0+kk)*cin])
					continue
				}
				for kw := range kk {
					ix := ix0 + kw
					part := seg[kw*cin : (kw+1)*cin]
					if ix < 0 || ix >= x.w {
						clear(part)
					} else {
						copy(part, in[(base+ix)*cin:(base+ix+1)*cin])
					}
				}
			}
		}
	}
}

func zeroPad(dst, src []float32, x shape, pad int) {
	ow := x.w + 2*pad
	clear(dst)
	for r := range x.h {
		copy(dst[((r+pad)*ow+pad)*x.c:], src[r*x.w*x.c:(r+1)*x.w*x.c])
	}
}

// maxPool is MaxPooling2D(k, stride) with 'valid' padding. A NaN in a window gives NaN.
func maxPool(dst, src []float32, x, y shape, k, stride int) {
	c := x.c
	for oy := range y.h {
		for ox := range y.w {
			d := dst[(oy*y.w+ox)*c : (oy*y.w+ox+1)*c]
			first := true
			for ky := range k {
				row := (oy*stride + ky) * x.w
				for kx := range k {
					v := src[(row+ox*stride+kx)*c : (row+ox*stride+kx+1)*c]
					if first {
						copy(d, v)
						first = false
						continue
					}
					for j := range d {
						d[j] = max(d[j], v[j])
					}
				}
			}
		}
	}
}

func globalPool(dst, in []float32, c int, useMax bool) {
	pixels := len(in) / c
	if useMax {
		copy(dst, in[:c])
		for p := 1; p < pixels; p++ {
			for j, v := range in[p*c : (p+1)*c] {
				dst[j] = max(dst[j], v)
			}
		}
		return
	}
	sum := make([]float64, c)
	for p := range pixels {
		for j, v := range in[p*c : (p+1)*c] {
			sum[j] += float64(v)
		}
	}
	for j := range dst {
		dst[j] = float32(sum[j] / float64(pixels))
	}
}

// biasActivate adds the bias to one output row and applies a Keras activation (softmax over
// the row).
func biasActivate(row, bias []float32, act string) {
	bias = bias[:len(row)]
	if act == "relu" {
		for j, v := range row {
			row[j] = max(v+bias[j], 0)
		}
		return
	}
	for j := range row {
		row[j] += bias[j]
	}
	switch act {
	case "sigmoid":
		for j, v := range row {
			row[j] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case "softmax":
		m := float32(math.Inf(-1))
		for _, v := range row {
			m = max(m, v)
		}
		var sum float64
		for j, v := range row {
			e := math.Exp(float64(v - m))
			row[j] = float32(e)
			sum += e
		}
		for j := range row {
			row[j] = float32(float64(row[j]) / sum)
		}
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
