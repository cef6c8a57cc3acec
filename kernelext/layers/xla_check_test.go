package layers

import (
	"math"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// TestPureGoMatchesXLA runs the layers on the XLA backend [backend.New] picks (native ops) and on
// the pure-Go backend (this package's forms), on the same random data, and compares values and
// gradients — the max-pool gradients on inputs full of ties, where XLA's SelectAndScatter gives
// each window's gradient to its first maximum. It needs an XLA PJRT plugin, so it only runs
// with LAYERS_XLA_CHECK=1 (e.g. on a machine with the CUDA plugin; set NVIDIA_TF32_OVERRIDE=0
// there so that the GPU computes float32 products in float32).
func TestPureGoMatchesXLA(t *testing.T) {
	testenv.NeedFeature(t, "xla", os.Getenv("LAYERS_XLA_CHECK") == "1",
		"layers against XLA (set LAYERS_XLA_CHECK=1 where a PJRT plugin is installed)")
	xla, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("XLA side: %s", backend.Describe(xla))
	if goForms(xlaGraph(xla)) {
		t.Fatalf("backend %s would use the pure-Go forms: nothing to compare", backend.Describe(xla))
	}
	worst := 0.0
	for ci, c := range convCases {
		x := randFlat(uint64(7*ci), c.b*c.h*c.w*c.cin)
		k := randFlat(uint64(7*ci+1), c.kh*c.kw*c.cin*c.cout)
		bias := randFlat(uint64(7*ci+2), c.cout)
		geo := newConvGeom(c.h, c.w, c.kh, c.kw, c.stride, c.padding)
		r := randFlat(uint64(7*ci+3), c.b*geo.ho*geo.wo*c.cout)
		fn := func(x, k, b, r *Node) []*Node {
			y := Conv2D(x, k, b, c.stride, c.padding)
			return append([]*Node{y}, Gradient(ReduceAllSum(Mul(y, r)), x, k, b)...)
		}
		// A tensor is bound to the backend that first uses it: one set of arguments each.
		args := func() []any {
			return []any{tensor32(x, c.b, c.h, c.w, c.cin), tensor32(k, c.kh, c.kw, c.cin, c.cout),
				tensor32(bias, c.cout), tensor32(r, c.b, geo.ho, geo.wo, c.cout)}
		}
		want := MustNewExec(xla, fn).MustExec(args()...)
		got := MustNewExec(goBackend(), fn).MustExec(args()...)
		for i, name := range []string{"value", "d/dx", "d/dkernel", "d/dbias"} {
			e := relErr(flat32(got[i]), to64(flat32(want[i])))
			worst = math.Max(worst, e)
			if e > 1e-4 {
				t.Errorf("%s %s: relative difference %.2g between go and XLA", c, name, e)
			}
		}
	}
	t.Logf("convolutions: largest relative difference %.2g", worst)

	for _, c := range []struct{ b, h, w, c, window, stride int }{
		{2, 8, 6, 3, 2, 2}, {1, 9, 7, 2, 2, 2}, {2, 11, 9, 3, 3, 2}, {1, 114, 114, 4, 3, 2},
	} {
		x := randFlat(uint64(c.h*c.w), c.b*c.h*c.w*c.c)
		for i := range x {
			x[i] = math.Max(0, math.Round(x[i]*2)/2) // Many ties, zeros among them.
		}
		ho, wo := (c.h-c.window)/c.stride+1, (c.w-c.window)/c.stride+1
		r := randFlat(uint64(c.c), c.b*ho*wo*c.c)
		fn := func(x, r *Node) (*Node, *Node) {
			y := MaxPool2D(x, c.window, c.stride)
			return y, Gradient(ReduceAllSum(Mul(y, r)), x)[0]
		}
		args := func() []any { return []any{tensor32(x, c.b, c.h, c.w, c.c), tensor32(r, c.b, ho, wo, c.c)} }
		want := MustNewExec(xla, fn).MustExec(args()...)
		got := MustNewExec(goBackend(), fn).MustExec(args()...)
		for i, name := range []string{"value", "d/dx"} {
			// Exact for non-overlapping windows; overlapping ones sum in another order.
			if e := relErr(flat32(got[i]), to64(flat32(want[i]))); e > 1e-6 {
				t.Errorf("max-pool %+v %s: relative difference %.2g between go and XLA", c, name, e)
			}
		}
	}
}

// xlaGraph returns an empty graph on b, to ask goForms about b.
func xlaGraph(b backends.Backend) *Graph { return NewGraph(b, "probe") }
