// Package inference runs a frozen VGG16 — the weights of an already-built
// applications.Model — without GoMLX, on the workbook's own SIMD matrix multiplication
// (internal/gemm).
//
// It exists for the cost of feature caching: `workbook finetune --cached-features` sends every
// image once through the frozen base, and GoMLX's pure-Go backend multiplies with scalar Go
// code, about ten times slower than PyTorch on the same CPU. Here each 3×3 convolution is an
// im2col product (in bands of output rows, so the copy stays in cache and memory per image
// stays bounded) on an AVX2/FMA micro-kernel, with the images of a batch spread over the
// cores. The computation is Keras': 'same' zero padding, bias, ReLU, 2×2 max pooling,
// Flatten in (H, W, C) order, Dense layers, softmax on "predictions" — so the outputs equal
// the GoMLX model's to float32 rounding (the summation order differs).
package inference

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// BatchSize is the number of images Predict computes together (Keras' predict default, as
// applications.Model.Predict): the Dense layers multiply a whole batch at once, and memory
// stays bounded for any number of images.
const BatchSize = applications.PredictBatchSize

// bandFloats bounds the im2col buffer of one convolution band (output rows × width × 9·Cin
// values): 1 MiB, about a core's L2, so the packed copy gemm makes reads it from cache.
const bandFloats = 1 << 18

type opKind int

const (
	opConv opKind = iota
	opMaxPool
	opFlatten
	opGlobalAvg
	opGlobalMax
	opDense
)

// layer is one computation of the chain, with its weights copied out of the model.
type layer struct {
	name       string
	op         opKind
	activation string // conv, dense: "relu", "softmax", "sigmoid" or "linear"
	in, out    int    // conv: Cin, Cout; dense: input and output sizes
	// kernel is the weight matrix, packed for gemm: conv (3·3·Cin)×Cout in Keras' HWIO order
	// (kh, kw, cin rows), dense in×out.
	kernel *gemm.PackedB
	bias   []float32
}

// Net is a frozen VGG16 (or a prefix of it, plus Flatten, global pooling or Dense layers
// added on top) ready to predict. It holds a copy of the weights taken by NewVGG16: later
// changes to the model's variables are not seen. Predict may be called from several
// goroutines at once.
type Net struct {
	model  string // the model's name, for messages
	until  string
	inH    int // applications.None when open
	inW    int
	layers []*layer
	// imageWorkers is the number of goroutines Predict spreads a batch's images over (0:
	// GOMAXPROCS); the cores left over (fewer images than cores) go inside the products.
	imageWorkers int

	pool sync.Pool // *scratch
}

// scratch is one worker's buffers for the convolutional part of one image.
type scratch struct {
	act [2][]float32
	col []float32
}

