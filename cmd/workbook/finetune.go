package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/internal/gemm"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/applications/inference"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
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

// The book's fine-tuning schedule (Exercise 8.03): fit_generator(steps_per_epoch=100,
// epochs=10, validation_steps=30) on flow_from_directory(batch_size=32).
const (
	bookEpochs   = 10
	bookSteps    = 100
	bookValSteps = 30
	bookBatch    = 32
)

// finetuneEpochHook, when set (tests), runs at the end of every epoch of either stage; an error
// stops the run as a crash would, after the previous epoch's checkpoint was written.
var finetuneEpochHook func(stage string, epoch int) error

// bookWayOnFullModel, when set (tests), makes the book's way train the whole model in GoMLX
// even where the frozen base could run on the workbook's inference code (finetuneSplit), so
// that the two can be compared.
var bookWayOnFullModel bool

// cachedFlag is --cached-features[=K]: off, on with unaugmented features (K = 0), or K fixed
// augmented copies per training image.
type cachedFlag struct {
	on     bool
	copies int
}

func (c *cachedFlag) String() string {
	if c == nil || !c.on {
		return "off"
	}
	return strconv.Itoa(c.copies)
}

func (c *cachedFlag) Set(s string) error {
	switch s {
	case "true":
		c.on, c.copies = true, 0
	case "false", "off":
		c.on, c.copies = false, 0
	default:
		k, err := strconv.Atoi(s)
		if err != nil || k < 0 {
			return fmt.Errorf("want a number of augmented copies ≥ 0, got %q", s)
		}
		c.on, c.copies = true, k
	}
	return nil
}

func (c *cachedFlag) IsBoolFlag() bool { return true }

// finetuneConfig is what a run depends on; it is written next to the checkpoints so that
// --resume refuses to continue a run made with other settings.
type finetuneConfig struct {
	Model        string  `json:"model"`
	Weights      string  `json:"weights"` // the weights' identity (content digest or seed)
	Size         int     `json:"size"`
	Epochs       int     `json:"epochs"`
	Steps        int     `json:"steps"`
	ValSteps     int     `json:"val_steps"`
	Batch        int     `json:"batch"`
	Stage2Epochs int     `json:"stage2_epochs"`
	Unfreeze     string  `json:"unfreeze,omitempty"`
	LR2          float64 `json:"lr2,omitempty"`
	Cached       string  `json:"cached_features"`
	Seed         int64   `json:"seed"`
	TrainDir     string  `json:"train_dir"`
	TestDir      string  `json:"test_dir"`
}

