package engine

import (
	"strings"
	"testing"
)

// The numerical checks of the engine are in kernelext/applications (engine_test.go against
// GoMLX's graphs, reference_test.go against PyTorch); here, the table checks and the shapes.

func TestNewRefusesBadTables(t *testing.T) {
	conv := Layer{Name: "c", Op: Conv, Inputs: []int{Input}, Kernel: 3, Stride: 1, Same: true, In: 3, Out: 4}
	for _, c := range []struct {
		layers []Layer
		want   string
	}{
		{nil, "empty layer table"},
		{[]Layer{{Name: "a", Op: Activation, Inputs: []int{1}, Activation: "relu"}}, "not an earlier layer"},
		{[]Layer{{Name: "s", Op: Add, Inputs: []int{Input}}}, "has 1 inputs, want 2"},
		{[]Layer{{Name: "t", Op: Activation, Inputs: []int{Input}, Activation: "tanh"}}, `unsupported activation "tanh"`},
		{[]Layer{conv, {Name: "d", Op: Dense, Inputs: []int{0}, In: 4, Out: 2, Activation: "relu"},
			{Name: "p", Op: MaxPool, Inputs: []int{1}, Kernel: 2, Stride: 2}}, "only a chain of Dense layers"},
		{[]Layer{{Name: "d1", Op: Dense, Inputs: []int{Input}, In: 2, Out: 2, Activation: "softmax"},
			{Name: "d2", Op: Dense, Inputs: []int{0}, In: 2, Out: 2}}, "softmax is supported on the last layer only"},
	} {
		_, err := New(c.layers, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "engine: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v): %v, want an error containing %q", c.layers, err, c.want)
		}
	}
}

// TestShapesAndFusion follows a ResNet-like table: a padded strided stem, a residual block
// whose shortcut stays alive across the main path, global pooling and a Dense layer.
func TestShapesAndFusion(t *testing.T) {
	layers := []Layer{
		{Name: "pad", Op: ZeroPad, Inputs: []int{Input}, Pad: 3},                                                       // 0
		{Name: "conv1", Op: Conv, Inputs: []int{0}, Kernel: 7, Stride: 2, In: 3, Out: 8},                               // 1
		{Name: "bn1", Op: BatchNorm, Inputs: []int{1}, In: 8, Out: 8, Epsilon: 1e-3},                                   // 2
		{Name: "relu1", Op: Activation, Inputs: []int{2}, Activation: "relu"},                                          // 3
		{Name: "pool_pad", Op: ZeroPad, Inputs: []int{3}, Pad: 1},                                                      // 4
		{Name: "pool", Op: MaxPool, Inputs: []int{4}, Kernel: 3, Stride: 2},                                            // 5
		{Name: "2a", Op: Conv, Inputs: []int{5}, Kernel: 1, Stride: 2, In: 8, Out: 4},                                  // 6
		{Name: "2b", Op: Conv, Inputs: []int{6}, Kernel: 3, Stride: 1, Same: true, In: 4, Out: 16, Activation: "relu"}, // 7
		{Name: "sc", Op: Conv, Inputs: []int{5}, Kernel: 1, Stride: 2, In: 8, Out: 16},                                 // 8
		{Name: "add", Op: Add, Inputs: []int{7, 8}},                                                                    // 9
		{Name: "relu2", Op: Activation, Inputs: []int{9}, Activation: "relu"},                                          // 10
		{Name: "gap", Op: GlobalAvgPool, Inputs: []int{10}},                                                            // 11
		{Name: "fc", Op: Dense, Inputs: []int{11}, In: 16, Out: 5, Activation: "softmax"},                              // 12
	}
	n, err := New(layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range n.steps {
		kinds = append(kinds, s.name)
	}
	// The stem's padding, batch norm and ReLU fold into conv1; the add takes its ReLU.
	if got, want := strings.Join(kinds, " "), "conv1 pool_pad pool 2a 2b sc add gap fc"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	if !n.steps[0].relu || n.steps[0].pad != 3 || len(n.steps[0].layers) != 2 || !n.steps[6].relu {
		t.Errorf("fusion: conv1 relu=%t pad=%d layers=%v, add relu=%t", n.steps[0].relu, n.steps[0].pad,
			n.steps[0].layers, n.steps[6].relu)
	}
	for _, c := range []struct {
		h, w int
		want []int
	}{{224, 224, []int{5}}, {33, 47, []int{5}}} {
		got, err := n.OutputShape(c.h, c.w)
		if err != nil || len(got) != 1 || got[0] != 5 {
			t.Errorf("OutputShape(%d, %d) = %v, %v", c.h, c.w, got, err)
		}
	}
	p, _ := n.plan(224, 224)
	// 224 → pad 230 → conv 7/2 → 112 → pad 114 → pool 3/2 → 56 → 1×1/2 → 28.
	if s := p.shapes[2]; s != (shape{56, 56, 8}) {
		t.Errorf("pool output %v, want 56×56×8", s)
	}
	if s := p.shapes[6]; s != (shape{28, 28, 16}) {
		t.Errorf("add output %v, want 28×28×16", s)
	}
	// The shortcut's input (pool) must not share a buffer with 2a or 2b, which run before sc.
	if p.slot[2] == p.slot[3] || p.slot[2] == p.slot[4] {
		t.Errorf("slots %v: the pooling output is overwritten before the shortcut reads it", p.slot)
	}
	// A Dense layer after Flatten fixes the input size.
	flat, err := New([]Layer{{Name: "f", Op: Flatten, Inputs: []int{Input}},
		{Name: "d", Op: Dense, Inputs: []int{0}, In: 12, Out: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flat.OutputShape(2, 2); err != nil {
		t.Error(err)
	}
	if _, err := flat.OutputShape(2, 3); err == nil || !strings.Contains(err.Error(), `layer "d" expects 12 inputs, gets 18`) {
		t.Errorf("OutputShape(2, 3): %v", err)
	}
}
