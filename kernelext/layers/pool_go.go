package layers

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
)

// maxPool2DGo is MaxPool2D ("valid" padding) for the pure-Go backend, which lacks the gradient
// of its MaxPool (SelectAndScatterMax). The forward value is a Reshape + ReduceMax when the
// windows tile the input exactly (VGG's 2×2/2), otherwise the maximum of the window² strided
// views (ResNet's 3×3/2). The gradient goes, as with XLA's MaxPool, to the first maximum of
// each window in row-major order — not split among ties, which are common after a ReLU.
func maxPool2DGo(x *Node, window, stride int) *Node {
	if x.Rank() != 4 || window < 1 || stride < 1 {
		panic(fmt.Errorf("layers: MaxPool2D needs NHWC x, window and stride ≥ 1; got %s, %d, %d", x.Shape(), window, stride))
	}
	d := x.Shape().Dimensions
	h, w := d[1], d[2]
	if h < window || w < window {
		panic(fmt.Errorf("layers: MaxPool2D window %d larger than input %d×%d", window, h, w))
	}
	ho, wo := (h-window)/stride+1, (w-window)/stride+1
	tiled := window == stride && h%window == 0 && w%window == 0
	return customVJP([]*Node{x},
		func(in []*Node) *Node {
			if tiled {
				return ReduceMax(Reshape(in[0], d[0], ho, window, wo, window, d[3]), 2, 4)
			}
			var y *Node
			for i := range window {
				for j := range window {
					v := stridedView(in[0], i, j, stride, ho, wo)
					if y == nil {
						y = v
					} else {
						y = Max(y, v)
					}
				}
			}
			return y
		},
		addZero,
		func(_ int, in []*Node, y, v *Node) *Node {
			return maxPoolGrad(in[0], y, v, window, stride, tiled)
		})
}

// maxPoolGrad routes v (the gradient with respect to the pooled y) to the first position of
// each window, in row-major order, that holds the window's maximum.
func maxPoolGrad(x, y, v *Node, window, stride int, tiled bool) *Node {
	d := x.Shape().Dimensions
	b, h, w, c := d[0], d[1], d[2], d[3]
	ho, wo := y.Shape().Dimensions[1], y.Shape().Dimensions[2]
	zeros := ZerosLike(v)
	var taken *Node
	parts := make([]*Node, 0, window*window)
	for i := range window {
		for j := range window {
			eq := Equal(stridedView(x, i, j, stride, ho, wo), y)
			sel := eq
			if taken != nil {
				sel = LogicalAnd(eq, LogicalNot(taken))
				taken = LogicalOr(taken, eq)
			} else {
				taken = eq
			}
			parts = append(parts, Where(sel, v, zeros))
		}
	}
	if tiled {
		// Non-overlapping windows: interleave the parts back by concatenation.
		rows := make([]*Node, window)
		for i := range window {
			cols := make([]*Node, window)
			for j := range window {
				cols[j] = Reshape(parts[i*window+j], b, ho, wo, 1, c)
			}
			rows[i] = Reshape(Concatenate(cols, 3), b, ho, 1, w, c)
		}
		return Reshape(Concatenate(rows, 2), b, h, w, c)
	}
	var dx *Node
	for i := range window {
		for j := range window {
			u := unview(parts[i*window+j], i, j, stride, h, w)
			if dx == nil {
				dx = u
			} else {
				dx = Add(dx, u)
			}
		}
	}
	return dx
}
