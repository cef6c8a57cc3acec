package engine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/transfer-learning-go/workbook/internal/gemm"
)

// Trainer computes training steps — the forward pass keeping what the backward pass needs,
// then the gradients — of a chain of layers on internal/gemm: the trainable top of a
// fine-tuned VGG16 (block5's 3×3 'same' convolutions with their ReLU, the 2×2 max pooling,
// Flatten and the Dense layers of the classifier), whose gradients cost GoMLX's pure-Go
// backend about a minute per step.
//
// The chain ends in a Dense layer whose output before its activation (the logits) Forward
// returns: the loss, its gradient and the optimizer are the caller's (the package knows
// nothing of Keras). Like Net, a Trainer spreads its work over the cores; calls must not
// overlap.
type Trainer struct {
	layers []Layer
	in     shape   // per input
	shapes []shape // each layer's output per input
	pads   [][4]int
	// Of the last Forward: the input, each layer's output (after its activation; the
	// last layer's before it) and the layers' weights.
	count   int
	x       []float32
	outs    [][]float32
	weights []Weights
}

// NewTrainer plans a chain (each layer reads the previous one; the first reads Input) on
// inputs of shape h×w×c. It supports Conv with 'same' padding and stride 1 (ReLU or linear),
// MaxPool, Flatten and Dense (ReLU or linear; the last any activation, which the caller
// applies to the logits), and ends in a Dense layer.
func NewTrainer(layers []Layer, h, w, c int) (*Trainer, error) {
	if len(layers) == 0 {
		return nil, errors.New("engine: empty layer table")
	}
	t := &Trainer{layers: layers, in: shape{h, w, c}, shapes: make([]shape, len(layers)), pads: make([][4]int, len(layers))}
	x := t.in
	for i, l := range layers {
		want := Input
		if i > 0 {
			want = i - 1
		}
		if len(l.Inputs) != 1 || l.Inputs[0] != want {
			return nil, fmt.Errorf("engine: training layer %q: only a chain of layers is supported", l.Name)
		}
		last := i == len(layers)-1
		if !last && l.Activation != "relu" && l.Activation != "linear" && l.Activation != "" {
			return nil, fmt.Errorf("engine: training layer %q: unsupported activation %q", l.Name, l.Activation)
		}
		if x.h == 0 && l.Op != Dense {
			return nil, fmt.Errorf("engine: training layer %q needs a feature map, gets %d values", l.Name, x.c)
		}
		var y shape
		switch l.Op {
		case Conv:
			if !l.Same || l.Stride != 1 || l.Kernel < 1 {
				return nil, fmt.Errorf("engine: training layer %q: only 'same' stride-1 convolutions are supported", l.Name)
			}
			if x.c != l.In || l.Out < 1 {
				return nil, fmt.Errorf("engine: training layer %q expects %d channels, gets %d", l.Name, l.In, x.c)
			}
			y = shape{x.h, x.w, l.Out}
			th := l.Kernel - 1
			t.pads[i] = [4]int{th / 2, th / 2, th - th/2, th - th/2}
		case MaxPool:
			if l.Kernel < 1 || l.Stride < 1 || x.h < l.Kernel || x.w < l.Kernel {
				return nil, fmt.Errorf("engine: training layer %q: pooling %d×%d stride %d on %d×%d", l.Name, l.Kernel, l.Kernel, l.Stride, x.h, x.w)
			}
			y = shape{(x.h-l.Kernel)/l.Stride + 1, (x.w-l.Kernel)/l.Stride + 1, x.c}
		case Flatten:
			y = shape{c: x.size()}
		case Dense:
			if x.size() != l.In || l.Out < 1 {
				return nil, fmt.Errorf("engine: training layer %q expects %d inputs, gets %d", l.Name, l.In, x.size())
			}
			y = shape{c: l.Out}
		default:
			return nil, fmt.Errorf("engine: training layer %q: unsupported op %d", l.Name, l.Op)
		}
		if last && l.Op != Dense {
			return nil, fmt.Errorf("engine: training layer %q: the chain must end in a Dense layer", l.Name)
		}
		t.shapes[i] = y
		x = y
	}
	return t, nil
}

// OutputSize is the number of logits per input.
func (t *Trainer) OutputSize() int { return t.shapes[len(t.shapes)-1].c }