// NewVGG16 takes the weights of m, a VGG16 built by applications.VGG16 or applications.New
// (with or without the top, possibly renamed by AsSequential and with layers added by
// AddFlatten, AddGlobalPooling or AddDense), up to and including the layer until: "fc2" (the
// 4096 features Exercise 8.03 trains its head on), "fc1", "block5_pool", "predictions", any
// other layer of the chain, or "" for the model's output. The model must compute in float32.
func NewVGG16(m *applications.Model, until string) (*Net, error) {
	if m == nil {
		return nil, errors.New("inference: NewVGG16: nil model")
	}
	arch := m.Architecture()
	if until == "" {
		until = arch.Output().Name
	}
	end := -1
	for i, l := range arch.Layers {
		if l.Name == until {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("inference: %s has no layer %q", arch.Name, until)
	}
	ref, err := applications.VGG16Architecture(arch.IncludeTop, arch.Pooling, nil)
	if err != nil {
		return nil, fmt.Errorf("inference: unsupported model %s: %w", arch.Name, err)
	}
	in := arch.InputShape()
	if len(in) != 3 || in[2] != 3 {
		return nil, fmt.Errorf("inference: unsupported model %s: input shape %v", arch.Name, in)
	}
	n := &Net{model: arch.Name, until: until, inH: in[0], inW: in[1]}
	ctx := m.Context()
	prev := arch.Layers[0].Name
	for i, l := range arch.Layers[1 : end+1] {
		i++ // index in arch.Layers
		if len(l.Inbound) != 1 || l.Inbound[0] != prev {
			return nil, fmt.Errorf("inference: unsupported model %s: layer %q is not fed by %q alone", arch.Name, l.Name, prev)
		}
		prev = l.Name
		if !l.Added && (i >= len(ref.Layers) || ref.Layers[i].Name != l.Name || ref.Layers[i].Op != l.Op) {
			return nil, fmt.Errorf("inference: unsupported model %s: layer %d is %q, VGG16 has %q there",
				arch.Name, i, l.Name, refName(ref, i))
		}
		c := l.Config
		ly := &layer{name: l.Name, activation: c.Activation}
		switch l.Op {
		case applications.OpConv2D:
			if c.KernelSize != 3 || c.Strides != 1 || c.Padding != "same" {
				return nil, fmt.Errorf("inference: unsupported layer %q: Conv2D %d×%d stride %d %q (want 3×3, stride 1, same)",
					l.Name, c.KernelSize, c.KernelSize, c.Strides, c.Padding)
			}
			ly.op = opConv
			w := l.Weight("kernel")
			ly.in, ly.out = w.Shape[2], w.Shape[3]
		case applications.OpMaxPool:
			if c.PoolSize != 2 || c.Strides != 2 {
				return nil, fmt.Errorf("inference: unsupported layer %q: MaxPooling2D %d×%d stride %d (want 2×2 stride 2)",
					l.Name, c.PoolSize, c.PoolSize, c.Strides)
			}
			ly.op = opMaxPool
		case applications.OpFlatten:
			ly.op = opFlatten
		case applications.OpGlobalAvgPool:
			ly.op = opGlobalAvg
		case applications.OpGlobalMaxPool:
			ly.op = opGlobalMax
		case applications.OpDense:
			ly.op = opDense
			w := l.Weight("kernel")
			ly.in, ly.out = w.Shape[0], w.Shape[1]
		default:
			return nil, fmt.Errorf("inference: unsupported layer %q (%s)", l.Name, l.Class)
		}
		switch ly.activation {
		case "relu", "softmax", "sigmoid", "linear", "":
		default:
			return nil, fmt.Errorf("inference: unsupported activation %q in layer %q", ly.activation, l.Name)
		}
		if ly.op == opConv || ly.op == opDense {
			err := weightValues(ctx.In(l.Name), l, "kernel", func(v []float32) {
				rows := len(v) / ly.out
				ly.kernel = gemm.PackB(rows, ly.out, v, ly.out)
			})
			if err != nil {
				return nil, err
			}
			if err := weightValues(ctx.In(l.Name), l, "bias", func(v []float32) { ly.bias = slices.Clone(v) }); err != nil {
				return nil, err
			}
		}
		n.layers = append(n.layers, ly)
	}
	// The layers after a Flatten, a global pooling or a Dense are flat: only Dense may follow.
	flat := false
	for _, ly := range n.layers {
		if flat && ly.op != opDense {
			return nil, fmt.Errorf("inference: unsupported model %s: %q follows a flat layer", arch.Name, ly.name)
		}
		flat = flat || ly.op >= opFlatten
	}
	return n, nil
}

func refName(ref *applications.Architecture, i int) string {
	if i < len(ref.Layers) {
		return ref.Layers[i].Name
	}
	return "no layer"
}

// weightValues passes the float32 values of layer l's weight key — variable <layer
// name>/<key> of the model's context — to use, which must copy what it keeps.
func weightValues(ctx *context.Context, l *applications.Layer, key string, use func([]float32)) error {
	want := l.Weight(key)
	v := ctx.GetVariableByScopeAndName(ctx.Scope(), key)
	if want == nil || v == nil {
		return fmt.Errorf("inference: the model has no variable %s/%s", l.Name, key)
	}
	t, err := v.Value()
	if err != nil {
		return fmt.Errorf("inference: variable %s/%s: %w", l.Name, key, err)
	}
	if t.DType() != dtypes.Float32 {
		return fmt.Errorf("inference: unsupported model: variable %s/%s is %s, not float32", l.Name, key, t.DType())
	}
	if !slices.Equal(t.Shape().Dimensions, want.Shape) {
		return fmt.Errorf("inference: variable %s/%s has shape %v, layer %q expects %v", l.Name, key,
			t.Shape().Dimensions, l.Name, want.Shape)
	}
	if err := tensors.ConstFlatData(t, use); err != nil {
		return fmt.Errorf("inference: variable %s/%s: %w", l.Name, key, err)
	}
	return nil
}

// MustNewVGG16 is NewVGG16 for notebook cells: it panics on error.
func MustNewVGG16(m *applications.Model, until string) *Net {
	n, err := NewVGG16(m, until)
	if err != nil {
		panic(err)
	}
	return n
}

// Until is the name of the layer whose output Predict returns.
func (n *Net) Until() string { return n.until }

// Predict is the model's Predict up to the Until layer, with the same contract as
// applications.Model.Predict: x is a batch (N, H, W, 3) of preprocessed images (used as
// given), the output has N rows, e.g. (N, 4096) for "fc2".
func (n *Net) Predict(x *kernelext.Array) (*kernelext.Array, error) {
	if x == nil || len(x.Shape) != 4 || x.Shape[3] != 3 || (n.inH != applications.None && x.Shape[1] != n.inH) ||
		(n.inW != applications.None && x.Shape[2] != n.inW) || x.Shape[1] < 1 || x.Shape[2] < 1 {
		got := "nil"
		if x != nil {
			got = x.ShapeString()
		}
		return nil, fmt.Errorf("inference: %s.Predict: input must have shape (N, %s, %s, 3), got %s",
			n.model, dimString(n.inH), dimString(n.inW), got)
	}
	if len(x.Data) != x.Size() {
		return nil, fmt.Errorf("inference: %s.Predict: input has %d values for shape %s", n.model, len(x.Data), x.ShapeString())
	}
	h, w := x.Shape[1], x.Shape[2]
	outShape, err := n.outputShape(h, w)
	if err != nil {
		return nil, err
	}
	if bad := countNonFinite(x.Data); bad > 0 {
		fmt.Fprintf(applications.Warnings, "inference: warning: %s.Predict: input contains %d NaN or Inf values; their outputs will be NaN\n",
			n.model, bad)
	}
	count := x.Shape[0]
	out := kernelext.NewArray(append([]int{count}, outShape...)...)
	inPer, outPer := h*w*3, prod(outShape)
	for start := 0; start < count; start += BatchSize {
		end := min(start+BatchSize, count)
		n.forward(x.Data[start*inPer:end*inPer], end-start, h, w, out.Data[start*outPer:end*outPer])
	}
	return out, nil
}

// MustPredict is Predict for notebook cells: it panics on error.
func (n *Net) MustPredict(x *kernelext.Array) *kernelext.Array {
	y, err := n.Predict(x)
	if err != nil {
		panic(err)
	}
	return y
}

// outputShape follows an (h, w, 3) image through the layers, checking that the Dense layers
// receive the size their kernels expect (an open input size can break that).
func (n *Net) outputShape(h, w int) ([]int, error) {
	shape := []int{h, w, 3}
	for _, ly := range n.layers {
		switch ly.op {
		case opConv:
			shape = []int{shape[0], shape[1], ly.out}
		case opMaxPool:
			if shape[0] < 2 || shape[1] < 2 {
				return nil, fmt.Errorf("inference: %s.Predict: %s needs a 2×2 input, got %d×%d", n.model, ly.name, shape[0], shape[1])
			}
			shape = []int{shape[0] / 2, shape[1] / 2, shape[2]}
		case opFlatten:
			shape = []int{prod(shape)}
		case opGlobalAvg, opGlobalMax:
			shape = []int{shape[2]}
		case opDense:
			if shape[0] != ly.in {
				return nil, fmt.Errorf("inference: %s.Predict: %s expects %d inputs, gets %d", n.model, ly.name, ly.in, shape[0])
			}
			shape = []int{ly.out}
		}
	}
	return shape, nil
}

// forward computes count images (h×w×3 each, in x) into out: the spatial layers image by
// image on the workers, then the flat layers on the whole batch at once.
func (n *Net) forward(x []float32, count, h, w int, out []float32) {
	split := len(n.layers)
	for i, ly := range n.layers {
		if ly.op >= opFlatten {
			split = i
			break
		}
	}
	spatial, flat := n.layers[:split], n.layers[split:]
	// The spatial part's output per image.
	fh, fw, fc := h, w, 3
	for _, ly := range spatial {
		if ly.op == opConv {
			fc = ly.out
		} else {
			fh, fw = fh/2, fw/2
		}
	}
	per := fh * fw * fc
	feat := out
	if len(flat) > 0 {
		feat = make([]float32, count*per)
	}
	procs := runtime.GOMAXPROCS(0)
	workers := procs
	if n.imageWorkers > 0 {
		workers = n.imageWorkers
	}
	workers = max(1, min(workers, count))
	inner := max(1, procs/workers)
	var wg sync.WaitGroup
	next := make(chan int, count)
	for i := range count {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			s := n.scratch(h, w)
			defer n.pool.Put(s)
			for i := range next {
				n.spatialImage(spatial, s, x[i*h*w*3:(i+1)*h*w*3], h, w, feat[i*per:(i+1)*per], inner)
			}
		})
	}
	wg.Wait()
	if len(flat) == 0 {
		return
	}
	// Flat layers: the batch as one matrix (count × size).
	cur, size := feat, per
	for i, ly := range flat {
		switch ly.op {
		case opFlatten:
			// NHWC rows are already in Keras' (H, W, C) order.
		case opGlobalAvg, opGlobalMax:
			pooled := make([]float32, count*fc)
			for r := range count {
				globalPool(pooled[r*fc:(r+1)*fc], cur[r*size:(r+1)*size], fc, ly.op == opGlobalMax)
			}
			cur, size = pooled, fc
		case opDense:
			dst := out
			if i != len(flat)-1 {
				dst = make([]float32, count*ly.out)
			}
			gemm.MulPacked(procs, count, cur, ly.in, ly.kernel, dst, ly.out)
			for r := range count {
				biasActivate(dst[r*ly.out:(r+1)*ly.out], ly.bias, ly.activation)
			}
			cur, size = dst, ly.out
		}
	}
	if len(out) > 0 && &cur[0] != &out[0] {
		copy(out, cur) // the last flat layer was a Flatten or a pooling
	}
}

