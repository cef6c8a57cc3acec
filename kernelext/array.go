// Package kernelext is the Go twin of the Keras helpers Chapter 8 of the workshop calls:
// keras.preprocessing.image (load_img, img_to_array), numpy's expand_dims, and
// keras.applications' preprocess_input and decode_predictions — with outputs equal, value for
// value, to what Keras+Pillow produce — plus GoNB display helpers that do nothing outside a
// notebook.
package kernelext

import (
	"fmt"
	"strings"
)

// Array is a dense, row-major float32 array: the Go stand-in for the numpy arrays Keras passes
// around. Shape follows numpy's conventions (images are (H, W, C), batches (N, H, W, C)).
type Array struct {
	Shape []int
	Data  []float32
}

// NewArray returns a zero-filled array of the given shape.
func NewArray(shape ...int) *Array {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("kernelext: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return &Array{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
}

// Size is the number of elements (the product of the shape).
func (a *Array) Size() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// ShapeString prints the shape as Python prints a tuple, e.g. "(1, 224, 224, 3)" or "(5,)",
// so notebook cells show exactly what the book shows for `x.shape`.
func (a *Array) ShapeString() string { return TupleString(a.Shape) }

// TupleString formats ints as a Python tuple: "(224, 224, 3)", "(5,)", "()".
func TupleString(dims []int) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = fmt.Sprint(d)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// Clone returns a deep copy.
func (a *Array) Clone() *Array {
	return &Array{Shape: append([]int(nil), a.Shape...), Data: append([]float32(nil), a.Data...)}
}

// Scale returns a copy of a with every value multiplied by f — e.g. Scale(1./255), the rescale
// Keras' ImageDataGenerator(rescale=1./255) applies.
func (a *Array) Scale(f float32) *Array {
	b := a.Clone()
	for i := range b.Data {
		b.Data[i] *= f
	}
	return b
}
