package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

func init() {
	register(&command{
		name:  "predict",
		short: "classify images with VGG16 or ResNet50 as the book's exercises do",
		usage: "--model vgg16|resnet50 [--weights imagenet|FILE.h5] [--top 5] [--json] [--save-probs FILE.npy] IMAGE...",
		run:   runPredict,
	})
}

// predictionJSON is one image's result in --json output.
type predictionJSON struct {
	Image       string          `json:"image"`
	Predictions []predictionRow `json:"predictions"`
	Top1        string          `json:"top1"`
}

type predictionRow struct {
	WNID  string  `json:"wnid"`
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

// runPredict runs the book's prediction cells for each image: load_img(target_size=(224,
// 224)) → img_to_array → expand_dims → preprocess_input → model.predict →
// decode_predictions(top) and print('%s (%.2f%%)' % (label, score*100)). All images go through
// the model in one batch.
func runPredict(args []string) error {
	fs := newFlagSet("predict")
	model := fs.String("model", "", "vgg16 or resnet50")
	weightsArg := fs.String("weights", "imagenet", `"imagenet" (Keras' file, from its cache or downloaded) or the path of a .h5 checkpoint`)
	top := fs.Int("top", 5, "how many classes decode_predictions lists per image")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of the book's text")
	saveProbs := fs.String("save-probs", "", "also write the (N, 1000) float32 probabilities to this .npy file")
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
	case *weightsArg == "":
		return usagef(`--weights must be "imagenet" or a .h5 file`)
	case *top < 1:
		return usagef("--top must be at least 1, got %d", *top)
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

	b, err := backend.New()
	if err != nil {
		return err
	}
	m, err := applications.New(*model, applications.WithWeights(*weightsArg), applications.WithBackend(b))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "weights: %s\n", m.WeightsSource())
	fmt.Fprintf(stderr, "backend: %s\n", backend.Describe(b))
	probs, err := m.Predict(batch)
	if err != nil {
		return err
	}
	if *saveProbs != "" {
		if err := npy.WriteFile(*saveProbs, probs.Shape, probs.Data); err != nil {
			return err
		}
	}
	decoded, err := kernelext.DecodePredictions(probs, *top)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]predictionJSON, len(images))
		for i, preds := range decoded {
			out[i] = predictionJSON{Image: images[i], Top1: top1Line(preds[0])}
			for _, p := range preds {
				out[i].Predictions = append(out[i].Predictions, predictionRow{p.WNID, p.Label, p.Score})
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for i, preds := range decoded {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s:\n", images[i])
		fmt.Fprintln(stdout, kernelext.FormatPredictions([][]kernelext.Prediction{preds}))
		fmt.Fprintln(stdout, top1Line(preds[0]))
	}
	return nil
}

// top1Line is the book's print('%s (%.2f%%)' % (decoded_label[1], decoded_label[2]*100)).
// The score is a NumPy float32 scalar; NumPy 1.x (the book's) multiplies a float32 scalar by a
// Python int in float64, so 0.99995 prints as 99.99%, not the 100.00% a float32 product gives.
func top1Line(p kernelext.Prediction) string {
	return fmt.Sprintf("%s (%.2f%%)", p.Label, float64(p.Score)*100)
}