// scratch returns a worker's buffers, sized for an h×w input.
func (n *Net) scratch(h, w int) *scratch {
	s, _ := n.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	need := 0
	ch, cw, cc := h, w, 3
	col := 0
	for _, ly := range n.layers {
		switch ly.op {
		case opConv:
			col = max(col, bandRows(ch, cw, 9*cc)*cw*9*cc)
			cc = ly.out
		case opMaxPool:
			ch, cw = ch/2, cw/2
		}
		need = max(need, ch*cw*cc)
	}
	for i := range s.act {
		if cap(s.act[i]) < need {
			s.act[i] = make([]float32, need)
		}
	}
	if cap(s.col) < col {
		s.col = make([]float32, col)
	}
	return s
}

// spatialImage runs the convolutions and poolings on one h×w×3 image into out.
func (n *Net) spatialImage(spatial []*layer, s *scratch, img []float32, h, w int, out []float32, workers int) {
	cur, c := img, 3
	for i, ly := range spatial {
		var dst []float32
		if i == len(spatial)-1 {
			dst = out
		} else {
			dst = s.act[i%2]
		}
		switch ly.op {
		case opConv:
			dst = dst[:h*w*ly.out]
			conv3x3(dst, cur, h, w, c, ly, s.col, workers)
			c = ly.out
		case opMaxPool:
			dst = dst[:(h/2)*(w/2)*c]
			maxPool2(dst, cur, h, w, c)
			h, w = h/2, w/2
		}
		cur = dst
	}
	if len(spatial) == 0 {
		copy(out, img)
	}
}