// runFinetune is Exercise 8.03 from the command line: VGG16 without its "predictions" layer,
// frozen, plus Dense(1, activation='sigmoid'), compiled with Adam and binary cross-entropy and
// trained with fit_generator on the augmented cars/flowers folders; then, with
// --stage2-epochs, the top block unfrozen and trained on with a small learning rate; finally
// the prediction for test_image_2.jpg, exactly as the book computes it, and the saved model.
func runFinetune(args []string) error {
	fs := newFlagSet("finetune")
	dataDir := fs.String("data", "", "folder holding training_set/ and test_set/ (one sub-folder per class), or a copy of the book's repository "+
		"("+datasets.BookRepository+", 94 MB of images under Chapter08/Data/Dataset); default $"+datasets.DataEnv+", else the shipped sample (80 + 32 images)")
	model := fs.String("model", "vgg16", "vgg16 (the book's) or resnet50")
	weightsArg := fs.String("weights", "imagenet", `"imagenet" (Keras' file, from $WORKBOOK_WEIGHTS_DIR or Keras' cache), a .h5 file, or "none" (random initialisation)`)
	size := fs.Int("size", 224, "input height and width (Keras target_size); VGG16 keeps fc1/fc2 only at 224, other sizes use include_top=False + Flatten")
	epochs := fs.Int("epochs", bookEpochs, "epochs of the frozen-base stage (fit_generator epochs)")
	steps := fs.Int("steps", bookSteps, "training batches per epoch (steps_per_epoch)")
	valSteps := fs.Int("val-steps", bookValSteps, "validation batches per epoch (validation_steps)")
	batch := fs.Int("batch", bookBatch, "images per batch (flow_from_directory batch_size)")
	stage2Epochs := fs.Int("stage2-epochs", 0, "epochs with the --unfreeze layers trainable after the frozen stage (0: the book's exercise only)")
	unfreeze := fs.String("unfreeze", "", `layers stage 2 trains: a name prefix ("block5_", VGG16's default) or "from=LAYER" ("from=res5a_branch2a", ResNet50's default)`)
	lr2 := fs.Float64("lr2", 1e-5, "Adam learning rate of stage 2")
	var cached cachedFlag
	fs.Var(&cached, "cached-features", "train the head on features computed once per image (=K: K augmented copies per training image); fast, but no fresh augmentation per step")
	ckptDir := fs.String("checkpoint-dir", "", "write a checkpoint after every epoch into this folder")
	resume := fs.Bool("resume", false, "continue the run saved in --checkpoint-dir after its last completed epoch")
	out := fs.String("out", "car-flower-classifier.ckpt", `save the trained model here (model.save); "" to skip`)
	seed := fs.Int64("seed", 42, "seed of the head's initialisation, the shuffles and the augmentation")
	predict := fs.String("predict", "", "image to classify after training (default: the book's test_image_2.jpg)")
	lineEvery := fs.Int("line-every", 25, "when the log is not a terminal, print the progress bar every N steps")
	summary := fs.Bool("summary", false, "print the model's summary (Keras model.summary()) before training")
	checkImages := fs.Bool("check-images", true, "decode every image once before training, so that unreadable files are named up front")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("unexpected arguments %q", rest)
	case *model != "vgg16" && *model != "resnet50":
		return usagef("unknown model %q (want vgg16 or resnet50)", *model)
	case *weightsArg == "":
		return usagef(`--weights must be "imagenet", a .h5 file or "none"`)
	case *size < 32:
		return usagef("--size %d: VGG16 and ResNet50 need at least 32×32 pixels", *size)
	case *epochs < 1 || *steps < 1 || *valSteps < 1 || *batch < 1:
		return usagef("--epochs, --steps, --val-steps and --batch must be at least 1")
	case *stage2Epochs < 0:
		return usagef("--stage2-epochs must be ≥ 0")
	case *stage2Epochs > 0 && !(*lr2 > 0):
		return usagef("--lr2 must be positive")
	case *resume && *ckptDir == "":
		return usagef("--resume needs --checkpoint-dir")
	case *lineEvery < 0:
		return usagef("--line-every must be ≥ 0")
	}
	if *unfreeze == "" {
		*unfreeze = map[string]string{"vgg16": "block5_", "resnet50": "from=res5a_branch2a"}[*model]
	}
	selector := unfreezeSelector(*unfreeze)

	// The data: two folders with one sub-folder per class, checked before anything is built.
	trainDir, testDir, err := finetuneDirs(*dataDir)
	if err != nil {
		return err
	}
	predictPath := *predict
	if predictPath == "" {
		pd, err := datasets.PredictionDir()
		if err != nil {
			return err
		}
		predictPath = filepath.Join(pd, "test_image_2.jpg")
	}
	target := [2]int{*size, *size}
	trainAug := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
	testPre := datasets.ImageDataGenerator{Rescale: 1. / 255}
	trainIt, err := trainAug.FlowFromDirectory(trainDir, datasets.FlowOptions{TargetSize: target, BatchSize: *batch,
		ClassMode: datasets.Binary, Seed: datasets.Seed(*seed), Out: stdout})
	if err != nil {
		return err
	}
	defer trainIt.Close()
	testIt, err := testPre.FlowFromDirectory(testDir, datasets.FlowOptions{TargetSize: target, BatchSize: *batch,
		ClassMode: datasets.Binary, Seed: datasets.Seed(*seed + 1), Out: stdout})
	if err != nil {
		return err
	}
	defer testIt.Close()
	if err := checkFinetuneData(trainIt, testIt, *batch); err != nil {
		return err
	}
	if *checkImages {
		paths := append(append(slices.Clone(trainIt.Filepaths()), testIt.Filepaths()...), predictPath)
		if err := checkReadable(paths, target); err != nil {
			return err
		}
	} else if _, err := datasets.DefaultLoader(predictPath, *size, *size); err != nil {
		return fmt.Errorf("--predict: %w", err)
	}
	printSchedule(trainIt, testIt, *epochs, *steps, *valSteps, *stage2Epochs)

	b, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Backend: %s\n", backend.Describe(b))
	ft, err := buildFinetuneModel(b, *model, *weightsArg, *size, *seed)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ft.weights)
	if *stage2Epochs > 0 {
		if err := checkUnfreeze(ft, *unfreeze); err != nil {
			return err
		}
	}
	if *summary {
		fmt.Fprint(stdout, ft.app.Summary())
	}

	cfg := finetuneConfig{Model: *model, Weights: ft.weights.Digest, Size: *size, Epochs: *epochs, Steps: *steps,
		ValSteps: *valSteps, Batch: *batch, Stage2Epochs: *stage2Epochs, Cached: cached.String(), Seed: *seed,
		TrainDir: absPath(trainDir), TestDir: absPath(testDir)}
	if *stage2Epochs > 0 {
		cfg.Unfreeze, cfg.LR2 = *unfreeze, *lr2
	}
	if *ckptDir != "" {
		if err := prepareCheckpointDir(*ckptDir, cfg, *resume); err != nil {
			return err
		}
	}
	ckpt := func(name string) string {
		if *ckptDir == "" {
			return ""
		}
		return filepath.Join(*ckptDir, name)
	}
	hook := func(stage string) []training.Callback {
		if finetuneEpochHook == nil {
			return nil
		}
		return []training.Callback{{OnEpochEnd: func(epoch int, _ map[string]float64) error {
			return finetuneEpochHook(stage, epoch)
		}}}
	}

	full, err := training.NewModel(b, ft.app.Context(), ft.app.Name(), ft.app.Apply)
	if err != nil {
		return err
	}
	base := training.ApplicationLayers(ft.app, training.LayersUntil(ft.baseLast))
	trainSeq := training.NewSequenceGenerator(trainIt, false) // the book passes shuffle=False
	defer trainSeq.Close()
	valSeq := training.NewSequenceGenerator(testIt, false)
	defer valSeq.Close()
	stage2 := training.FitOptions{Epochs: *stage2Epochs, StepsPerEpoch: *steps, ValidationData: valSeq,
		ValidationSteps: *valSteps, LineEvery: *lineEvery, Out: stdout, Checkpoint: ckpt("stage2.ckpt"),
		Resume: *resume, Callbacks: hook("stage2")}

	// Stage 1 checkpoints the whole model when it trains whole, the head alone when the head
	// trains apart from the base (cached features, or the base on the workbook's inference code).
	split := !cached.on && !bookWayOnFullModel && baseOnInference(b, ft.model)
	stage1File := "stage1.ckpt"
	if cached.on || split {
		stage1File = "stage1-head.ckpt"
	}
	if *resume {
		if err := checkStage1Checkpoint(*ckptDir, stage1File); err != nil {
			return err
		}
	}
	stage1 := training.FitOptions{Epochs: *epochs, StepsPerEpoch: *steps, ValidationData: valSeq,
		ValidationSteps: *valSteps, LineEvery: *lineEvery, Out: stdout, Checkpoint: ckpt(stage1File),
		Resume: *resume, Callbacks: hook("stage1")}
	var hist *training.History
	switch {
	case cached.on:
		hist, err = finetuneCached(b, ft, full, base, selector, trainIt, testIt, trainAug, testPre, trainSeq, cached,
			*batch, *seed, stage1, stage2, *lr2)
	case split:
		hist, err = finetuneSplit(b, ft, full, base, selector, trainSeq, stage1, stage2, *lr2)
	default:
		opts := training.FineTuneOptions{Base: base, Stage1: stage1, Stage2: stage2,
			Stage2Optimizer: training.AdamWithLearningRate(*lr2)}
		if *stage2Epochs > 0 {
			opts.Unfreeze = []training.Selector{selector}
		}
		hist, err = training.FineTune(full, trainSeq, opts)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nHistory:\n%s", hist)

	// Steps 9-11 of the exercise: the prediction for a new image, as the book computes it.
	if err := finetunePredict(full, predictPath, *size, trainIt.ClassNames()); err != nil {
		return err
	}
	// Step 12: classifier.save('car-flower-classifier.h5').
	if *out != "" {
		if err := full.Save(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Saved the model to %s (GoMLX variables and optimizer state; load it with training.Model.Load).\n", *out)
	}
	return nil
}

// unfreezeSelector turns --unfreeze into a selector: "from=LAYER" or a layer-name prefix.
func unfreezeSelector(s string) training.Selector {
	if name, ok := strings.CutPrefix(s, "from="); ok {
		return training.LayersFrom(name)
	}
	return training.LayerPrefix(s)
}

// checkUnfreeze makes sure --unfreeze selects base layers before stage 1 runs, rather than
// failing at stage 2 after hours of training.
func checkUnfreeze(ft *finetuneModel, spec string) error {
	var names []string
	for _, l := range ft.app.Layers() {
		names = append(names, l.Name)
		if l.Name == ft.baseLast {
			break
		}
	}
	from, isFrom := strings.CutPrefix(spec, "from=")
	for _, n := range names {
		if (isFrom && n == from) || (!isFrom && strings.HasPrefix(n, spec)) {
			return nil
		}
	}
	return usagef("--unfreeze %q selects no layer of %s's base (its layers run from %s to %s)", spec, ft.app.Name(), names[0], names[len(names)-1])
}

// finetuneDirs finds training_set/ and test_set/: under --data, else under $WORKBOOK_DATA,
// else in the shipped sample (40+40 training and 16+16 test images).
func finetuneDirs(flagDir string) (trainDir, testDir string, err error) {
	root, from := flagDir, "--data"
	if root == "" {
		if env := os.Getenv(datasets.DataEnv); env != "" {
			root, from = env, "$"+datasets.DataEnv
		}
	}
	if root == "" {
		if root, err = datasets.SampleDir(); err != nil {
			return "", "", err
		}
		fmt.Fprintf(stdout, "Data: the shipped sample %s (pass --data DIR or set $%s for the full data set).\n", root, datasets.DataEnv)
	} else {
		fmt.Fprintf(stdout, "Data: %s (from %s).\n", root, from)
	}
	trainDir, testDir = filepath.Join(root, "training_set"), filepath.Join(root, "test_set")
	if _, err := os.Stat(trainDir); err != nil {
		// A copy of the book's repository or archive: datasets.Locate finds the data set inside.
		if ds, lerr := datasets.Locate(root); lerr == nil {
			return ds.TrainDir, ds.TestDir, nil
		}
	}
	for _, d := range []string{trainDir, testDir} {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() {
			return "", "", fmt.Errorf("%q has no %s folder: the data folder must hold training_set/ and test_set/, each with one sub-folder per class (car/, flower/)",
				root, filepath.Base(d))
		}
	}
	return trainDir, testDir, nil
}

// checkFinetuneData refuses data Keras would train on silently but wrongly: not exactly two
// classes (binary labels would be all 0, or 2 and more), a class folder without images,
// validation classes that do not match the training ones (labels would mean different things),
// and batches larger than a whole folder.
func checkFinetuneData(train, test *datasets.DirectoryIterator, batch int) error {
	for _, it := range []*datasets.DirectoryIterator{train, test} {
		for _, c := range it.ClassNames() {
			if strings.HasPrefix(c, ".") {
				return fmt.Errorf("%q holds a hidden folder %q, which Keras (and this command) counts as a class: remove it",
					it.Directory(), c)
			}
		}
		if err := it.CheckBinary(); err != nil {
			return err
		}
		counts := make([]int, len(it.ClassNames()))
		for _, l := range it.Labels() {
			counts[l]++
		}
		for i, n := range counts {
			if n == 0 {
				return fmt.Errorf("class folder %q holds no images (files must end in .jpg, .jpeg, .png, .bmp, .ppm, .tif or .tiff)",
					filepath.Join(it.Directory(), it.ClassNames()[i]))
			}
		}
	}
	if err := datasets.CheckSameClasses(train, test); err != nil {
		return err
	}
	for _, it := range []*datasets.DirectoryIterator{train, test} {
		if batch > it.Samples() {
			return fmt.Errorf("--batch %d is larger than the %d images in %q: every step would see the whole folder; use --batch %d or less",
				batch, it.Samples(), it.Directory(), it.Samples())
		}
	}
	return nil
}

// checkReadable decodes every image once (in parallel) and names all that fail, so that a bad
// file stops the run before hours of training rather than at the batch that draws it.
func checkReadable(paths []string, target [2]int) error {
	start := time.Now()
	fmt.Fprintf(stdout, "Checking that the %d images decode...", len(paths))
	var (
		mu   sync.Mutex
		bad  []string
		next = make(chan string)
		wg   sync.WaitGroup
	)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if _, err := datasets.DefaultLoader(p, target[0], target[1]); err != nil {
					mu.Lock()
					bad = append(bad, describeImageError(p, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	if len(bad) == 0 {
		fmt.Fprintf(stdout, " ok (%.1f s).\n", time.Since(start).Seconds())
		return nil
	}
	fmt.Fprintln(stdout, " failed.")
	slices.Sort(bad)
	const show = 20
	msg := fmt.Sprintf("%d unreadable image(s); fix or remove them:", len(bad))
	for i, b := range bad {
		if i == show {
			msg += fmt.Sprintf("\n  … and %d more", len(bad)-show)
			break
		}
		msg += "\n  " + b
	}
	return errors.New(msg)
}

func describeImageError(path string, err error) string {
	s := err.Error()
	if strings.Contains(s, strconv.Quote(path)) {
		return s
	}
	return fmt.Sprintf("%q: %s", path, s)
}

// printSchedule states what the book's schedule means for this data: how many images the
// training and validation steps draw, and how many distinct images that covers (what a feature
// cache has to compute).
func printSchedule(train, test *datasets.DirectoryIterator, epochs, steps, valSteps, stage2 int) {
	trainDraws, trainDistinct := scheduleDraws(train.Samples(), train.BatchSize(), (epochs+stage2)*steps)
	valDraws, valDistinct := scheduleDraws(test.Samples(), test.BatchSize(), (epochs+stage2)*valSteps)
	fmt.Fprintf(stdout, "Schedule: %d epoch(s) × %d steps (+ %d validation steps) of batch %d: %s training and %s validation images drawn, %s + %s distinct.\n",
		epochs+stage2, steps, valSteps, train.BatchSize(), thousands(trainDraws), thousands(valDraws),
		thousands(trainDistinct), thousands(valDistinct))
}

// scheduleDraws counts the images a Keras Sequence consumer draws in `batches` consecutive
// batches over n images with the given batch size, passes continuing across epochs
// (ceil(n/batch) batches per pass, the last one short, a new permutation each pass), and how
// many distinct images they cover: all n once a pass completes; otherwise the images of the
// batches drawn so far (the permutation is a bijection, so no image repeats within a pass).
func scheduleDraws(n, batch, batches int) (draws, distinct int) {
	perPass := (n + batch - 1) / batch
	full := batches / perPass
	rest := batches % perPass
	draws = full*n + min(rest*batch, n)
	if full > 0 {
		return draws, n
	}
	return draws, min(rest*batch, n)
}

func thousands(n int) string { return applications.Thousands(n) }

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// prepareCheckpointDir creates the folder and records the run's settings; with resume, it
// insists the settings are those of the run being continued.
func prepareCheckpointDir(dir string, cfg finetuneConfig, resume bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint folder: %w", err)
	}
	path := filepath.Join(dir, "finetune.json")
	want, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	prev, err := os.ReadFile(path)
	switch {
	case err == nil && resume:
		var old finetuneConfig
		if err := json.Unmarshal(prev, &old); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if old != cfg {
			return fmt.Errorf("--resume: %s was written by a run with other settings:\n  saved: %s\n  now:   %s\nrerun with the same flags, or use another --checkpoint-dir",
				path, compactJSON(old), compactJSON(cfg))
		}
		return nil
	case err == nil && !resume:
		for _, f := range []string{"stage1.ckpt", "stage1-head.ckpt", "stage2.ckpt"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return fmt.Errorf("%s already holds a run's checkpoints: pass --resume to continue it, or choose another --checkpoint-dir", dir)
			}
		}
	case errors.Is(err, os.ErrNotExist):
		if resume {
			fmt.Fprintf(stdout, "No run to resume in %s: starting from the beginning.\n", dir)
		}
	default:
		return err
	}
	return writeFileAtomic(path, append(want, '\n'))
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// writeFileAtomic writes data to a temporary file in the same folder and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %q: %w", path, err)
	}
	return nil
}

// finetuneModel is the exercise's network and the names the two training paths need.
type finetuneModel struct {
	model    string // "vgg16" or "resnet50"
	app      *applications.Model
	head     string // the new Dense layer ("dense_1")
	baseLast string // last layer of the pretrained base (fc2, block5_pool, avg_pool...)
	features string // layer whose output a feature cache stores (the head's input)
	weights  applications.WeightsInfo
}

// featureID names the feature extractor for a FeatureCache key: model, feature layer and input
// size, e.g. "sequential_1/fc2/224x224" (the weights are keyed separately).
func (ft *finetuneModel) featureID() string {
	in := ft.app.Architecture().InputShape()
	return fmt.Sprintf("%s/%s/%dx%d", ft.app.Name(), ft.features, in[0], in[1])
}

// buildFinetuneModel builds the exercise's model: VGG16 without "predictions" (at 224×224;
// at other sizes without the top, plus Flatten), or ResNet50 without the top with average
// pooling and BatchNormalization in inference mode; all of it frozen; plus Dense(1, sigmoid).
func buildFinetuneModel(b backends.Backend, model, weightsArg string, size int, seed int64) (*finetuneModel, error) {
	spec := weightsArg
	if spec == "none" {
		spec = ""
	}
	var opts []applications.Option
	switch {
	case model == "vgg16" && size == 224:
		opts = []applications.Option{applications.Until("fc2")}
	case model == "vgg16":
		opts = []applications.Option{applications.IncludeTop(false), applications.InputShape(size, size)}
	default:
		opts = []applications.Option{applications.IncludeTop(false), applications.Pooling("avg"),
			applications.InputShape(size, size), applications.WithBatchNormMode(applications.BatchNormInference)}
	}
	opts = append(opts, applications.WithWeights(spec), applications.WithSeed(seed))
	lazy, err := applications.NewLazy(model, opts...)
	if err != nil {
		return nil, err
	}
	info, err := lazy.Weights()
	if err != nil {
		return nil, err
	}
	if info.Path != "" {
		opts = append(opts, applications.WithWeights(info.Path))
	}
	app, err := applications.New(model, append(opts, applications.WithBackend(b))...)
	if err != nil {
		return nil, err
	}
	layers := app.Layers()
	ft := &finetuneModel{model: model, app: app, baseLast: layers[len(layers)-1].Name, weights: info}
	ft.features = ft.baseLast
	if model == "vgg16" {
		app.AsSequential("sequential_1") // Keras' name for the book's keras.Sequential()
	}
	if err := app.SetTrainable(false); err != nil {
		return nil, err
	}
	if model == "vgg16" && size != 224 {
		if ft.features, err = app.AddFlatten(""); err != nil {
			return nil, err
		}
	}
	if ft.head, err = app.AddDense("", 1, "sigmoid"); err != nil {
		return nil, err
	}
	return ft, nil
}

// finetuneCached is the feature-cache path: every image through the frozen base once, the head
// trained on the stored features (in a context of its own, so its per-epoch checkpoints hold
// the head only, not the 138M base parameters), copied into the full model; stage 2, if any,
// trains the unfrozen layers on images.
func finetuneCached(b backends.Backend, ft *finetuneModel, full *training.Model, base training.Layered, selector training.Selector,
	trainIt, testIt *datasets.DirectoryIterator, trainAug, testPre datasets.ImageDataGenerator, trainSeq training.Generator,
	cached cachedFlag, batch int, seed int64, stage1, stage2 training.FitOptions, lr2 float64) (*training.History, error) {
	nTrain, nTest := trainIt.Samples(), testIt.Samples()
	copies := max(cached.copies, 1)
	fmt.Fprintf(stdout, "Cached features: %s runs once on each image (%s training image(s) × %d + %s test image(s) = %s forward passes); the head then trains on the stored %s outputs.\n",
		ft.app.Name(), thousands(nTrain), copies, thousands(nTest), thousands(nTrain*copies+nTest), ft.features)
	if cached.copies == 0 {
		fmt.Fprintln(stdout, "Trade-off: the training features are NOT augmented — Keras draws a new shear, zoom and flip every time an image is used; here every epoch sees the same unaugmented images. Pass --cached-features=K for K fixed augmented copies per image.")
	} else {
		fmt.Fprintf(stdout, "Trade-off: %d fixed augmented copies per training image (one picked at random per draw) instead of a new random shear, zoom and flip at every use, as Keras does.\n", cached.copies)
	}

	extract, err := frozenBase(b, ft, base)
	if err != nil {
		return nil, err
	}
	cache := &training.FeatureCache{
		Model:      ft.featureID(),
		Weights:    ft.weights.Digest,
		Extract:    extract,
		TargetSize: trainIt.TargetSize(),
		Preprocess: testPre,
		BatchSize:  batch,
		Out:        stdout,
	}
	start := time.Now()
	var trainX []*kernelext.Array
	if cached.copies == 0 {
		x, err := cache.Features(trainIt.Filepaths())
		if err != nil {
			return nil, err
		}
		trainX = []*kernelext.Array{x}
	} else if trainX, err = cache.Augmented(trainIt.Filepaths(), trainAug, cached.copies, seed); err != nil {
		return nil, err
	}
	testX, err := cache.Features(testIt.Filepaths())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "Features ready in %.1f s.\n", time.Since(start).Seconds())

	gTrain, err := training.NewFeatureGenerator(trainX, training.Labels(trainIt.Labels()), batch, true, uint64(seed)+1)
	if err != nil {
		return nil, err
	}
	gTest, err := training.NewFeatureGenerator([]*kernelext.Array{testX}, training.Labels(testIt.Labels()), batch, true, uint64(seed)+2)
	if err != nil {
		return nil, err
	}
	head, err := newHead(b, ft)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "Stage 1: base frozen, training the head on cached features with %s.\n", head.Optimizer())
	s1 := stage1
	s1.ValidationData = gTest
	hist, err := head.Fit(gTrain, s1)
	if err != nil {
		return hist, err
	}
	if err := adoptHead(head, full, ft); err != nil {
		return hist, err
	}
	// Stage 2 cannot use the cache: the unfrozen layers change the features.
	return finetuneStage2(full, base, selector, trainSeq, hist, stage1.Epochs, stage2, lr2, true)
}

