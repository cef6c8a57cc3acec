package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/training"
)

func init() {
	register(&command{
		name:  "finetune",
		short: "Exercise 8.03: train Dense(1, sigmoid) on frozen VGG16 to tell cars from flowers, optionally unfreeze the top block",
		usage: "[--data DIR] [--model vgg16|resnet50] [--weights imagenet|FILE.h5|none] [--epochs 10] [--steps 100] " +
			"[--val-steps 30] [--batch 32] [--stage2-epochs N --unfreeze block5_ --lr2 1e-5] [--cached-features[=K]] " +
			"[--checkpoint-dir DIR [--resume]] [--out FILE] [--seed 42] [--predict IMAGE]",
		run: runFinetune,
	})
}

// cachedFlag is --cached-features[=K]: off, on with unaugmented features (K = 0), or K fixed
// augmented copies per training image.
type cachedFlag struct{ f *training.FineTuning }

func (c cachedFlag) String() string {
	if c.f == nil || !c.f.Cached {
		return "off"
	}
	return strconv.Itoa(c.f.CachedCopies)
}

func (c cachedFlag) Set(s string) error {
	switch s {
	case "true":
		c.f.Cached, c.f.CachedCopies = true, 0
	case "false", "off":
		c.f.Cached, c.f.CachedCopies = false, 0
	default:
		k, err := strconv.Atoi(s)
		if err != nil || k < 0 {
			return fmt.Errorf("want a number of augmented copies ≥ 0, got %q", s)
		}
		c.f.Cached, c.f.CachedCopies = true, k
	}
	return nil
}

func (c cachedFlag) IsBoolFlag() bool { return true }