// conv3x3 is a 3×3, stride 1, 'same' convolution with bias and activation: out (h×w×Cout) =
// im2col(in)·kernel, a band of output rows at a time.
func conv3x3(out, in []float32, h, w, cin int, ly *layer, col []float32, workers int) {
	k := 9 * cin
	rows := bandRows(h, w, k)
	for y0 := 0; y0 < h; y0 += rows {
		y1 := min(h, y0+rows)
		m := (y1 - y0) * w
		im2col(col[:m*k], in, h, w, cin, y0, y1)
		band := out[y0*w*ly.out : y1*w*ly.out]
		gemm.MulPacked(workers, m, col, k, ly.kernel, band, ly.out)
		for p := range m {
			biasActivate(band[p*ly.out:(p+1)*ly.out], ly.bias, ly.activation)
		}
	}
}

// bandRows is the number of output rows a convolution band holds: as many as fit in
// bandFloats im2col values, at least one.
func bandRows(h, w, k int) int { return max(1, min(h, bandFloats/(w*k))) }

// im2col writes, for each output pixel of rows [y0, y1), the 3×3×Cin input patch around it in
// Keras' kernel order (kh, kw, cin), with zeros outside the image ('same' padding).
func im2col(dst, in []float32, h, w, cin, y0, y1 int) {
	k := 9 * cin
	for y := y0; y < y1; y++ {
		for x := range w {
			row := dst[((y-y0)*w+x)*k : ((y-y0)*w+x+1)*k]
			for kh := range 3 {
				seg := row[kh*3*cin : (kh+1)*3*cin]
				yy := y + kh - 1
				if yy < 0 || yy >= h {
					clear(seg)
					continue
				}
				base := yy * w
				if x >= 1 && x+1 < w {
					copy(seg, in[(base+x-1)*cin:(base+x+2)*cin])
					continue
				}
				for kw := range 3 {
					xx := x + kw - 1
					part := seg[kw*cin : (kw+1)*cin]
					if xx < 0 || xx >= w {
						clear(part)
					} else {
						copy(part, in[(base+xx)*cin:(base+xx+1)*cin])
					}
				}
			}
		}
	}
}

