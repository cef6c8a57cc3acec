package layers

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
)

// This file holds Conv2D for the pure-Go backend. Its native Convolve is a single-threaded
// direct loop, while its DotGeneral (matrix multiplication) runs on every core and is ~20×
// faster per FLOP, so every convolution becomes matrix multiplications:
//
//   - 1×1: one DotGeneral (stride 2 first takes every other pixel).
//   - 3×3, stride 1, ≥32 input channels: Winograd's F(2×2, 3×3), which needs 16 multiplications
//     per 2×2 output tile where the direct form needs 36: 16 DotGenerals of (tiles, Cin)×(Cin, Cout).
//   - anything else (the 7×7/2 stem, VGG's first 3-channel layer, tiny images): im2col, one
//     DotGeneral of the (pixels, kh·kw·Cin) patches with the (kh·kw·Cin, Cout) kernel.
//
// Gradients are hand-written (see customVJP): with respect to the kernel it is the patches'
// transpose times the output gradient (one DotGeneral; 16 smaller ones in Winograd's
// transformed space where the forward pass is Winograd); with respect to the input it is the
// convolution of the (dilated, for stride 2) output gradient with the spatially flipped,
// in/out-swapped kernel, which reuses the fast forward forms above.

// convGeom is a 2D convolution's geometry: kernel size, stride, zero padding, input and
// output spatial sizes. "same" padding follows Keras (TensorFlow): output ceil(in/stride),
// the odd padding pixel at the bottom/right.
type convGeom struct {
	kh, kw, s                int
	h, w, ho, wo             int
	top, bottom, left, right int
}

func newConvGeom(h, w, kh, kw, stride int, padding Padding) convGeom {
	g := convGeom{kh: kh, kw: kw, s: stride, h: h, w: w}
	if stride < 1 {
		panic(fmt.Errorf("layers: Conv2D stride must be ≥ 1, got %d", stride))
	}
	switch padding {
	case Same:
		g.ho, g.wo = (h+stride-1)/stride, (w+stride-1)/stride
		ph, pw := max((g.ho-1)*stride+kh-h, 0), max((g.wo-1)*stride+kw-w, 0)
		g.top, g.bottom, g.left, g.right = ph/2, ph-ph/2, pw/2, pw-pw/2
	case Valid:
		g.ho, g.wo = (h-kh)/stride+1, (w-kw)/stride+1
	default:
		panic(fmt.Errorf("layers: unknown padding %d", padding))
	}
	if h-kh+g.top+g.bottom < 0 || w-kw+g.left+g.right < 0 {
		panic(fmt.Errorf("layers: Conv2D kernel %d×%d larger than its padded %d×%d input", kh, kw, h, w))
	}
	return g
}

// conv2DGo is Conv2D for the pure-Go backend.
func conv2DGo(x, kernel, bias *Node, stride int, padding Padding) *Node {
	xd, kd := x.Shape().Dimensions, kernel.Shape().Dimensions
	if x.Rank() != 4 || kernel.Rank() != 4 || xd[3] != kd[2] {
		panic(fmt.Errorf("layers: Conv2D needs x (B, H, W, Cin) and kernel (kh, kw, Cin, Cout), got %s and %s",
			x.Shape(), kernel.Shape()))
	}
	geo := newConvGeom(xd[1], xd[2], kd[0], kd[1], stride, padding)
	attach := addZero
	if bias != nil {
		attach = func(y, zero *Node) *Node { return Add(y, ExpandLeftToRank(Add(bias, zero), 4)) }
	}
	return customVJP([]*Node{x, kernel},
		func(in []*Node) *Node { return convForward(in[0], in[1], geo) },
		attach,
		func(i int, in []*Node, _, v *Node) *Node {
			if i == 0 {
				return convInputGrad(v, in[1], geo)
			}
			return convKernelGrad(in[0], in[1], v, geo)
		})
}

// convMethod names the forward forms, for tests and benchmarks.
type convMethod int

