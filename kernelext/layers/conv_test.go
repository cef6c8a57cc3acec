package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// goBackend is the pure-Go backend as the workbook configures it (see kernelext/backend).
var goBackend = sync.OnceValue(func() backends.Backend {
	b, err := simplego.New("ops_sequential")
	if err != nil {
		panic(err)
	}
	return b
})

// randFlat returns n uniform values in [-1, 1) from a fixed seed.
func randFlat(seed uint64, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()*2 - 1
	}
	return v
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func tensor32(v []float64, dims ...int) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(f32(v), dims...)
}

func flat32(t *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](t) }

// relErr is max|got-want| / max|want|.
func relErr[T float32 | float64](got []T, want []float64) float64 {
	var d, m float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-want[i]))
		m = max(m, math.Abs(want[i]))
	}
	if m == 0 {
		return d
	}
	return d / m
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// convCase is one convolution geometry.
type convCase struct {
	b, h, w, cin, cout, kh, kw, stride int
	padding                            Padding
}

func (c convCase) String() string {
	p := "valid"
	if c.padding == Same {
		p = "same"
	}
	return fmt.Sprintf("x%dx%dx%dx%d_k%dx%dx%d_s%d_%s", c.b, c.h, c.w, c.cin, c.kh, c.kw, c.cout, c.stride, p)
}

// refConv is the oracle: Keras' Conv2D by direct loops in float64 (TensorFlow's "same": output
// ceil(in/stride), the odd padding pixel at the bottom/right).
func refConv(c convCase, x, k, bias []float64) (y []float64, ho, wo int) {
	geo := newConvGeom(c.h, c.w, c.kh, c.kw, c.stride, c.padding)
	ho, wo = geo.ho, geo.wo
	y = make([]float64, c.b*ho*wo*c.cout)
	for b := range c.b {
		for i := range ho {
			for j := range wo {
				for o := range c.cout {
					s := 0.0
					if bias != nil {
						s = bias[o]
					}
					for p := range c.kh {
						for q := range c.kw {
							r, col := i*c.stride+p-geo.top, j*c.stride+q-geo.left
							if r < 0 || r >= c.h || col < 0 || col >= c.w {
								continue
							}
							for ci := range c.cin {
								s += x[((b*c.h+r)*c.w+col)*c.cin+ci] * k[((p*c.kw+q)*c.cin+ci)*c.cout+o]
							}
						}
					}
					y[((b*ho+i)*wo+j)*c.cout+o] = s
				}
			}
		}
	}
	return y, ho, wo
}

// refConvGrads returns the gradients of L = Σ y⊙r with respect to x, kernel and bias, by direct
// loops in float64: dL/dx[..] = Σ r·k over the outputs each input feeds, and so on.
func refConvGrads(c convCase, x, k, r []float64) (dx, dk, db []float64) {
	geo := newConvGeom(c.h, c.w, c.kh, c.kw, c.stride, c.padding)
	dx, dk, db = make([]float64, len(x)), make([]float64, len(k)), make([]float64, c.cout)
	for b := range c.b {
		for i := range geo.ho {
			for j := range geo.wo {
				for o := range c.cout {
					g := r[((b*geo.ho+i)*geo.wo+j)*c.cout+o]
					db[o] += g
					for p := range c.kh {
						for q := range c.kw {
							row, col := i*c.stride+p-geo.top, j*c.stride+q-geo.left
							if row < 0 || row >= c.h || col < 0 || col >= c.w {
								continue
							}
							for ci := range c.cin {
								xi := ((b*c.h+row)*c.w+col)*c.cin + ci
								ki := ((p*c.kw+q)*c.cin+ci)*c.cout + o
								dx[xi] += g * k[ki]
								dk[ki] += g * x[xi]
							}
						}
					}
				}
			}
		}
	}
	return dx, dk, db
}

