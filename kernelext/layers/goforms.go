package layers

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// goForms reports whether g runs on a backend for which this package builds its own
// matmul-based forms: GoMLX's pure-Go backend ("go"), or any backend lacking an op that the
// gradients of the native convolution and pooling need (Pad, Reverse, SelectAndScatterMax).
func goForms(g *Graph) bool {
	b := g.Backend()
	if b.String() == "go" {
		return true
	}
	ops := b.Capabilities().Operations
	for _, op := range []backends.OpType{backends.OpTypeConvGeneral, backends.OpTypeReduceWindow,
		backends.OpTypePad, backends.OpTypeReverse, backends.OpTypeSelectAndScatterMax} {
		if !ops[op] {
			return true
		}
	}
	return false
}

// vjpState carries the adjoint (gradient) arriving at a custom op's output from the output's
// gradient function to the gradient functions of its inputs.
// It also keeps the op's forward value y.
type vjpState struct{ y, v *Node }

// customVJP builds an op with a hand-written gradient, for the pure-Go backend where the
// gradients GoMLX derives need ops that backend lacks (Pad for Slice, Reverse for Convolve).
//
// The value is attach(StopGradient(y), zero), where y = forward(ins), ins[i] has the value of
// inputs[i] and zero is a scalar 0 computed from every ins[i] (attach must add it, e.g. to a
// bias). The gradient with respect to inputs[i] is backward(i, ins, y, v), with v the gradient
// with respect to the returned node; backward is only called for the inputs a gradient is
// asked for, so frozen inputs cost nothing.
//
// How it works: GoMLX lets a node have a custom gradient only through
// IdentityWithCustomGradient, which maps the adjoint of an identity's output to the adjoint of
// its input. So each input passes through such an identity (ins[i]) whose only route to the
// output is the scalar zero, and the output passes through one more whose gradient function
// records v. GoMLX back-propagates from the newest node to the oldest, so v is recorded before
// the inputs' gradient functions read it. The forward value is under StopGradient: no gradient
// is ever built through it, so it may use any op (Slice, strided views, ...), and it costs
// nothing in the backward pass.
func customVJP(inputs []*Node, forward func(ins []*Node) *Node, attach func(y, zero *Node) *Node,
	backward func(i int, ins []*Node, y, v *Node) *Node) *Node {
	st := &vjpState{}
	ins := make([]*Node, len(inputs))
	for i, x := range inputs {
		ins[i] = IdentityWithCustomGradient(x, func(_, _ *Node) *Node {
			if st.v == nil {
				panic(fmt.Errorf("layers: custom gradient of input #%d called before its output's gradient", i))
			}
			return backward(i, ins, st.y, st.v)
		})
	}
	// The zeros are built before the forward op reads ins, so that on the pure-Go backend the
	// forward op is the last user of each ins[i] and may take over its buffer.
	var zero *Node
	for _, in := range ins {
		z := zeroFrom(in)
		if zero == nil {
			zero = z
		} else {
			zero = Add(zero, z)
		}
	}
	st.y = forward(ins)
	out := attach(StopGradient(st.y), zero)
	return IdentityWithCustomGradient(out, func(_, v *Node) *Node {
		st.v = v
		return v
	})
}

// zeroFrom returns a scalar exactly 0 (also for Inf or NaN inputs) whose value depends on x,
// reading one element of it.
func zeroFrom(x *Node) *Node {
	g := x.Graph()
	first := Gather(x, Const(g, [][]int32{make([]int32, x.Rank())})) // Shape [1].
	zero := Where(Const(g, []bool{false}), first, ZerosLike(first))
	return Reshape(zero)
}

// addZero is the attach function for ops without a bias.
func addZero(y, zero *Node) *Node { return Add(y, zero) }

// zerosShaped returns zeros of x's dtype with x's dimensions, except dims[axis] = n.
func zerosShaped(x *Node, axis, n int) *Node {
	dims := append([]int(nil), x.Shape().Dimensions...)
	dims[axis] = n
	return Zeros(x.Graph(), shapes.Make(x.DType(), dims...))
}

// padAxis surrounds x with before and after zeros along axis, by concatenation (the pure-Go
// backend has no Pad op). Negative amounts crop instead.
func padAxis(x *Node, axis, before, after int) *Node {
	if before < 0 || after < 0 {
		n := x.Shape().Dimensions[axis]
		spec := make([]SliceAxisSpec, axis+1)
		for i := range axis {
			spec[i] = AxisRange()
		}
		spec[axis] = AxisRange(max(0, -before), n-max(0, -after))
		x = Slice(x, spec...)
		before, after = max(0, before), max(0, after)
	}
	if before == 0 && after == 0 {
		return x
	}
	parts := make([]*Node, 0, 3)
	if before > 0 {
		parts = append(parts, zerosShaped(x, axis, before))
	}
	parts = append(parts, x)
	if after > 0 {
		parts = append(parts, zerosShaped(x, axis, after))
	}
	return Concatenate(parts, axis)
}

// pad2D zero-pads (or crops, for negative amounts) the spatial axes 1 and 2 of NHWC x.
func pad2D(x *Node, top, bottom, left, right int) *Node {
	return padAxis(padAxis(x, 2, left, right), 1, top, bottom)
}

// dilate inserts s-1 zeros after every element along axis (so n elements become n·s, the
// last s-1 of them zeros), by concatenation and reshape.
func dilate(x *Node, axis, s int) *Node {
	if s == 1 {
		return x
	}
	dims := x.Shape().Dimensions
	expanded := make([]int, 0, len(dims)+1)
	expanded = append(expanded, dims[:axis+1]...)
	expanded = append(expanded, 1)
	expanded = append(expanded, dims[axis+1:]...)
	e := Reshape(x, expanded...)
	e = Concatenate([]*Node{e, zerosShaped(e, axis+1, s-1)}, axis+1)
	out := append([]int(nil), dims...)
	out[axis] *= s
	return Reshape(e, out...)
}

// stridedView returns x[:, r0 : r0+s·(n1-1)+1 : s, c0 : c0+s·(n2-1)+1 : s, :].
func stridedView(x *Node, r0, c0, s, n1, n2 int) *Node {
	return Slice(x, AxisRange(),
		AxisRange(r0, r0+s*(n1-1)+1).Stride(s),
		AxisRange(c0, c0+s*(n2-1)+1).Stride(s))
}

// unview is the adjoint of stridedView: it places v (B, n1, n2, C) back at rows r0, r0+s, …
// and columns c0, c0+s, … of a zero tensor with x's spatial size h×w.
func unview(v *Node, r0, c0, s, h, w int) *Node {
	dims := v.Shape().Dimensions
	n1, n2 := dims[1], dims[2]
	u := dilate(dilate(v, 1, s), 2, s) // n·s long: the view's extent plus s-1 zeros.
	return pad2D(u, r0, h-r0-n1*s, c0, w-c0-n2*s)
}