const (
	methodAuto      convMethod = iota
	methodIm2col               // Patches concatenated along channels, one DotGeneral.
	methodShifted              // One DotGeneral per kernel tap, summed.
	methodWinograd             // F(2×2, 3×3).
	methodPointwise            // 1×1 kernel: one DotGeneral.
)

// convForward computes the convolution value (no gradient) with the form convMethodFor picks.
func convForward(x, k *Node, geo convGeom) *Node {
	return convForwardWith(convMethodFor(x, k, geo), x, k, geo)
}

// forcedConvMethod, when not methodAuto, replaces convMethodFor's choice wherever it applies
// (tests use it to check every form, forward and backward).
var forcedConvMethod = methodAuto

// convMethodFor picks the fastest forward form on the pure-Go backend.
func convMethodFor(x, k *Node, geo convGeom) convMethod {
	if m := forcedConvMethod; m != methodAuto && (m != methodWinograd || geo.kh == 3 && geo.kw == 3 && geo.s == 1) &&
		(m != methodPointwise || geo.kh == 1 && geo.kw == 1) {
		return m
	}
	b, cin, cout := x.Shape().Dimensions[0], k.Shape().Dimensions[2], k.Shape().Dimensions[3]
	switch {
	case geo.kh == 1 && geo.kw == 1:
		return methodPointwise
	case geo.kh == 3 && geo.kw == 3 && geo.s == 1 && cin >= 32 &&
		b*((geo.ho+1)/2)*((geo.wo+1)/2)*cout > dotGeneralLargeCrosses:
		// With fewer input channels the 16 small products waste most of the backend's 32-wide
		// blocks; with fewer tiles they fall on the backend's single-threaded small-matrix path.
		return methodWinograd
	}
	return methodIm2col
}

// dotGeneralLargeCrosses is the output size per batch element above which the pure-Go
// backend's DotGeneral uses its blocked, multi-threaded algorithm (16 blocks of 32×32 for
// float32).
const dotGeneralLargeCrosses = 16 * 32 * 32

func convForwardWith(m convMethod, x, k *Node, geo convGeom) *Node {
	switch m {
	case methodPointwise:
		return convPointwise(x, k, geo)
	case methodWinograd:
		return convWinograd(x, k, geo)
	case methodShifted:
		return convShifted(x, k, geo)
	default:
		return convIm2col(x, k, geo)
	}
}

// convPointwise: a 1×1 convolution is a matrix multiplication over the channels.
func convPointwise(x, k *Node, geo convGeom) *Node {
	x = pad2D(x, geo.top, geo.bottom, geo.left, geo.right)
	if geo.s > 1 || x.Shape().Dimensions[1] != geo.ho || x.Shape().Dimensions[2] != geo.wo {
		x = stridedView(x, 0, 0, geo.s, geo.ho, geo.wo)
	}
	y := DotGeneral(x, []int{3}, nil, k, []int{2}, nil) // (B, ho, wo, 1, 1, Cout)
	d := y.Shape().Dimensions
	return Reshape(y, d[0], d[1], d[2], d[5])
}

// patches returns x's convolution windows, (B, ho, wo, kh, kw, Cin): entry [b, i, j, p, q, c]
// is the padded input at row i·s+p, column j·s+q, channel c.
func patches(x *Node, geo convGeom) *Node {
	xp := pad2D(x, geo.top, geo.bottom, geo.left, geo.right)
	views := make([]*Node, 0, geo.kh*geo.kw)
	for p := range geo.kh {
		for q := range geo.kw {
			views = append(views, stridedView(xp, p, q, geo.s, geo.ho, geo.wo))
		}
	}
	d := x.Shape().Dimensions
	return Reshape(Concatenate(views, 3), d[0], geo.ho, geo.wo, geo.kh, geo.kw, d[3])
}

// convIm2col multiplies the patches, flattened to (pixels, kh·kw·Cin), by the kernel.
func convIm2col(x, k *Node, geo convGeom) *Node {
	return DotGeneral(patches(x, geo), []int{3, 4, 5}, nil, k, []int{0, 1, 2}, nil)
}