// Forward computes count inputs x (count × h×w×c, NHWC) with weights (one entry per layer,
// kernel and bias in Keras' layouts; empty for layers without weights) and returns the last
// layer's output before its activation (count × OutputSize). It keeps x, the weights and
// every layer's output for Backward: the caller must leave them unchanged until then.
func (t *Trainer) Forward(x []float32, count int, weights []Weights) ([]float32, error) {
	if len(weights) != len(t.layers) {
		return nil, fmt.Errorf("engine: %d weight entries for %d layers", len(weights), len(t.layers))
	}
	if count < 1 || len(x) != count*t.in.size() {
		return nil, fmt.Errorf("engine: %d input values for %d inputs of %d", len(x), count, t.in.size())
	}
	for i, l := range t.layers {
		var k int
		switch l.Op {
		case Conv:
			k = l.Kernel * l.Kernel * l.In
		case Dense:
			k = l.In
		default:
			continue
		}
		if len(weights[i].Kernel) != k*l.Out || len(weights[i].Bias) != l.Out {
			return nil, fmt.Errorf("engine: layer %q: %d kernel and %d bias values, want %d and %d", l.Name,
				len(weights[i].Kernel), len(weights[i].Bias), k*l.Out, l.Out)
		}
	}
	t.count, t.x, t.weights = count, x, weights
	t.outs = make([][]float32, len(t.layers))
	procs := runtime.GOMAXPROCS(0)
	cur, xs := x, t.in
	for i, l := range t.layers {
		y := t.shapes[i]
		out := make([]float32, count*y.size())
		switch l.Op {
		case Conv:
			st := &step{k: l.Kernel, stride: 1, in: l.In, out: l.Out, relu: l.Activation == "relu",
				packed: gemm.PackB(l.Kernel*l.Kernel*l.In, l.Out, weights[i].Kernel, l.Out), bias: weights[i].Bias}
			colSize := bandRows(y.h, y.w, l.Kernel*l.Kernel*l.In) * y.w * l.Kernel * l.Kernel * l.In
			perImage(count, procs, func(lo, hi, inner int) {
				col := make([]float32, colSize*inner)
				for b := lo; b < hi; b++ {
					conv(out[b*y.size():(b+1)*y.size()], cur[b*xs.size():(b+1)*xs.size()], xs, y, st, t.pads[i], col, inner)
				}
			})
		case MaxPool:
			perImage(count, procs, func(lo, hi, _ int) {
				for b := lo; b < hi; b++ {
					maxPool(out[b*y.size():(b+1)*y.size()], cur[b*xs.size():(b+1)*xs.size()], xs, y, l.Kernel, l.Stride)
				}
			})
		case Flatten:
			copy(out, cur) // NHWC is already Keras' (H, W, C) order
		case Dense:
			gemm.MulWorkers(procs, count, l.Out, l.In, cur, l.In, weights[i].Kernel, l.Out, out, l.Out)
			act := l.Activation
			if i == len(t.layers)-1 {
				act = "linear" // the logits
			}
			for r := range count {
				biasActivate(out[r*l.Out:(r+1)*l.Out], weights[i].Bias, act)
			}
		}
		t.outs[i] = out
		cur, xs = out, y
	}
	return t.outs[len(t.outs)-1], nil
}