// runFinetune is Exercise 8.03 from the command line: VGG16 without its "predictions" layer,
// frozen, plus Dense(1, activation='sigmoid'), compiled with Adam and binary cross-entropy and
// trained with fit_generator on the augmented cars/flowers folders; then, with
// --stage2-epochs, the top block unfrozen and trained on with a small learning rate; finally
// the prediction for test_image_2.jpg, exactly as the book computes it, and the saved model.
// The run itself is training.FineTuning's, as in the notebooks and the grader.
func runFinetune(args []string) error {
	fs := newFlagSet("finetune")
	book := training.BookSchedule
	var f training.FineTuning
	fs.StringVar(&f.Data, "data", "", "folder holding training_set/ and test_set/ (one sub-folder per class), or a copy of the book's repository "+
		"("+datasets.BookRepository+", 94 MB of images under Chapter08/Data/Dataset); default $"+datasets.DataEnv+", else the shipped sample (80 + 32 images)")
	fs.StringVar(&f.Network, "model", "vgg16", "vgg16 (the book's) or resnet50")
	fs.StringVar(&f.Weights, "weights", "imagenet", `"imagenet" (Keras' file, from $WORKBOOK_WEIGHTS_DIR or Keras' cache), a .h5 file, or "none" (random initialisation)`)
	fs.IntVar(&f.Size, "size", 224, "input height and width (Keras target_size); VGG16 keeps fc1/fc2 only at 224, other sizes use include_top=False + Flatten")
	fs.IntVar(&f.Schedule.Epochs, "epochs", book.Epochs, "epochs of the frozen-base stage (fit_generator epochs)")
	fs.IntVar(&f.Schedule.Steps, "steps", book.Steps, "training batches per epoch (steps_per_epoch)")
	fs.IntVar(&f.Schedule.ValSteps, "val-steps", book.ValSteps, "validation batches per epoch (validation_steps)")
	fs.IntVar(&f.Schedule.Batch, "batch", book.Batch, "images per batch (flow_from_directory batch_size)")
	fs.IntVar(&f.Stage2Epochs, "stage2-epochs", 0, "epochs with the --unfreeze layers trainable after the frozen stage (0: the book's exercise only)")
	fs.StringVar(&f.Unfreeze, "unfreeze", "", `layers stage 2 trains: a name prefix ("block5_", VGG16's default) or "from=LAYER" ("from=res5a_branch2a", ResNet50's default)`)
	fs.Float64Var(&f.LR2, "lr2", 1e-5, "Adam learning rate of stage 2")
	cached := cachedFlag{&f}
	fs.Var(cached, "cached-features", "train the head on features computed once per image (=K: K augmented copies per training image); fast, but no fresh augmentation per step")
	fs.StringVar(&f.Dir, "checkpoint-dir", "", "write a checkpoint after every epoch into this folder")
	fs.BoolVar(&f.Resume, "resume", false, "continue the run saved in --checkpoint-dir after its last completed epoch")
	out := fs.String("out", "car-flower-classifier.ckpt", `save the trained model here (model.save); "" to skip`)
	fs.Int64Var(&f.Seed, "seed", 42, "seed of the head's initialisation, the shuffles and the augmentation")
	predict := fs.String("predict", "", "image to classify after training (default: the book's test_image_2.jpg)")
	fs.IntVar(&f.LineEvery, "line-every", 25, "when the log is not a terminal, print the progress bar every N steps")
	fs.BoolVar(&f.Summary, "summary", false, "print the model's summary (Keras model.summary()) before training")
	fs.BoolVar(&f.CheckImages, "check-images", true, "decode every image once before training, so that unreadable files are named up front")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	s := f.Schedule
	switch {
	case len(rest) > 0:
		return usagef("unexpected arguments %q", rest)
	case f.Network != "vgg16" && f.Network != "resnet50":
		return usagef("unknown model %q (want vgg16 or resnet50)", f.Network)
	case f.Weights == "":
		return usagef(`--weights must be "imagenet", a .h5 file or "none"`)
	case f.Size < 32:
		return usagef("--size %d: VGG16 and ResNet50 need at least 32×32 pixels", f.Size)
	case s.Epochs < 1 || s.Steps < 1 || s.ValSteps < 1 || s.Batch < 1:
		return usagef("--epochs, --steps, --val-steps and --batch must be at least 1")
	case f.Stage2Epochs < 0:
		return usagef("--stage2-epochs must be ≥ 0")
	case f.Stage2Epochs > 0 && !(f.LR2 > 0):
		return usagef("--lr2 must be positive")
	case f.Resume && f.Dir == "":
		return usagef("--resume needs --checkpoint-dir")
	case f.LineEvery < 0:
		return usagef("--line-every must be ≥ 0")
	}
	predictPath := *predict
	if predictPath == "" {
		pd, err := datasets.PredictionDir()
		if err != nil {
			return err
		}
		predictPath = filepath.Join(pd, "test_image_2.jpg")
	}
	if _, err := datasets.DefaultLoader(predictPath, f.Size, f.Size); err != nil {
		return fmt.Errorf("--predict: %w", err)
	}
	f.Out = stdout
	if finetuneTestHook != nil {
		finetuneTestHook(&f)
	}
	t, err := f.Run()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nHistory:\n%s", t.History)

	// Steps 9-11 of the exercise: the prediction for a new image, as the book computes it.
	if err := finetunePredict(t.Model, predictPath, f.Size, t.Classes); err != nil {
		return err
	}
	// Step 12: classifier.save('car-flower-classifier.h5').
	if *out != "" {
		if err := t.Model.Save(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Saved the model to %s (GoMLX variables and optimizer state; load it with training.Model.Load).\n", *out)
	}
	return nil
}

// finetuneTestHook, when set (tests), adjusts the run's settings before it starts.
var finetuneTestHook func(*training.FineTuning)

// finetunePredict is the book's steps 9–11: load_img(target_size) → img_to_array → expand_dims
// → classifier.predict, on the pixel values 0…255 — the book does not apply the 1/255 rescale
// its generators trained the model with — then `'It is a flower' if result[0][0] == 1 else
// 'It is a car'`. The same prediction on the rescaled image is printed after it, for comparison.
func finetunePredict(full *training.Model, path string, size int, classes []string) error {
	img, err := kernelext.LoadImg(path, kernelext.TargetSize(size, size))
	if err != nil {
		return err
	}
	x := kernelext.ExpandDims(kernelext.ImgToArray(img), 0)
	result, err := full.Predict(x)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nPrediction for %s (the book's way: pixel values 0–255, no 1/255 rescale):\nresult = %v\n", path, result)
	fmt.Fprintln(stdout, training.BookDecision(result.Data[0]))

	scaled := x.Clone()
	for i := range scaled.Data {
		scaled.Data[i] *= float32(1. / 255)
	}
	p, err := full.Predict(scaled)
	if err != nil {
		return err
	}
	cls := classes[0]
	if p.Data[0] > 0.5 {
		cls = classes[1]
	}
	fmt.Fprintf(stdout, "With the 1/255 rescale the model was trained with, the output is %.4f (%s at threshold 0.5).\n", p.Data[0], cls)
	return nil
}