// convShifted sums one product per kernel tap: view(p, q)·kernel[p, q]. Same FLOPs as
// im2col, without the concatenated patches; kept for comparison in the benchmarks.
func convShifted(x, k *Node, geo convGeom) *Node {
	xp := pad2D(x, geo.top, geo.bottom, geo.left, geo.right)
	var y *Node
	for p := range geo.kh {
		for q := range geo.kw {
			v := stridedView(xp, p, q, geo.s, geo.ho, geo.wo)
			kpq := Slice(k, AxisElem(p), AxisElem(q))
			t := DotGeneral(v, []int{3}, nil, kpq, []int{2}, nil) // (B, ho, wo, 1, 1, Cout)
			if y == nil {
				y = t
			} else {
				y = Add(y, t)
			}
		}
	}
	d := y.Shape().Dimensions
	return Reshape(y, d[0], d[1], d[2], d[5])
}

// convWinograd is a 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3)
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
//
//	Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
// for each 4×4 input tile d (stride 2) giving a 2×2 output tile, with g the 3×3 kernel. The
// elementwise product, summed over input channels, is 16 matrix products (one per tile
// position) of (tiles, Cin)×(Cin, Cout). G's ½ entries are applied as one factor per tile
// position, on whichever of the 16 input, kernel or output terms is smallest.
func convWinograd(x, k *Node, geo convGeom) *Node {
	V, th, tw := winogradInput(x, geo)
	U := winogradKernel(k)
	b, cin, cout := x.Shape().Dimensions[0], x.Shape().Dimensions[3], k.Shape().Dimensions[3]
	tiles := b * th * tw
	scaleV, scaleU := false, false
	switch min(tiles*cin, cin*cout, tiles*cout) {
	case tiles * cin:
		scaleV = true
	case cin * cout:
		scaleU = true
	}
	var M [16]*Node
	for i := range 16 {
		v, u, f := V[i], U[i], winogradFactor(i)
		if f != 1 && scaleV {
			v = MulScalar(v, f)
		} else if f != 1 && scaleU {
			u = MulScalar(u, f)
		}
		M[i] = DotGeneral(v, []int{3}, nil, u, []int{0}, nil) // (B, th, tw, Cout)
		if f != 1 && !scaleV && !scaleU {
			M[i] = MulScalar(M[i], f)
		}
	}

	// Output transform Aᵀ m A with Aᵀ = [[1,1,1,0], [0,1,-1,-1]].
	var mp [2][4]*Node
	for c := range 4 {
		mp[0][c] = Add(Add(M[c], M[4+c]), M[8+c])
		mp[1][c] = Sub(Sub(M[4+c], M[8+c]), M[12+c])
	}
	row := func(r int) *Node {
		y0 := Add(Add(mp[r][0], mp[r][1]), mp[r][2])
		y1 := Sub(Sub(mp[r][1], mp[r][2]), mp[r][3])
		// Interleave columns: (B, th, tw, 2, Cout) → (B, th, 1, 2·tw, Cout).
		pair := Concatenate([]*Node{Reshape(y0, b, th, tw, 1, cout), Reshape(y1, b, th, tw, 1, cout)}, 3)
		return Reshape(pair, b, th, 1, 2*tw, cout)
	}
	y := Reshape(Concatenate([]*Node{row(0), row(1)}, 2), b, 2*th, 2*tw, cout)
	if 2*th != geo.ho || 2*tw != geo.wo {
		y = Slice(y, AxisRange(), AxisRange(0, geo.ho), AxisRange(0, geo.wo))
	}
	return y
}