// Backward computes, from the gradient of the loss with respect to the logits of the last
// Forward (count × OutputSize), the gradients of the kernels and biases of the layers where
// want is true (the others' entries stay empty), in Keras' layouts. The gradient flows down
// only as far as the lowest wanted layer.
//
// It is the chain rule as GoMLX's autodiff applies it to these layers: a ReLU passes the
// gradient where its output is positive, a max pooling to the first maximum of each window
// in row-major order (as XLA's and the workbook's GoMLX MaxPool gradient do), a Dense layer
// gives dW = Xᵀ·dY, db = Σ dY, dX = dY·Wᵀ, a convolution dW = im2col(X)ᵀ·dY, db = Σ dY and dX
// = col2im(dY·Wᵀ).
func (t *Trainer) Backward(dLogits []float32, want []bool) ([]Weights, error) {
	if t.outs == nil {
		return nil, errors.New("engine: Backward without Forward")
	}
	if len(want) != len(t.layers) {
		return nil, fmt.Errorf("engine: %d wanted flags for %d layers", len(want), len(t.layers))
	}
	if len(dLogits) != t.count*t.OutputSize() {
		return nil, fmt.Errorf("engine: %d logit gradients for %d inputs of %d", len(dLogits), t.count, t.OutputSize())
	}
	lowest := len(want)
	for i := len(want) - 1; i >= 0; i-- {
		if want[i] {
			lowest = i
		}
	}
	grads := make([]Weights, len(t.layers))
	procs := runtime.GOMAXPROCS(0)
	count := t.count
	dy := dLogits // gradient with respect to layer i's output (before the ReLU for the last)
	for i := len(t.layers) - 1; i >= lowest; i-- {
		l := t.layers[i]
		y := t.shapes[i]
		xs := t.in
		x := t.x
		if i > 0 {
			xs, x = t.shapes[i-1], t.outs[i-1]
		}
		if l.Activation == "relu" && i != len(t.layers)-1 {
			masked := make([]float32, len(dy))
			for j, v := range t.outs[i] {
				if v > 0 {
					masked[j] = dy[j]
				}
			}
			dy = masked
		}
		needDX := i > lowest
		var dx []float32
		switch l.Op {
		case Dense:
			if want[i] {
				xt := transpose(x, count, l.In)
				grads[i].Kernel = make([]float32, l.In*l.Out)
				gemm.MulWorkers(procs, l.In, l.Out, count, xt, count, dy, l.Out, grads[i].Kernel, l.Out)
				grads[i].Bias = columnSums(dy, count, l.Out)
			}
			if needDX {
				// dXᵀ = W·dYᵀ: the kernel is read in place, as the forward pass reads it.
				dyt := transpose(dy, count, l.Out)
				dxt := make([]float32, l.In*count)
				gemm.MulWorkers(procs, l.In, count, l.Out, t.weights[i].Kernel, l.Out, dyt, count, dxt, count)
				dx = transpose(dxt, l.In, count)
			}
		case Flatten:
			dx = dy
		case MaxPool:
			if needDX {
				dx = make([]float32, count*xs.size())
				perImage(count, procs, func(lo, hi, _ int) {
					for b := lo; b < hi; b++ {
						maxPoolBackward(dx[b*xs.size():(b+1)*xs.size()], x[b*xs.size():(b+1)*xs.size()],
							t.outs[i][b*y.size():(b+1)*y.size()], dy[b*y.size():(b+1)*y.size()], xs, y, l.Kernel, l.Stride)
					}
				})
			}
		case Conv:
			dx = t.convBackward(i, x, xs, dy, want[i], needDX, &grads[i], procs)
		}
		dy = dx
	}
	return grads, nil
}

// chunkFloats bounds the im2col values a convolution's backward pass holds at once (several
// images' worth, 32 MiB): large enough for efficient products, small enough to stay modest
// next to the model.
const chunkFloats = 1 << 23

// convBackward computes the gradients of convolution i from dy (count × HW × Cout, already
// through the ReLU): dW and db into g when want, and returns dX when needDX. The images are
// taken in chunks: for each, the im2col matrix (rows × K) is rebuilt from the kept input,
// dWᵀ += dYᵀ·col, and dCol = dY·Wᵀ is scattered back onto dX (col2im).
func (t *Trainer) convBackward(i int, x []float32, xs shape, dy []float32, want, needDX bool, g *Weights, procs int) []float32 {
	l := t.layers[i]
	y := t.shapes[i]
	k := l.Kernel * l.Kernel * l.In
	hw := y.h * y.w
	n := t.count * hw
	per := max(1, min(t.count, chunkFloats/(hw*k)))
	col := make([]float32, per*hw*k)
	var dyt, dwt, part []float32
	if want {
		dyt = transpose(dy, n, l.Out)
		dwt = make([]float32, l.Out*k)
		part = make([]float32, l.Out*k)
		g.Bias = columnSums(dy, n, l.Out)
	}
	var dx, dcol []float32
	var wt *gemm.PackedB
	if needDX {
		dx = make([]float32, t.count*xs.size())
		dcol = make([]float32, per*hw*k)
		wt = gemm.PackB(l.Out, k, transpose(t.weights[i].Kernel, k, l.Out), k)
	}
	pad := t.pads[i]
	for b0 := 0; b0 < t.count; b0 += per {
		b1 := min(t.count, b0+per)
		rows := (b1 - b0) * hw
		if want {
			perImage(b1-b0, procs, func(lo, hi, _ int) {
				for b := lo; b < hi; b++ {
					im2col(col[b*hw*k:(b+1)*hw*k], x[(b0+b)*xs.size():(b0+b+1)*xs.size()], xs, l.Kernel, 1, pad[0], pad[1], 0, y.h, y.w)
				}
			})
			dst := dwt
			if b0 > 0 {
				dst = part
			}
			gemm.MulWorkers(procs, l.Out, k, rows, dyt[b0*hw:], n, col, k, dst, k)
			if b0 > 0 {
				gemm.Add(dwt, dwt, part, false)
			}
		}
		if needDX {
			gemm.MulPacked(procs, rows, dy[b0*hw*l.Out:], l.Out, wt, dcol, k)
			perImage(b1-b0, procs, func(lo, hi, _ int) {
				for b := lo; b < hi; b++ {
					col2im(dx[(b0+b)*xs.size():(b0+b+1)*xs.size()], dcol[b*hw*k:(b+1)*hw*k], xs, l.Kernel, pad[0], pad[1], y.h, y.w)
				}
			})
		}
	}
	if want {
		g.Kernel = transpose(dwt, l.Out, k)
	}
	return dx
}