// maxPool2 is MaxPooling2D(2, 2) with 'valid' padding (an odd last row or column is dropped,
// as in Keras). A NaN in a window gives NaN.
func maxPool2(out, in []float32, h, w, c int) {
	oh, ow := h/2, w/2
	for y := range oh {
		r0 := in[(2*y)*w*c : (2*y+1)*w*c]
		r1 := in[(2*y+1)*w*c : (2*y+2)*w*c]
		dst := out[y*ow*c : (y+1)*ow*c]
		for x := range ow {
			a, b := r0[2*x*c:(2*x+2)*c], r1[2*x*c:(2*x+2)*c]
			d := dst[x*c : (x+1)*c]
			for j := range d {
				d[j] = max(a[j], a[c+j], b[j], b[c+j])
			}
		}
	}
}

func globalPool(dst, in []float32, c int, useMax bool) {
	pixels := len(in) / c
	for j := range c {
		if useMax {
			m := float32(math.Inf(-1))
			for p := range pixels {
				m = max(m, in[p*c+j])
			}
			dst[j] = m
			continue
		}
		var s float64
		for p := range pixels {
			s += float64(in[p*c+j])
		}
		dst[j] = float32(s / float64(pixels))
	}
}

// biasActivate adds the bias to one output row and applies a Keras activation (softmax over
// the row), in one pass for ReLU, the common case.
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

func countNonFinite(data []float32) int {
	bad := 0
	for _, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			bad++
		}
	}
	return bad
}

func prod(dims []int) int {
	p := 1
	for _, d := range dims {
		p *= d
	}
	return p
}

func dimString(d int) string {
	if d == applications.None {
		return "None"
	}
	return fmt.Sprint(d)
}