// finetuneSplit is the book's way with the frozen base on the workbook's inference code: every
// step draws the same freshly augmented batch from the same generator as the full model would
// (the same draws in the same order; validation likewise, on the rescaled test batches), the
// base maps it to its features outside GoMLX, and only the head trains in GoMLX. That is the
// book's computation — the base is frozen, and VGG16 has neither dropout nor batch
// normalisation, so training mode changes nothing in it — to float32 rounding, without running
// the base on GoMLX's pure-Go backend. The head trains and checkpoints in a context of its own
// (as finetuneCached's); once trained it goes into the full model, which then predicts, is
// saved, and trains stage 2 on images (stage 2 changes the base, so it runs whole, in GoMLX).
func finetuneSplit(b backends.Backend, ft *finetuneModel, full *training.Model, base training.Layered, selector training.Selector,
	trainSeq training.Generator, stage1, stage2 training.FitOptions, lr2 float64) (*training.History, error) {
	extract, err := frozenBase(b, ft, base)
	if err != nil {
		return nil, err
	}
	head, err := newHead(b, ft)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "Stage 1: base frozen, training the head with %s.\n", head.Optimizer())
	s1 := stage1
	if s1.ValidationData != nil {
		s1.ValidationData = training.NewExtractGenerator(stage1.ValidationData, extract)
	}
	hist, err := head.Fit(training.NewExtractGenerator(trainSeq, extract), s1)
	if err != nil {
		return hist, err
	}
	if err := adoptHead(head, full, ft); err != nil {
		return hist, err
	}
	return finetuneStage2(full, base, selector, trainSeq, hist, stage1.Epochs, stage2, lr2, false)
}