var convCases = []convCase{
	{2, 8, 6, 5, 7, 3, 3, 1, Same},
	{1, 7, 9, 4, 3, 3, 3, 1, Same}, // Odd sizes: Winograd pads and crops.
	{2, 9, 8, 3, 4, 3, 3, 2, Same},
	{1, 10, 10, 4, 5, 3, 3, 2, Same},
	{2, 7, 6, 3, 2, 3, 3, 1, Valid},
	{1, 8, 8, 6, 5, 1, 1, 1, Same},
	{2, 8, 8, 6, 5, 1, 1, 2, Valid}, // ResNet's strided 1×1.
	{1, 7, 7, 3, 4, 1, 1, 2, Valid}, // Odd input, strided 1×1.
	{1, 14, 13, 3, 4, 7, 7, 2, Valid},
	{1, 12, 12, 2, 3, 7, 7, 2, Same},
	{2, 5, 5, 3, 2, 5, 5, 1, Same},
}

// withMethod runs fn with every forward form forced in turn (where it applies), and with the
// automatic choice.
func withMethod(t *testing.T, fn func(t *testing.T, m convMethod)) {
	for _, m := range []convMethod{methodAuto, methodIm2col, methodShifted, methodWinograd, methodPointwise} {
		t.Run(fmt.Sprintf("method%d", m), func(t *testing.T) {
			forcedConvMethod = m
			defer func() { forcedConvMethod = methodAuto }()
			fn(t, m)
		})
	}
}

// TestConv2DGoForward compares the pure-Go forms with float64 direct loops and with the
// backend's own (slow) Convolve.
func TestConv2DGoForward(t *testing.T) {
	withMethod(t, func(t *testing.T, m convMethod) {
		for ci, c := range convCases {
			x := randFlat(uint64(3*ci), c.b*c.h*c.w*c.cin)
			k := randFlat(uint64(3*ci+1), c.kh*c.kw*c.cin*c.cout)
			bias := randFlat(uint64(3*ci+2), c.cout)
			want, ho, wo := refConv(c, x, k, bias)
			exec := MustNewExec(goBackend(), func(x, k, b *Node) (*Node, *Node) {
				geo := newConvGeom(c.h, c.w, c.kh, c.kw, c.stride, c.padding)
				native := Convolve(x, k).Strides(c.stride).
					PaddingPerDim([][2]int{{geo.top, geo.bottom}, {geo.left, geo.right}}).Done()
				return Conv2D(x, k, b, c.stride, c.padding), Add(native, ExpandLeftToRank(b, 4))
			})
			out := exec.MustExec(tensor32(x, c.b, c.h, c.w, c.cin), tensor32(k, c.kh, c.kw, c.cin, c.cout), tensor32(bias, c.cout))
			if got := out[0].Shape().Dimensions; got[1] != ho || got[2] != wo || got[3] != c.cout {
				t.Fatalf("%s: output shape %v, want (%d, %d, %d, %d)", c, got, c.b, ho, wo, c.cout)
			}
			if e := relErr(flat32(out[0]), want); e > 1e-5 {
				t.Errorf("%s: relative error %.2g against float64 loops", c, e)
			}
			if e := relErr(flat32(out[0]), to64(flat32(out[1]))); e > 1e-5 {
				t.Errorf("%s: relative error %.2g against the backend's Convolve", c, e)
			}
		}
	})
}

// TestConv2DGoGradients compares the hand-written gradients with float64 direct loops.
func TestConv2DGoGradients(t *testing.T) {
	withMethod(t, func(t *testing.T, m convMethod) {
		for ci, c := range convCases {
			x := randFlat(uint64(5*ci), c.b*c.h*c.w*c.cin)
			k := randFlat(uint64(5*ci+1), c.kh*c.kw*c.cin*c.cout)
			bias := randFlat(uint64(5*ci+2), c.cout)
			geo := newConvGeom(c.h, c.w, c.kh, c.kw, c.stride, c.padding)
			r := randFlat(uint64(5*ci+3), c.b*geo.ho*geo.wo*c.cout)
			dx, dk, db := refConvGrads(c, x, k, r)
			exec := MustNewExec(goBackend(), func(x, k, b, r *Node) []*Node {
				loss := ReduceAllSum(Mul(Conv2D(x, k, b, c.stride, c.padding), r))
				return Gradient(loss, x, k, b)
			})
			out := exec.MustExec(tensor32(x, c.b, c.h, c.w, c.cin), tensor32(k, c.kh, c.kw, c.cin, c.cout),
				tensor32(bias, c.cout), tensor32(r, c.b, geo.ho, geo.wo, c.cout))
			for i, want := range [][]float64{dx, dk, db} {
				if e := relErr(flat32(out[i]), want); e > 2e-5 {
					t.Errorf("%s: gradient #%d (x, kernel, bias): relative error %.2g", c, i, e)
				}
			}
		}
	})
}

