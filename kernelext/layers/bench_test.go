package layers

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Benchmarks of the pure-Go forms against the backend's native ops. They report, besides the
// wall time, "cpu-ms/op" (CPU time of all threads, steadier on a shared machine) and the
// arithmetic rate ("GFLOP/s", 2 per multiply-add of the direct convolution). Examples:
//
//	go test ./kernelext/layers/ -run '^$' -bench 'VGG16Conv/.*/(auto|im2col|winograd)$' -benchtime 2x
//	go test ./kernelext/layers/ -run '^$' -bench 'VGG16Conv/conv5_1/native' -benchtime 1x
//	go test ./kernelext/layers/ -run '^$' -bench 'VGG16Forward/batch1' -benchtime 3x -cpuprofile /tmp/cpu.prof
//	go test ./kernelext/layers/ -run '^$' -bench 'Block5TrainStep' -benchtime 2x
//
// LAYERS_BENCH_GO_CONFIG sets the pure-Go backend's configuration (default "ops_sequential").
// PyTorch's time for the same VGG16 on the same machine is what kernelext/applications'
// BenchmarkVGG16Predict reports next to its own.

var benchBackends = map[string]backends.Backend{}

func benchBackend(b *testing.B, config string) backends.Backend {
	if config == "" {
		config = os.Getenv("LAYERS_BENCH_GO_CONFIG")
	}
	if config == "" {
		config = "ops_sequential"
	}
	if be, ok := benchBackends[config]; ok {
		return be
	}
	be, err := simplego.New(config)
	if err != nil {
		b.Fatal(err)
	}
	benchBackends[config] = be
	return be
}

// runExec benchmarks exec.Exec(args...) reporting cpu-ms/op and, if flops > 0, GFLOP/s.
func runExec(b *testing.B, exec *Exec, flops float64, args ...any) {
	for _, t := range exec.MustExec(args...) { // Build and warm up.
		t.FinalizeAll()
	}
	b.ResetTimer()
	cpu0, t0 := processCPUTime(), time.Now()
	for range b.N {
		for _, t := range exec.MustExec(args...) {
			t.FinalizeAll()
		}
	}
	wall, cpu := time.Since(t0), processCPUTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	if flops > 0 {
		b.ReportMetric(flops*float64(b.N)/wall.Seconds()/1e9, "GFLOP/s")
	}
}

func randTensor(seed uint64, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return tensor32(randFlat(seed, n), dims...)
}

// vgg16Convs are VGG16's distinct convolution shapes at 224×224: (name, size, Cin, Cout).
var vgg16Convs = []struct {
	name           string
	hw, cin, cout  int
	countInNetwork int
}{
	{"conv1_1", 224, 3, 64, 1}, {"conv1_2", 224, 64, 64, 1},
	{"conv2_1", 112, 64, 128, 1}, {"conv2_2", 112, 128, 128, 1},
	{"conv3_1", 56, 128, 256, 1}, {"conv3_2", 56, 256, 256, 2},
	{"conv4_1", 28, 256, 512, 1}, {"conv4_2", 28, 512, 512, 2},
	{"conv5_1", 14, 512, 512, 3},
}

// BenchmarkVGG16Conv times each VGG16 convolution (batch 1, 3×3 "same") in each form; "native"
// is the backend's own Convolve (slow: minutes for the whole set).
func BenchmarkVGG16Conv(b *testing.B) {
	be := benchBackend(b, "")
	methods := []struct {
		name string
		m    convMethod
	}{{"auto", methodAuto}, {"im2col", methodIm2col}, {"shifted", methodShifted}, {"winograd", methodWinograd}, {"native", -1}}
	for _, c := range vgg16Convs {
		geo := newConvGeom(c.hw, c.hw, 3, 3, 1, Same)
		x, k := randTensor(1, 1, c.hw, c.hw, c.cin), randTensor(2, 3, 3, c.cin, c.cout)
		flops := 2 * float64(c.hw*c.hw*9*c.cin*c.cout)
		for _, m := range methods {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				exec := MustNewExec(be, func(x, k *Node) *Node {
					if m.m < 0 {
						return Convolve(x, k).Strides(1).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
					}
					if m.m == methodAuto {
						return convForward(x, k, geo)
					}
					return convForwardWith(m.m, x, k, geo)
				})
				runExec(b, exec, flops, x, k)
			})
		}
	}
}

// vgg16Weights are random weights shaped like VGG16's (kernels, biases; fc kernels (in, out)
// and, for DenseTransposed, (out, in)).
type vgg16Weights struct {
	convs        [][2]*tensors.Tensor
	fc, fcT      [][2]*tensors.Tensor
	convChannels [][2]int
}

var vgg16Blocks = [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}}