// winogradInput returns the 16 input-transform terms Bᵀ d B, each (B, th, tw, Cin) over the
// th×tw tiles, with Bᵀ = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]].
func winogradInput(x *Node, geo convGeom) (V [16]*Node, th, tw int) {
	d := x.Shape().Dimensions
	h, w := d[1], d[2]
	th, tw = (geo.ho+1)/2, (geo.wo+1)/2
	// Pad to exactly 2·th+2 rows and 2·tw+2 columns (one more zero row/column when the output
	// size is odd; that output row/column is cropped at the end).
	xp := pad2D(x, geo.top, 2*th+2-h-geo.top, geo.left, 2*tw+2-w-geo.left)
	// Rows first (on row views R_r = rows r, r+2, …), then columns.
	var R [4]*Node
	for r := range 4 {
		R[r] = Slice(xp, AxisRange(), AxisRange(r, r+2*(th-1)+1).Stride(2))
	}
	T := [4]*Node{Sub(R[0], R[2]), Add(R[1], R[2]), Sub(R[2], R[1]), Sub(R[1], R[3])}
	for a := range 4 {
		var C [4]*Node
		for c := range 4 {
			C[c] = Slice(T[a], AxisRange(), AxisRange(), AxisRange(c, c+2*(tw-1)+1).Stride(2))
		}
		V[4*a], V[4*a+1], V[4*a+2], V[4*a+3] = Sub(C[0], C[2]), Add(C[1], C[2]), Sub(C[2], C[1]), Sub(C[1], C[3])
	}
	return V, th, tw
}

// winogradKernel returns the 16 kernel-transform terms G₀ g G₀ᵀ, each (Cin, Cout), with
// G₀ = [[1,0,0], [1,1,1], [1,-1,1], [0,0,1]]: Winograd's G without its ½ factors (see
// winogradFactor).
func winogradKernel(k *Node) (U [16]*Node) {
	cin, cout := k.Shape().Dimensions[2], k.Shape().Dimensions[3]
	var g [3][3]*Node
	for i := range 3 {
		for j := range 3 {
			g[i][j] = Reshape(Slice(k, AxisElem(i), AxisElem(j)), cin, cout)
		}
	}
	var hh [4][3]*Node
	for j := range 3 {
		s := Add(g[0][j], g[2][j])
		hh[0][j], hh[1][j], hh[2][j], hh[3][j] = g[0][j], Add(s, g[1][j]), Sub(s, g[1][j]), g[2][j]
	}
	for a := range 4 {
		s := Add(hh[a][0], hh[a][2])
		U[4*a], U[4*a+1], U[4*a+2], U[4*a+3] = hh[a][0], Add(s, hh[a][1]), Sub(s, hh[a][1]), hh[a][2]
	}
	return U
}

// winogradFactor is G/G₀'s factor for tile position i = 4a+b: ½ for a or b in {1, 2}, ¼ for
// both.
func winogradFactor(i int) float64 {
	f := 1.0
	if a := i / 4; a == 1 || a == 2 {
		f *= 0.5
	}
	if b := i % 4; b == 1 || b == 2 {
		f *= 0.5
	}
	return f
}