// TestConv2DGoFrozenInput: with the input under StopGradient only the kernel's gradient is
// built; the input's gradient function must not even be called.
func TestConv2DGoFrozenInput(t *testing.T) {
	c := convCase{1, 6, 6, 4, 3, 3, 3, 1, Same}
	x := randFlat(1, 6*6*4)
	k := randFlat(2, 9*4*3)
	r := randFlat(3, 6*6*3)
	_, dk, _ := refConvGrads(c, x, k, r)
	exec := MustNewExec(goBackend(), func(x, k, r *Node) *Node {
		loss := ReduceAllSum(Mul(Conv2D(Frozen(x), k, nil, 1, Same), r))
		return Gradient(loss, k)[0]
	})
	got := exec.MustExec(tensor32(x, 1, 6, 6, 4), tensor32(k, 3, 3, 4, 3), tensor32(r, 1, 6, 6, 3))[0]
	if e := relErr(flat32(got), dk); e > 2e-5 {
		t.Errorf("kernel gradient relative error %.2g", e)
	}
}

// refMaxPool returns Keras' MaxPooling2D (valid) and the gradient of Σ y⊙r, routed to the first
// maximum of each window in row-major order.
func refMaxPool(b, h, w, c, window, stride int, x, r []float64) (y, dx []float64) {
	ho, wo := (h-window)/stride+1, (w-window)/stride+1
	y, dx = make([]float64, b*ho*wo*c), make([]float64, len(x))
	for n := range b {
		for i := range ho {
			for j := range wo {
				for ch := range c {
					best, at := math.Inf(-1), -1
					for p := range window {
						for q := range window {
							xi := ((n*h+i*stride+p)*w+j*stride+q)*c + ch
							if x[xi] > best {
								best, at = x[xi], xi
							}
						}
					}
					yi := ((n*ho+i)*wo+j)*c + ch
					y[yi] = best
					dx[at] += r[yi]
				}
			}
		}
	}
	return y, dx
}

func TestMaxPool2DGo(t *testing.T) {
	for _, c := range []struct{ b, h, w, c, window, stride int }{
		{2, 8, 6, 3, 2, 2},  // Tiled (VGG).
		{1, 9, 7, 2, 2, 2},  // Odd: the last row/column is dropped.
		{2, 11, 9, 3, 3, 2}, // Overlapping (ResNet's stem).
		{1, 6, 6, 2, 3, 1},
	} {
		n := c.b * c.h * c.w * c.c
		x := randFlat(uint64(c.h), n)
		for i := range x {
			// Quantize and clip like a ReLU so that windows hold ties, among them all-zero ones.
			x[i] = math.Max(0, math.Round(x[i]*2)/2)
		}
		ho, wo := (c.h-c.window)/c.stride+1, (c.w-c.window)/c.stride+1
		r := randFlat(uint64(c.w), c.b*ho*wo*c.c)
		wantY, wantDx := refMaxPool(c.b, c.h, c.w, c.c, c.window, c.stride, x, r)
		exec := MustNewExec(goBackend(), func(x, r *Node) (*Node, *Node) {
			y := MaxPool2D(x, c.window, c.stride)
			return y, Gradient(ReduceAllSum(Mul(y, r)), x)[0]
		})
		out := exec.MustExec(tensor32(x, c.b, c.h, c.w, c.c), tensor32(r, c.b, ho, wo, c.c))
		y, dx := out[0], out[1]
		if e := relErr(flat32(y), wantY); e != 0 {
			t.Errorf("%+v: pooled values differ (relative error %.2g)", c, e)
		}
		if e := relErr(flat32(dx), wantDx); e > 1e-6 {
			t.Errorf("%+v: gradient relative error %.2g", c, e)
		}
	}
}
