package applications

import (
	"math"
	"math/rand/v2"

	"github.com/transfer-learning-go/workbook/kernelext/layers"
)

// initialValue returns the value Keras 2.3 gives a weight when a model is created with
// weights=None: kernels from the layer's initializer (glorot_uniform or he_normal), biases
// and beta zeros, gamma and moving_variance ones, moving_mean zeros. It is drawn in Go, not in
// a graph, so creating a 138M-parameter model costs no graph compilation.
func initialValue(l *Layer, w Weight, rng *rand.Rand) []float32 {
	data := make([]float32, w.Size())
	switch w.Key {
	case "gamma", "moving_variance":
		for i := range data {
			data[i] = 1
		}
	case "kernel":
		fanIn, fanOut := fans(w.Shape)
		switch l.Config.Initializer {
		case "he_normal":
			// VarianceScaling(2, 'fan_in', 'normal'): a normal truncated at two standard
			// deviations, its stddev corrected by 0.8796… so the variance is 2/fan_in.
			std := math.Sqrt(2/float64(fanIn)) / 0.87962566103423978
			for i := range data {
				v := rng.NormFloat64()
				for math.Abs(v) > 2 {
					v = rng.NormFloat64()
				}
				data[i] = float32(v * std)
			}
		default: // glorot_uniform, Keras' default kernel initializer.
			data = layers.GlorotUniform(rng, len(data), fanIn, fanOut)
		}
	}
	return data
}

// fans is Keras' _compute_fans: receptive field × channels for conv kernels
// (kh, kw, in, out), (in, out) for dense kernels.
func fans(shape []int) (fanIn, fanOut int) {
	if len(shape) == 2 {
		return shape[0], shape[1]
	}
	rf := prod(shape[:len(shape)-2])
	return shape[len(shape)-2] * rf, shape[len(shape)-1] * rf
}