// col2im adds each row of col (an output pixel's kk×kk×Cin patch gradient, im2col's layout,
// stride 1) onto the input positions it was read from, skipping the padding.
func col2im(dst, col []float32, x shape, kk, top, left, oh, ow int) {
	cin := x.c
	k := kk * kk * cin
	for oy := range oh {
		for ox := range ow {
			row := col[(oy*ow+ox)*k : (oy*ow+ox+1)*k]
			for kh := range kk {
				iy := oy + kh - top
				if iy < 0 || iy >= x.h {
					continue
				}
				for kw := range kk {
					ix := ox + kw - left
					if ix < 0 || ix >= x.w {
						continue
					}
					d := dst[(iy*x.w+ix)*cin : (iy*x.w+ix+1)*cin]
					s := row[(kh*kk+kw)*cin : (kh*kk+kw+1)*cin]
					for c := range d {
						d[c] += s[c]
					}
				}
			}
		}
	}
}

// maxPoolBackward routes each pooled gradient to the first position of its window, in
// row-major order, that holds the window's maximum (adding where windows overlap).
func maxPoolBackward(dx, x, y, dy []float32, xs, ys shape, k, stride int) {
	c := xs.c
	for oy := range ys.h {
		for ox := range ys.w {
			o := (oy*ys.w + ox) * c
			for j := range c {
				m := y[o+j]
			window:
				for ky := range k {
					for kx := range k {
						p := ((oy*stride+ky)*xs.w+ox*stride+kx)*c + j
						if x[p] == m {
							dx[p] += dy[o+j]
							break window
						}
					}
				}
			}
		}
	}
}

// perImage splits count images into contiguous runs over at most procs goroutines; inner is
// the number of cores each run may use inside its products.
func perImage(count, procs int, run func(lo, hi, inner int)) {
	workers := max(1, min(procs, count))
	inner := max(1, procs/workers)
	if workers == 1 {
		run(0, count, inner)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*count/workers, (w+1)*count/workers
		wg.Go(func() { run(lo, hi, inner) })
	}
	wg.Wait()
}

// transpose returns the cols×rows transpose of the row-major rows×cols matrix a, in tiles
// that stay in cache.
func transpose(a []float32, rows, cols int) []float32 {
	const tile = 32
	t := make([]float32, rows*cols)
	for i0 := 0; i0 < rows; i0 += tile {
		for j0 := 0; j0 < cols; j0 += tile {
			for i := i0; i < min(i0+tile, rows); i++ {
				for j := j0; j < min(j0+tile, cols); j++ {
					t[j*rows+i] = a[i*cols+j]
				}
			}
		}
	}
	return t
}

// columnSums sums the rows of a rows×cols matrix (a bias gradient), in float64.
func columnSums(a []float32, rows, cols int) []float32 {
	sum := make([]float64, cols)
	for r := range rows {
		for j, v := range a[r*cols : (r+1)*cols] {
			sum[j] += float64(v)
		}
	}
	out := make([]float32, cols)
	for j, s := range sum {
		out[j] = float32(s)
	}
	return out
}
