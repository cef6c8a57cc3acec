package applications

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	gomlxctx "github.com/gomlx/gomlx/pkg/ml/context"

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
	return loadWeights(ctx, arch, cp, false, dtypes.Float32)
}

// MustLoadWeights is LoadWeights for notebook cells: it panics on error.
func MustLoadWeights(ctx *gomlxctx.Context, arch *Architecture, cp *weights.Checkpoint) {
	if err := LoadWeights(ctx, arch, cp); err != nil {
		panic(err)
	}
}

// loadWeights is LoadWeights for variables of dtype dt (float32, or float64 for
// high-precision checks); with onlyMissing it leaves existing variables alone.
func loadWeights(ctx *gomlxctx.Context, arch *Architecture, cp *weights.Checkpoint, onlyMissing bool, dt dtypes.DType) error {
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
		value := tensorOf(p.t.Data, p.t.Shape, dt)
		if p.v == nil {
			p.scope.VariableWithValue(p.key, value)
		} else if err := p.v.SetValue(value); err != nil {
			return fmt.Errorf("applications: loading %s weights into %s: %w", arch.Name, p.v.ScopeAndName(), err)
		}
	}
	return nil
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
func openWeights(spec string, arch *Architecture) (*weights.Checkpoint, string, error) {
	if spec == "imagenet" {
		cp, err := weights.Load(context.Background(), imagenetFile(arch))
		if err != nil {
			return nil, "", err
		}
		return cp, cp.Source().String(), nil
	}
	if !strings.HasSuffix(strings.ToLower(spec), ".h5") && !strings.HasSuffix(strings.ToLower(spec), ".hdf5") {
		return nil, "", fmt.Errorf("applications: weights must be \"imagenet\", \"\" or the path of a .h5 file, got %q", spec)
	}
	cp, err := weights.Open(spec)
	if err != nil {
		return nil, "", err
	}
	return cp, spec, nil
}

func defaultBackend() (backends.Backend, error) { return backend.New() }

func seedFromClock() int64 { return time.Now().UnixNano() }