// newHead is the exercise's head alone — Dense(1, sigmoid) under the full model's layer name —
// in a context of its own, compiled as the book compiles the whole model. Its initial weights
// are the full model's (copied, not drawn again: applications and training.Dense draw
// differently), so that every path starts from the same head.
func newHead(b backends.Backend, ft *finetuneModel) (*training.Model, error) {
	hctx := context.New()
	if n, err := copyVariables(ft.app.Context(), hctx, "/"+ft.head, true); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, fmt.Errorf("the model has no variables under /%s to start the head from", ft.head)
	}
	head, err := training.NewModel(b, hctx, ft.app.Name(), training.Dense(ft.head, 1, "sigmoid"))
	if err != nil {
		return nil, err
	}
	if err := head.Compile(training.NewAdam(), training.BinaryCrossentropy, training.Accuracy); err != nil {
		return nil, err
	}
	return head, nil
}

// adoptHead puts the trained head into the full model: its weights and the optimizer's state
// (step count and Adam's moments, which live under the same variable names in both contexts),
// with the full model compiled with the head's optimizer — what training the whole model would
// have left, so that model.save keeps the optimizer state, as Keras' does.
func adoptHead(head, full *training.Model, ft *finetuneModel) error {
	if err := full.Compile(head.Optimizer(), training.BinaryCrossentropy, training.Accuracy); err != nil {
		return err
	}
	if n, err := copyVariables(head.Context(), full.Context(), "/"+ft.head, false); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("no trained variables under /%s", ft.head)
	}
	_, err := copyVariables(head.Context(), full.Context(), training.OptimizerScope, true)
	return err
}

