package layers

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestResNetShapedGradientsFiniteDifferences checks, in float64 on the pure-Go backend, the
// gradients of two small networks shaped like ResNet50's parts against central finite
// differences of the loss — an oracle independent of any gradient formula:
//
//   - the stem: ZeroPad2D(3), 7×7/2 valid convolution, BatchNorm, ReLU, ZeroPad2D(1), 3×3/2
//     max-pool;
//   - a stage-5 style bottleneck: 1×1/2, 3×3 "same" and 1×1 convolutions with BatchNorm and
//     ReLU, plus the 1×1/2 shortcut, added, ReLU, global average pool and a dense output.
func TestResNetShapedGradientsFiniteDifferences(t *testing.T) {
	relu := func(x *Node) *Node { return Max(x, ZerosLike(x)) }
	bn := func(x *Node, p []*Node) *Node { return BatchNormInference(x, p[0], p[1], p[2], p[3], 1e-3) }
	type net struct {
		name   string
		shapes [][]int // x first, then the parameters.
		loss   func(in []*Node) *Node
	}
	nets := []net{
		{"stem", [][]int{{2, 9, 9, 3}, {7, 7, 3, 4}, {4}, {4}, {4}, {4}, {4}, {3 * 3 * 4}},
			func(in []*Node) *Node {
				x := ZeroPad2D(in[0], 3)
				x = relu(bn(Conv2D(x, in[1], in[2], 2, Valid), in[3:7]))
				x = MaxPool2D(ZeroPad2D(x, 1), 3, 2)
				return ReduceAllSum(Mul(Flatten(x), ExpandLeftToRank(in[7], 2)))
			}},
		{"bottleneck", [][]int{{2, 8, 8, 6}, {1, 1, 6, 3}, {3, 3, 3, 3}, {1, 1, 3, 8}, {1, 1, 6, 8}, {3}, {3}, {3}, {3}, {8, 1}},
			func(in []*Node) *Node {
				x := in[0]
				bnp := in[5:9] // Shared BatchNorm parameters for the two 3-channel layers.
				y := relu(bn(Conv2D(x, in[1], nil, 2, Valid), bnp))
				y = relu(bn(Conv2D(y, in[2], nil, 1, Same), bnp))
				y = Conv2D(y, in[3], nil, 1, Valid)
				y = relu(Add(y, Conv2D(x, in[4], nil, 2, Valid)))
				return ReduceAllSum(Dense(GlobalAveragePool2D(y), in[9], nil))
			}},
	}
	for _, n := range nets {
		t.Run(n.name, func(t *testing.T) {
			values := make([][]float64, len(n.shapes))
			for i, s := range n.shapes {
				size := 1
				for _, d := range s {
					size *= d
				}
				values[i] = randFlat(uint64(40+i), size)
			}
			// BatchNorm variances must be positive.
			variance := map[string]int{"stem": 6, "bottleneck": 8}[n.name]
			for j := range values[variance] {
				values[variance][j] = math.Abs(values[variance][j]) + 0.5
			}
			args := func() []any {
				out := make([]any, len(values))
				for i, v := range values {
					out[i] = tensors.FromFlatDataAndDimensions(append([]float64(nil), v...), n.shapes[i]...)
				}
				return out
			}
			lossExec := MustNewExec(goBackend(), func(in []*Node) *Node { return n.loss(in) })
			gradExec := MustNewExec(goBackend(), func(in []*Node) []*Node { return Gradient(n.loss(in), in...) })
			grads := gradExec.MustExec(args()...)
			lossAt := func() float64 { return tensors.MustCopyFlatData[float64](lossExec.MustExec(args()...)[0])[0] }
			const h = 1e-6
			for i := range values {
				got := tensors.MustCopyFlatData[float64](grads[i])
				scale := 0.0
				for _, g := range got {
					scale = math.Max(scale, math.Abs(g))
				}
				for _, j := range []int{0, len(values[i]) / 3, len(values[i]) / 2, len(values[i]) - 1} {
					orig := values[i][j]
					values[i][j] = orig + h
					up := lossAt()
					values[i][j] = orig - h
					down := lossAt()
					values[i][j] = orig
					fd := (up - down) / (2 * h)
					if d := math.Abs(got[j] - fd); !(d <= 1e-6*math.Max(scale, 1)) { // NaN fails too.
						t.Errorf("input #%d %v, element %d: gradient %.9g, finite difference %.9g", i, n.shapes[i], j, got[j], fd)
					}
				}
			}
		})
	}
}