func newVGG16Weights() *vgg16Weights {
	w := &vgg16Weights{}
	cin, seed := 3, uint64(100)
	for _, block := range vgg16Blocks {
		for _, cout := range block {
			w.convs = append(w.convs, [2]*tensors.Tensor{randTensor(seed, 3, 3, cin, cout), randTensor(seed+1, cout)})
			w.convChannels = append(w.convChannels, [2]int{cin, cout})
			cin, seed = cout, seed+2
		}
	}
	for _, fc := range [][2]int{{7 * 7 * 512, 4096}, {4096, 4096}, {4096, 1000}} {
		w.fc = append(w.fc, [2]*tensors.Tensor{randTensor(seed, fc[0], fc[1]), randTensor(seed+1, fc[1])})
		w.fcT = append(w.fcT, [2]*tensors.Tensor{randTensor(seed, fc[1], fc[0]), w.fc[len(w.fc)-1][1]})
		seed += 2
	}
	return w
}

// vgg16 builds VGG16's forward pass from this package's layers; weights arrive as parameters
// in the order of vgg16Weights.args.
func vgg16(x *Node, p []*Node, transposedFC bool) *Node {
	relu := func(x *Node) *Node { return Max(x, ZerosLike(x)) }
	i := 0
	for _, block := range vgg16Blocks {
		for range block {
			x = relu(Conv2D(x, p[i], p[i+1], 1, Same))
			i += 2
		}
		x = MaxPool2D(x, 2, 2)
	}
	x = Flatten(x)
	for j := range 3 {
		if transposedFC {
			x = DenseTransposed(x, p[i], p[i+1])
		} else {
			x = Dense(x, p[i], p[i+1])
		}
		if j < 2 {
			x = relu(x)
		}
		i += 2
	}
	return Softmax(x)
}

func (w *vgg16Weights) args(x *tensors.Tensor, transposedFC bool) []any {
	args := []any{x}
	for _, c := range w.convs {
		args = append(args, c[0], c[1])
	}
	fc := w.fc
	if transposedFC {
		fc = w.fcT
	}
	for _, f := range fc {
		args = append(args, f[0], f[1])
	}
	return args
}

// vgg16FLOPs counts 2 per multiply-add of the convolutions and dense layers, per image.
func vgg16FLOPs() float64 {
	var f float64
	hw, cin := 224, 3
	for _, block := range vgg16Blocks {
		for _, cout := range block {
			f += 2 * float64(hw*hw*9*cin*cout)
			cin = cout
		}
		hw /= 2
	}
	return f + 2*float64(25088*4096+4096*4096+4096*1000)
}

var benchVGG16Weights *vgg16Weights

// BenchmarkVGG16Forward times a whole VGG16 forward pass with random weights on the pure-Go
// backend, with the fc kernels stored (in, out) for Dense and (out, in) for DenseTransposed.
func BenchmarkVGG16Forward(b *testing.B) {
	if benchVGG16Weights == nil {
		benchVGG16Weights = newVGG16Weights()
	}
	w := benchVGG16Weights
	for _, batch := range []int{1, 4} {
		for _, transposed := range []bool{true, false} {
			name := fmt.Sprintf("batch%d/dense", batch)
			if transposed {
				name = fmt.Sprintf("batch%d/denseTransposed", batch)
			}
			b.Run(name, func(b *testing.B) {
				x := randTensor(7, batch, 224, 224, 3)
				exec := MustNewExec(benchBackend(b, ""), func(in []*Node) *Node { return vgg16(in[0], in[1:], transposed) })
				runExec(b, exec, vgg16FLOPs()*float64(batch), w.args(x, transposed)...)
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*batch), "s/image")
			})
		}
	}
}

// BenchmarkBlock5TrainStep times one SGD step of TestBlock5TrainsOnGo's stack at batch 8
// (forward, gradients of the three kernels and the inputs of the second and third
// convolutions, update).
func BenchmarkBlock5TrainStep(b *testing.B) {
	const batch, ch = 8, 512
	relu := func(x *Node) *Node { return Max(x, ZerosLike(x)) }
	exec := MustNewExec(benchBackend(b, ""), func(in []*Node) []*Node {
		x, p := in[0], in[1:]
		for i := range 3 {
			x = relu(Conv2D(x, p[2*i], p[2*i+1], 1, Same))
		}
		loss := ReduceAllMean(Dense(Flatten(MaxPool2D(x, 2, 2)), p[6], p[7]))
		grads := Gradient(loss, p...)
		out := []*Node{loss}
		for i := range p {
			out = append(out, Sub(p[i], MulScalar(grads[i], 1e-3)))
		}
		return out
	})
	args := []any{randTensor(1, batch, 14, 14, ch)}
	for i := range 3 {
		args = append(args, randTensor(uint64(2+i), 3, 3, ch, ch), randTensor(uint64(5+i), ch))
	}
	args = append(args, randTensor(9, 7*7*ch, 1), randTensor(10, 1))
	// 3 forward convolutions, 3 kernel gradients, 2 input gradients.
	runExec(b, exec, 8*2*float64(batch*14*14*9*ch*ch), args...)
}
