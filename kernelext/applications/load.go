package applications

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/internal/hugepages"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/weights"
)

// LoadWeights sets the variables of arch's layers in ctx (scope = Keras layer name, variable =
// weight key) from the checkpoint, matching layers by name as Keras' load_weights(by_name=True)
// does — the file may hold more layers than the model (e.g. the full VGG16 file for a model
// without the top). Every array's shape is checked against the model first; on any error
// nothing is changed and the error names the layer and both shapes, or says which
// architecture the file is for when it is not this one. NaN or infinite values are reported on
// Warnings.
func LoadWeights(ctx *gomlxctx.Context, arch *Architecture, cp *weights.Checkpoint) error {
	return loadWeights(ctx, arch, cp, false, dtypes.Float32, nil)
}

// MustLoadWeights is LoadWeights for notebook cells: it panics on error.
func MustLoadWeights(ctx *gomlxctx.Context, arch *Architecture, cp *weights.Checkpoint) {
	if err := LoadWeights(ctx, arch, cp); err != nil {
		panic(err)
	}
}

// loadWeights is LoadWeights for variables of dtype dt (float32, or float64 for
// high-precision checks); with onlyMissing it leaves existing variables alone. Arrays that
// were read into mem's tensors (mem may be nil) become the variables' values without a copy.
func loadWeights(ctx *gomlxctx.Context, arch *Architecture, cp *weights.Checkpoint, onlyMissing bool, dt dtypes.DType, mem *intoTensors) error {
	type pending struct {
		scope *gomlxctx.Context
		key   string
		t     *weights.Tensor
		v     *gomlxctx.Variable
	}
	if err := checkArchitecture(arch, cp); err != nil {
		return err
	}
	var todo []pending
	for _, l := range arch.Layers {
		sc := ctx.In(l.Name).Checked(false)
		for _, w := range l.Weights {
			v := sc.GetVariableByScopeAndName(sc.Scope(), w.Key)
			if v != nil && onlyMissing {
				continue
			}
			if l.Added {
				if _, ok := cp.Layer(l.Name); !ok {
					continue // a new head: keeps its initial value
				}
			}
			t, err := cp.Expect(l.Name, w.Key, w.Shape...)
			if err != nil {
				return fmt.Errorf("applications: loading %s weights: %w", arch.Name, err)
			}
			if want := shapes.Make(dt, w.Shape...); v != nil && !v.Shape().Equal(want) {
				return variableError(arch.Name, l.Name, w.Key, want, v.Shape())
			}
			todo = append(todo, pending{sc, w.Key, t, v})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	for _, msg := range cp.Warnings() {
		warnf("%s: %s", cp.Path(), msg)
	}
	for _, p := range todo {
		value := mem.adopted(p.t, dt)
		if value == nil {
			value = tensorOf(p.t.Data, p.t.Shape, dt)
		}
		if p.v == nil {
			p.scope.VariableWithValue(p.key, value)
		} else if err := p.v.SetValue(value); err != nil {
			return fmt.Errorf("applications: loading %s weights into %s: %w", arch.Name, p.v.ScopeAndName(), err)
		}
	}
	return nil
}

// intoTensors is a weights.ArrayMemory that reads the arrays of arch's float32 weights
// straight into new tensors, which loadWeights then makes the variables' values as they are
// (adopted): VGG16's weights are read once into their final place instead of being read and
// then copied. The checkpoint's arrays share that memory, so the checkpoint must not outlive
// the loading.
type intoTensors struct {
	arch *Architecture
	made map[*float32]*tensors.Tensor // by the address of the first value
}

// newIntoTensors returns the memory for arch's weights, or nil for a float64 model (its
// variables are converted anyway).
func newIntoTensors(arch *Architecture, dt dtypes.DType) *intoTensors {
	if dt != dtypes.Float32 {
		return nil
	}
	return &intoTensors{arch: arch, made: map[*float32]*tensors.Tensor{}}
}

// options is the weights option that reads into m (none when m is nil).
func (m *intoTensors) options() []weights.Option {
	if m == nil {
		return nil
	}
	return []weights.Option{weights.WithArrayMemory(m.alloc)}
}

func (m *intoTensors) alloc(layer, key string, shape []int) []float32 {
	l := m.arch.Layer(layer)
	if l == nil || l.Added || len(shape) == 0 || shapes.Make(dtypes.Float32, shape...).Size() == 0 {
		return nil
	}
	if w := l.Weight(key); w == nil || !slices.Equal(w.Shape, shape) {
		return nil
	}
	t := tensors.FromShape(shapes.Make(dtypes.Float32, shape...))
	var flat []float32
	tensors.MustMutableFlatData(t, func(f []float32) { flat = f })
	hugepages.Advise(flat) // before the checkpoint's values are read in
	m.made[&flat[0]] = t
	return flat
}

// adopted returns the tensor a's values were read into, or nil if they were not (m may be nil).
func (m *intoTensors) adopted(a *weights.Tensor, dt dtypes.DType) *tensors.Tensor {
	if m == nil || dt != dtypes.Float32 || len(a.Data) == 0 {
		return nil
	}
	t := m.made[&a.Data[0]]
	if t == nil || t.Size() != len(a.Data) {
		return nil
	}
	return t
}

// checkArchitecture refuses a checkpoint made for another network before any per-layer
// message could make the mistake look like a detail: a file that holds none of the model's
// layers, or one the weights package recognises as another architecture (a VGG19 file holds
// every VGG16 layer name, for instance).
func checkArchitecture(arch *Architecture, cp *weights.Checkpoint) error {
	want := map[string]string{"vgg16": "VGG16", "resnet50": "ResNet50"}[arch.Name]
	fileArch := cp.Architecture()
	if fileArch != "" && strings.TrimSuffix(fileArch, " (include_top=False)") != want {
		return fmt.Errorf("applications: %s is a %s checkpoint; %s needs a %s checkpoint",
			cp.Path(), fileArch, arch.Name, want)
	}
	matched := 0
	for _, l := range arch.Layers {
		if len(l.Weights) == 0 || l.Added {
			continue
		}
		if _, ok := cp.Layer(l.Name); ok {
			matched++
		}
	}
	if matched > 0 {
		return nil
	}
	var held []string
	for _, l := range cp.Layers() {
		if len(l.Arrays) > 0 {
			held = append(held, l.Name)
		}
	}
	if len(held) > 6 {
		held = append(held[:5], "...", held[len(held)-1])
	}
	guess := ""
	for _, name := range held {
		if name == "conv1" || name == "bn_conv1" || strings.HasPrefix(name, "res2a_") {
			guess = " — they are ResNet50 layer names"
			break
		}
		if strings.HasPrefix(name, "block1_conv") {
			guess = " — they are VGG layer names"
			break
		}
	}
	return fmt.Errorf("applications: %s holds none of %s's layers (it has %s%s); %s needs a %s checkpoint",
		cp.Path(), arch.Name, strings.Join(held, ", "), guess, arch.Name, want)
}

// imagenetFile is the official checkpoint keras.applications loads for the architecture.
func imagenetFile(arch *Architecture) string {
	switch {
	case arch.Name == "vgg16" && arch.IncludeTop:
		return weights.VGG16
	case arch.Name == "vgg16":
		return weights.VGG16NoTop
	case arch.IncludeTop:
		return weights.ResNet50
	}
	return weights.ResNet50NoTop
}

// openWeights opens the checkpoint named by a WithWeights argument and describes its origin.
func openWeights(spec string, arch *Architecture, opts ...weights.Option) (*weights.Checkpoint, string, error) {
	if spec == "imagenet" {
		cp, err := weights.Load(context.Background(), imagenetFile(arch), opts...)
		if err != nil {
			return nil, "", err
		}
		return cp, cp.Source().String(), nil
	}
	if !strings.HasSuffix(strings.ToLower(spec), ".h5") && !strings.HasSuffix(strings.ToLower(spec), ".hdf5") {
		return nil, "", fmt.Errorf("applications: weights must be \"imagenet\", \"\" or the path of a .h5 file, got %q", spec)
	}
	cp, err := weights.Open(spec, opts...)
	if err != nil {
		return nil, "", err
	}
	return cp, spec, nil
}

func defaultBackend() (backends.Backend, error) { return backend.New() }

func seedFromClock() int64 { return time.Now().UnixNano() }