// winogradKernelGrad is the kernel gradient of convWinograd, in the same transformed space:
// with the output gradient's tiles transformed as A dY Aᵀ, the 16 products Vᵀ(A dY Aᵀ) over
// the tiles give the gradient of the transformed kernel, which G₀ᵀ · G₀ brings back to 3×3 —
// 16 (Cin, tiles)×(tiles, Cout) products where the direct form does 9 of (Cin, pixels)×(pixels,
// Cout), 2.25× fewer operations.
func winogradKernelGrad(x, v *Node, geo convGeom) *Node {
	V, th, tw := winogradInput(x, geo)
	d := v.Shape().Dimensions
	cin, cout := x.Shape().Dimensions[3], d[3]
	// Output-gradient tiles dY_rc = v[:, r::2, c::2] (zero rows/columns pad odd sizes).
	vp := pad2D(v, 0, 2*th-d[1], 0, 2*tw-d[2])
	var dy [2][2]*Node
	for r := range 2 {
		for c := range 2 {
			dy[r][c] = stridedView(vp, r, c, 2, th, tw)
		}
	}
	// A dY Aᵀ with A = [[1,0], [1,1], [1,-1], [0,-1]]: rows, then columns.
	oneD := func(y0, y1 *Node) [4]*Node { return [4]*Node{y0, Add(y0, y1), Sub(y0, y1), Neg(y1)} }
	p0, p1 := oneD(dy[0][0], dy[1][0]), oneD(dy[0][1], dy[1][1])
	var dU [16]*Node
	for a := range 4 {
		m := oneD(p0[a], p1[a])
		for c := range 4 {
			i := 4*a + c
			dU[i] = DotGeneral(V[i], []int{0, 1, 2}, nil, m[c], []int{0, 1, 2}, nil) // (Cin, Cout)
			if f := winogradFactor(i); f != 1 {
				dU[i] = MulScalar(dU[i], f)
			}
		}
	}
	// G₀ᵀ dU G₀: u ↦ (u0+u1+u2, u1-u2, u1+u2+u3) along each axis.
	back := func(u0, u1, u2, u3 *Node) [3]*Node {
		s := Add(u1, u2)
		return [3]*Node{Add(u0, s), Sub(u1, u2), Add(s, u3)}
	}
	var hq [4][3]*Node // hq[a][q]: columns done.
	for a := range 4 {
		hq[a] = back(dU[4*a], dU[4*a+1], dU[4*a+2], dU[4*a+3])
	}
	rows := make([]*Node, 3)
	for q := range 3 {
		col := back(hq[0][q], hq[1][q], hq[2][q], hq[3][q]) // col[p] = dg[p][q].
		for p := range 3 {
			col[p] = Reshape(col[p], 1, 1, cin, cout)
		}
		rows[q] = Concatenate(col[:], 0) // (3, 1, Cin, Cout) over p.
	}
	return Concatenate(rows, 1) // (3, 3, Cin, Cout).
}

// convInputGrad is the gradient with respect to the input x of a convolution with kernel k,
// given v, the gradient with respect to its output: the full correlation of the output
// gradient, dilated by the stride, with the kernel flipped spatially and its channel axes
// swapped — itself a stride-1 convolution, so it runs on the fast forms.
func convInputGrad(v, k *Node, geo convGeom) *Node {
	s := geo.s
	u := dilate(dilate(v, 1, s), 2, s) // ho·s rows: s·(ho-1)+1 plus s-1 trailing zeros.
	lh, lw := s*(geo.ho-1)+1, s*(geo.wo-1)+1
	back := convGeom{kh: geo.kh, kw: geo.kw, s: 1, h: geo.ho * s, w: geo.wo * s, ho: geo.h, wo: geo.w,
		top: geo.kh - 1 - geo.top, bottom: geo.h + geo.top - lh - (s - 1),
		left: geo.kw - 1 - geo.left, right: geo.w + geo.left - lw - (s - 1)}
	return convForward(u, flipKernel(k), back)
}

// flipKernel turns (kh, kw, Cin, Cout) into (kh, kw, Cout, Cin) reversed along kh and kw.
func flipKernel(k *Node) *Node {
	kt := Transpose(k, 2, 3)
	for axis := range 2 {
		n := kt.Shape().Dimensions[axis]
		if n == 1 {
			continue
		}
		parts := make([]*Node, n)
		for i := range n {
			spec := []SliceAxisSpec{AxisRange(), AxisRange()}
			spec[axis] = AxisRange(n-1-i, n-i)
			parts[i] = Slice(kt, spec...)
		}
		kt = Concatenate(parts, axis)
	}
	return kt
}

// convKernelGrad is the gradient with respect to the kernel k: Σ over batch and output pixels
// of patch ⊗ output gradient, one DotGeneral — or its Winograd form where the forward pass
// uses Winograd.
func convKernelGrad(x, k, v *Node, geo convGeom) *Node {
	if convMethodFor(x, k, geo) == methodWinograd {
		return winogradKernelGrad(x, v, geo)
	}
	return DotGeneral(patches(x, geo), []int{0, 1, 2}, nil, v, []int{0, 1, 2}, nil)
}