// finetuneStage2 is stage 2 after a head trained apart: the selected layers unfrozen, a fresh
// Adam(lr2), the full model trained on images, its epochs numbered after stage 1's. onImages
// says so in the log (after cached features); otherwise the line is the full-model path's.
func finetuneStage2(full *training.Model, base training.Layered, selector training.Selector, trainSeq training.Generator,
	hist *training.History, stage1Epochs int, stage2 training.FitOptions, lr2 float64, onImages bool) (*training.History, error) {
	if stage2.Epochs == 0 {
		return hist, nil
	}
	if err := training.Unfreeze(base, selector); err != nil {
		return hist, err
	}
	opt2 := training.AdamWithLearningRate(lr2)
	if err := full.Compile(opt2, training.BinaryCrossentropy, training.Accuracy); err != nil {
		return hist, err
	}
	if onImages {
		fmt.Fprintf(stdout, "Stage 2: %v unfrozen, training on images with %s.\n", selector, opt2)
	} else { // training.FineTune's line, as the full-model path prints it
		fmt.Fprintf(stdout, "Stage 2: %v unfrozen, training with %s.\n", []training.Selector{selector}, opt2)
	}
	s2 := stage2
	s2.InitialEpoch, s2.Epochs = stage1Epochs, stage1Epochs+stage2.Epochs
	h2, err := full.Fit(trainSeq, s2)
	return mergeHistories(hist, h2), err
}

