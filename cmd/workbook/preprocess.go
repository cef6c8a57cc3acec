package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/kernelext"
)

// preprocessors maps a model name to its keras.applications preprocess_input. VGG16 and
// ResNet50 both use the "caffe" mode (BGR, ImageNet means subtracted).
var preprocessors = map[string]func(*kernelext.Array) *kernelext.Array{
	"vgg16":    kernelext.PreprocessInput,
	"resnet50": kernelext.PreprocessInput,
}

// modelInputSize is the (height, width) each model's pretrained top expects.
var modelInputSize = map[string][2]int{
	"vgg16":    {224, 224},
	"resnet50": {224, 224},
}

func init() {
	register(&command{
		name:  "preprocess",
		short: "turn images into the float32 batch a model's predict() takes, saved as .npy",
		usage: "--model vgg16|resnet50 --out FILE.npy IMAGE...",
		run:   runPreprocess,
	})
}

// runPreprocess writes the (N, 224, 224, 3) float32 batch that Keras builds with
// load_img(path, target_size=(224, 224)) → img_to_array → expand_dims(axis=0) →
// preprocess_input for each image, stacked in argument order.
func runPreprocess(args []string) error {
	fs := newFlagSet("preprocess")
	model := fs.String("model", "", "model whose preprocess_input to apply: "+strings.Join(modelNames(), " or "))
	out := fs.String("out", "", "where to write the batch (.npy, float32, shape (N, 224, 224, 3))")
	images, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	prep, ok := preprocessors[*model]
	switch {
	case *model == "":
		return usagef("--model is required (%s)", strings.Join(modelNames(), ", "))
	case !ok:
		return usagef("unknown model %q (want %s)", *model, strings.Join(modelNames(), " or "))
	case *out == "":
		return usagef("--out is required")
	case len(images) == 0:
		return usagef("no images given")
	}
	size := modelInputSize[*model]
	batch := kernelext.NewArray(len(images), size[0], size[1], 3)
	per := size[0] * size[1] * 3
	for i, path := range images {
		img, err := kernelext.LoadImg(path, kernelext.TargetSize(size[0], size[1]))
		if err != nil {
			return err
		}
		x := prep(kernelext.ExpandDims(kernelext.ImgToArray(img), 0))
		copy(batch.Data[i*per:(i+1)*per], x.Data)
	}
	if err := npy.WriteFile(*out, batch.Shape, batch.Data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: float32 %s from %d image(s), %s preprocess_input\n",
		*out, batch.ShapeString(), len(images), *model)
	return nil
}

func modelNames() []string {
	names := make([]string, 0, len(preprocessors))
	for n := range preprocessors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
