package weights

import (
	"fmt"
	"slices"
	"strings"
)

// Expect returns the array key ("kernel", "bias", ...) of the named layer and checks its shape
// when shape is given. The errors are written for someone who picked the wrong file:
//
//	weights: vgg16_weights_tf_dim_ordering_tf_kernels.h5: layer "fc1" kernel has shape (25088, 4096), model expects (2048, 1000)
//	weights: vgg16_weights_tf_dim_ordering_tf_kernels.h5: no layer "res2a_branch2a": the model expects a ResNet50 checkpoint, but this file holds VGG16 layers block1_conv1, block1_conv2, block2_conv1, ..., predictions (16 layers with weights)
func (c *Checkpoint) Expect(layer, key string, shape ...int) (*Tensor, error) {
	l, ok := c.byName[layer]
	if !ok {
		return nil, c.missingLayer(layer)
	}
	t, ok := l.Arrays[key]
	if !ok {
		has := "no weights"
		if len(l.Keys) > 0 {
			has = strings.Join(l.Keys, ", ")
		}
		return nil, c.errorf("layer %q has no %s (it has %s)", layer, key, has)
	}
	if shape != nil && !slices.Equal(t.Shape, shape) {
		return nil, c.errorf("layer %q %s has shape %s, model expects %s", layer, key, tuple(t.Shape), tuple(shape))
	}
	return t, nil
}

// MustExpect is Expect for notebook cells: it panics on error.
func (c *Checkpoint) MustExpect(layer, key string, shape ...int) *Tensor {
	t, err := c.Expect(layer, key, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

// Architecture guesses which of the book's models the checkpoint is for, from its layer names:
// "VGG16", "VGG16 (include_top=False)", "VGG19", "ResNet50", "ResNet50 (include_top=False)", or
// "" when it is none of them.
func (c *Checkpoint) Architecture() string {
	return guessArch(func(n string) bool { _, ok := c.byName[n]; return ok })
}

func guessArch(has func(string) bool) string {
	switch {
	case has("block1_conv1") && has("block5_conv4"):
		if has("fc1") && has("predictions") {
			return "VGG19"
		}
		return "VGG19 (include_top=False)"
	case has("block1_conv1") && has("block5_conv3"):
		if has("fc1") && has("predictions") {
			return "VGG16"
		}
		return "VGG16 (include_top=False)"
	case has("res2a_branch2a") && has("bn_conv1"):
		if has("fc1000") {
			return "ResNet50"
		}
		return "ResNet50 (include_top=False)"
	}
	return ""
}

// archOfLayer names the architecture a layer name belongs to, to say what the model expects.
func archOfLayer(name string) string {
	switch {
	case strings.HasPrefix(name, "res") && strings.Contains(name, "_branch"),
		strings.HasPrefix(name, "bn") && strings.Contains(name, "_branch"),
		name == "bn_conv1", name == "conv1", name == "fc1000":
		return "ResNet50"
	case strings.HasPrefix(name, "block") && strings.Contains(name, "_conv"),
		name == "fc1", name == "fc2", name == "predictions":
		return "VGG16"
	}
	return ""
}

// missingLayer explains a missing layer, naming the architecture the file is for when that
// differs from the one the layer name belongs to.
func (c *Checkpoint) missingLayer(layer string) error {
	var weighted []string
	for _, l := range c.layers {
		if len(l.Arrays) > 0 {
			weighted = append(weighted, l.Name)
		}
	}
	held := fmt.Sprintf("%s (%d layers with weights)", listShort(weighted, 3), len(weighted))
	if len(weighted) == 0 {
		held = "no layers with weights"
	}
	fileArch := c.Architecture()
	wantArch := archOfLayer(layer)
	baseArch := strings.TrimSuffix(fileArch, " (include_top=False)")
	switch {
	case fileArch != "" && wantArch != "" && !strings.HasPrefix(baseArch, wantArch[:3]):
		return c.errorf("no layer %q: the model expects a %s checkpoint, but this file holds %s layers %s",
			layer, wantArch, baseArch, held)
	case strings.HasSuffix(fileArch, "(include_top=False)") && wantArch != "":
		return c.errorf("no layer %q: this is a %s checkpoint without the classifier (a *_notop.h5 file for include_top=False); the model needs the full file",
			layer, baseArch)
	case fileArch != "":
		return c.errorf("no layer %q in this %s checkpoint (it holds %s)", layer, fileArch, held)
	}
	return c.errorf("no layer %q (the file holds %s)", layer, held)
}

// listShort formats names as "a, b, c, ..., z" when there are more than max+1 of them.
func listShort(names []string, max int) string {
	if len(names) <= max+1 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + ", ..., " + names[len(names)-1]
}