// checkStage1Checkpoint refuses to resume a run whose stage 1 checkpoint is of the other kind:
// the whole model's (stage1.ckpt, the base computed in GoMLX) where this run trains the head
// apart (stage1-head.ckpt), or the reverse — which happens when the backend changed between
// the runs. Starting over silently would throw the finished epochs away.
func checkStage1Checkpoint(dir, want string) error {
	other := map[string]string{"stage1.ckpt": "stage1-head.ckpt", "stage1-head.ckpt": "stage1.ckpt"}[want]
	if _, err := os.Stat(filepath.Join(dir, want)); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, other)); err != nil {
		return nil
	}
	kind := map[string]string{"stage1.ckpt": "the whole model, its base computed in GoMLX",
		"stage1-head.ckpt": "the head alone, trained apart from the frozen base"}
	return fmt.Errorf("--resume: %s holds %s (%s), but this run checkpoints %s (%s): resume with the backend the run was started with ($%s)",
		dir, other, kind[other], want, kind[want], backend.EnvBackend)
}

// baseOnInference reports whether the frozen base's forward pass runs on the workbook's own
// inference code (kernelext/applications/inference) rather than in GoMLX: on GoMLX's pure-Go
// backend, which multiplies with scalar Go code, for VGG16, where the CPU has AVX2 and FMA.
// XLA backends keep GoMLX.
func baseOnInference(b backends.Backend, model string) bool {
	return model == "vgg16" && applications.EngineRuns(b, dtypes.Float32)
}

// baseExtractor is the frozen base's forward pass up to ft.features, for the feature cache and
// the book's way: on the workbook's own SIMD code where baseOnInference says so — the same
// computation, equal to float32 rounding, for a fraction of the CPU time; note is the line
// that says so — else a GoMLX model on the base's variables (note "").
func baseExtractor(b backends.Backend, ft *finetuneModel) (extract func(*kernelext.Array) (*kernelext.Array, error), note string, err error) {
	if baseOnInference(b, ft.model) {
		net, err := inference.NewVGG16(ft.app, ft.features)
		if err != nil {
			return nil, "", err
		}
		note = fmt.Sprintf("Frozen VGG16 base: its forward pass runs on the workbook's own %s code (kernelext/applications/inference) instead of GoMLX's pure-Go backend, the head trains in GoMLX: the same values to float32 rounding, %s",
			gemm.KernelName(), inferenceSpeedNote)
		return net.Predict, note, nil
	}
	extractor, err := training.NewModel(b, ft.app.Context(), ft.app.Name(), training.ApplicationBase(ft.app, ft.features))
	if err != nil {
		return nil, "", err
	}
	return extractor.Predict, "", nil
}

// frozenBase freezes the base and returns its forward pass (baseExtractor), after printing the
// line that says where it runs, if anywhere other than GoMLX: stage 1 of both head-apart paths.
func frozenBase(b backends.Backend, ft *finetuneModel, base training.Layered) (func(*kernelext.Array) (*kernelext.Array, error), error) {
	if err := training.Freeze(base); err != nil {
		return nil, err
	}
	extract, note, err := baseExtractor(b, ft)
	if err != nil {
		return nil, err
	}
	if note != "" {
		fmt.Fprintln(stdout, note)
	}
	return extract, nil
}

// inferenceSpeedNote is what BenchmarkVGG16Features (kernelext/applications/inference)
// measured, both paths in the same run at batch 8, VGG16 to fc2 at 224×224.
const inferenceSpeedNote = "for about a ninth of the CPU time (measured on a 2-core AMD EPYC with AVX2: 0.41 vs 3.8 CPU-seconds per 224×224 image)."

// copyVariables copies the variables under scope (e.g. "/dense_1") from one context to another
// and returns how many it copied. Without create they must already exist there with the same
// shape; with create, missing ones are made (trainable as in the source).
func copyVariables(from, to *context.Context, scope string, create bool) (int, error) {
	n := 0
	for v := range from.IterVariables() {
		if v.Scope() != scope && !strings.HasPrefix(v.Scope(), scope+"/") {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return n, err
		}
		clone, err := val.LocalClone()
		if err != nil {
			return n, err
		}
		dst := to.InspectVariable(v.Scope(), v.Name())
		switch {
		case dst == nil && create:
			to.InAbsPath(v.Scope()).Checked(false).VariableWithValue(v.Name(), clone).SetTrainable(v.Trainable)
		case dst == nil:
			return n, fmt.Errorf("the model has no variable %s/%s to receive the trained head", v.Scope(), v.Name())
		case !dst.Shape().Equal(val.Shape()):
			return n, fmt.Errorf("variable %s/%s has shape %s, the receiving model's %s", v.Scope(), v.Name(), val.Shape(), dst.Shape())
		default:
			if err := dst.SetValue(clone); err != nil {
				return n, err
			}
		}
		n++
	}
	return n, nil
}

// mergeHistories appends b's epochs to a (stage 2 after stage 1).
func mergeHistories(a, b *training.History) *training.History {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := &training.History{Epoch: slices.Clone(a.Epoch), Names: slices.Clone(a.Names), Value: map[string][]float64{}}
	for k, v := range a.Value {
		out.Value[k] = slices.Clone(v)
	}
	for _, n := range b.Names {
		if !slices.Contains(out.Names, n) {
			out.Names = append(out.Names, n)
		}
	}
	out.Epoch = append(out.Epoch, b.Epoch...)
	for _, n := range out.Names {
		va, vb := out.Value[n], b.Value[n]
		for len(va) < len(a.Epoch) {
			va = append(va, math.NaN())
		}
		if vb == nil {
			vb = make([]float64, len(b.Epoch))
			for i := range vb {
				vb[i] = math.NaN()
			}
		}
		out.Value[n] = append(va, vb...)
	}
	return out
}

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
	fmt.Fprintln(stdout, bookPrediction(result.Data[0], classes))

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

// bookPrediction is the book's decision: class 1 only when the sigmoid output is exactly 1.
func bookPrediction(p float32, classes []string) string {
	if p == 1 {
		return "It is a " + classes[1]
	}
	return "It is a " + classes[0]
}
