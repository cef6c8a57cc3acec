#!/usr/bin/python3
"""Writes the fine-tuning notebooks — Exercise 8.03 (04-exercise-8.03-vgg16-finetune.ipynb) and
freeze-then-unfreeze (07-freeze-then-unfreeze.ipynb) — into notebooks/ and, identical, into
solutions/ (both are worked examples, like the book's exercises).

    /usr/bin/python3 notebooks/make_finetune_notebooks.py          # write
    /usr/bin/python3 notebooks/make_finetune_notebooks.py --check  # exit 1 if a file is stale

Edit this script and run it again rather than editing the .ipynb files by hand. The measured
costs quoted in the markdown come from `go test -bench Finetune ./cmd/workbook` (see
notebooks/FINETUNING.md); update MEASURED when they change.
"""
from make_notebooks import SETUP_CELL, build, write_all

# Costs measured on the 2-core development machine (pure-Go backend), from the benchmarks in
# cmd/workbook (BenchmarkFinetune*); see notebooks/FINETUNING.md for the commands.
MEASURED = dict(
    step_s="82",            # one training step, batch 32, frozen VGG16 at 224×224, augmentation included
    image_s="2.5",          # one VGG16 forward pass to fc2 per image
    epoch_h="3.0",          # 100 steps + 30 validation steps
    total_h="30",           # the book's 10 epochs
    torch_step_s="7.5",     # PyTorch 1.13 on the same CPU, same step
    book_epoch_s="2083",    # the book's laptop, epoch 1 (its log line)
    cli_h="2.4",            # workbook finetune, the book's way, base on the inference code
    cached_h="0.7",         # workbook finetune --cached-features
)

SCHEDULE_MD = (
    "**How long this takes without a GPU.** The book's schedule is 10 epochs of 100 training steps "
    "and 30 validation steps, batches of 32 images at 224×224: 32,000 training images through "
    "VGG16 with a backward pass for the head, and 9,600 validation images. On GoMLX's pure-Go "
    "backend a training step costs about {step_s} s on a 2-core laptop CPU (about {image_s} s per "
    "image for the frozen VGG16 forward pass), so one epoch takes about {epoch_h} hours and the "
    "whole run about {total_h} hours. The book's own log shows {book_epoch_s} s for an epoch on its "
    "laptop CPU with TensorFlow. With the XLA CPU plugin or a CUDA GPU (see the backend package) "
    "it is much faster.\n\n"
    "The book's numbers are the **defaults**. To shorten the run, set environment variables before "
    "the schedule cell — in the notebook with `%env`, e.g. `%env WORKBOOK_STEPS 5`, or in the "
    "shell that starts Jupyter:\n\n"
    "| variable | the book | `WORKBOOK_QUICK=1` |\n|---|---|---|\n"
    "{rows}\n\n"
    "`WORKBOOK_QUICK=1` is what the automatic tests run: it checks that every cell works, not "
    "that the model learns. A value set explicitly wins over `WORKBOOK_QUICK`. The command "
    "`go run ./cmd/workbook finetune` runs the same exercise from a terminal, and without a GPU "
    "it is the fast way: its frozen VGG16 runs on the workbook's own AVX2 code instead of "
    "GoMLX's pure-Go backend (the same values to float32 rounding), so the book's schedule takes "
    "about {cli_h} hours on the same two cores, and about {cached_h} hours with "
    "`--cached-features`, which computes VGG16's features once per image "
    "(notebooks/FINETUNING.md).")

COMMON_NOTES = (
    "**How these Go notebooks run.** GoNB compiles and runs every cell as a new program: "
    "top-level declarations (`import`, `func`, `var`) are kept and *recomputed* in every later "
    "cell; the code after `%%` runs only in its own cell. Training must not start again in every "
    "later cell, so the training cell saves the run after every epoch (a training checkpoint, "
    "`training.FitOptions{Checkpoint: …, Resume: true}`); later cells read the finished run back "
    "from it in a fraction of a second, and an interrupted run continues after its last "
    "completed epoch. The checkpoint's name holds every setting the run depends on (the weights, "
    "the data folder, the schedule); delete the file (the training cell prints its path) to "
    "train again. With `WORKBOOK_CACHE=off` it lives in the kernel's temporary folder and "
    "lasts only until the kernel restarts. Predictions go through `kernelext/nbcache`, keyed by "
    "the checkpoint's content.\n\n"
    "**Which weights?** The book fine-tunes the published ImageNet VGG16, which the model cell "
    "downloads once into Keras' own cache (`~/.keras/models`, 528 MB) like `VGG16()` does. "
    "Where there is no network access, `$WORKBOOK_WEIGHTS_DIR` can point at stand-in checkpoints "
    "of the same names (the tests use seeded random ones); the model cell then says so, and the "
    "accuracies below mean nothing — a random network's features barely separate cars from "
    "flowers.\n\n"
    "**Which data?** The shipped sample (40 cars + 40 flowers for training, 16 + 16 for testing, "
    "from the book's data set) unless `$WORKBOOK_DATA` points at the full data set (a folder "
    "with `training_set/` and `test_set/`: 10,764 and 2,674 images). `go run ./cmd/workbook "
    "help finetune` explains how to get it.")


def knob_code(knobs):
    lines = [
        "// knob is the value of the environment variable name, if set; otherwise quick when",
        "// WORKBOOK_QUICK=1 and the book's value when not.",
        "func knob(name string, book, quick int) int {",
        "\tif s := os.Getenv(name); s != \"\" {",
        "\t\tn, err := strconv.Atoi(s)",
        "\t\tif err != nil || n < 1 {",
        "\t\t\tpanic(fmt.Sprintf(\"%s=%q: want a positive whole number\", name, s))",
        "\t\t}",
        "\t\treturn n",
        "\t}",
        "\tif os.Getenv(\"WORKBOOK_QUICK\") == \"1\" {",
        "\t\treturn quick",
        "\t}",
        "\treturn book",
        "}",
        "",
        "// must stops the cell on an error, with the error's text.",
        "func must(err error) {",
        "\tif err != nil {",
        "\t\tpanic(err)",
        "\t}",
        "}",
        "",
        "var (",
    ]
    width = max(len(k[0]) for k in knobs)
    for name, env, book, quick, _ in knobs:
        lines.append(f"\t{name.ljust(width)} = knob(\"{env}\", {book}, {quick})")
    lines += [")", "", "%%"]
    fmts = " ".join(f"{label}=%d" for _, _, _, _, label in knobs)
    lines.append(f"fmt.Printf(\"{fmts}\\n\", {', '.join(k[0] for k in knobs)})")
    return "\n".join(lines)


def knob_rows(knobs):
    return "\n".join(f"| `{env}` ({label}) | {book} | {quick} |" for _, env, book, quick, label in knobs)


IMPORTS = '''import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/kernelext/training"
)'''

IMPORTS_MD = (
    "**Step 1: the libraries.** The book imports NumPy, Keras and TensorFlow's `random`:\n\n"
    "```python\nimport numpy as np\nimport keras\nfrom keras.layers import Dense\n"
    "from tensorflow import random\n```\n\n"
    "In Go, `applications` holds VGG16, `training` Keras' `compile`/`fit_generator`/`save` "
    "(Adam, binary cross-entropy, accuracy, the progress bar, checkpoints), `datasets` the "
    "`ImageDataGenerator` and `flow_from_directory`, `kernelext` the image helpers "
    "(`load_img`, `img_to_array`, `expand_dims`) and `nbcache` the on-disk cache that keeps "
    "results across cells. This cell only declares the imports.")

MODEL_MD = (
    "**Step 2–3: VGG16 and its summary.** Keras: `vgg_model = keras.applications.vgg16.VGG16()` "
    "then `vgg_model.summary()`. `applications.MustLazyVGG16()` describes the same model without "
    "reading its 528 MB of weights (every cell is a new program: reading them here would cost "
    "that in every later cell too); its summary is Keras' text, line for line. The cell also "
    "prints which weights the model uses.")

MODEL_CODE = '''%%
vggModel := applications.MustLazyVGG16()
fmt.Println(vggModel.MustWeights())
fmt.Print(vggModel.Summary())'''

REMOVE_MD = (
    "**Step 4–5: remove the last layer.** The book copies every layer except the last "
    "(`predictions`, the 1000-way softmax) into a new `keras.Sequential()` and prints its "
    "summary:\n\n```python\nlast_layer = str(vgg_model.layers[-1])\nnp.random.seed(42)\n"
    "random.set_seed(42)\nclassifier = keras.Sequential()\nfor layer in vgg_model.layers:\n"
    "    if str(layer) != last_layer:\n        classifier.add(layer)\nclassifier.summary()\n```\n\n"
    "In Go, `applications.Until(\"fc2\")` keeps the layers up to `fc2`, and `AsSequential` "
    "gives the model the name and the summary layout Keras gives a `Sequential` (no "
    "`InputLayer` row). `classifierLayers` works on the layer table only (no weights), which is "
    "all a summary needs. The seeds of the book appear further down: `WithSeed(42)` fixes the "
    "new layer's initial weights.")

REMOVE_CODE = '''// classifierLayers is the classifier of step 4 as a layer table, without weights: VGG16 up to
// fc2 (the book's loop drops "predictions"), named and printed as a keras.Sequential.
func classifierLayers() *applications.Architecture {
	layers := applications.MustLazyVGG16(applications.Until("fc2")).Architecture().Clone()
	layers.AsSequential("sequential_1")
	return layers
}

%%
fmt.Print(classifierLayers().Summary())'''

FREEZE_MD = (
    "**Step 6: freeze.** Keras: `for layer in classifier.layers: layer.trainable = False`. "
    "`SetTrainable(false)` with no layer names does it for every layer; the summary now counts "
    "all 134,260,544 parameters as non-trainable.")

FREEZE_CODE = '''%%
frozen := classifierLayers()
must(frozen.SetTrainable(false))
fmt.Print(frozen.Summary())'''

DENSE_MD = (
    "**Step 7: the new output layer.** Keras: `classifier.add(Dense(1, activation='sigmoid'))` "
    "and `classifier.summary()`. One unit with a sigmoid gives the probability of class 1 "
    "(flower); its 4,097 weights (4,096 inputs from `fc2` plus the bias) are the only "
    "trainable ones. Keras names it `dense_1`.")

DENSE_CODE = '''%%
withHead := classifierLayers()
must(withHead.SetTrainable(false))
_, err := withHead.AddDense("", 1, "sigmoid")
must(err)
fmt.Print(withHead.Summary())'''

COMPILE_MD = (
    "**Step 8a: the trainable model, compiled.** Keras: `classifier.compile(optimizer='adam', "
    "loss='binary_crossentropy', metrics=['accuracy'])`. `newClassifier` builds steps 4–7 on "
    "the real VGG16 — with its weights — and compiles it: `training.NewAdam()` is Keras' Adam "
    "with its defaults (learning rate 0.001, ε = 1e-7), `training.BinaryCrossentropy` and "
    "`training.Accuracy` are Keras' loss and metric. Later cells call it when they need the "
    "model; this one only shows the optimizer.")

COMPILE_CODE = '''// newClassifier is steps 4–8 on the real VGG16: the pretrained layers up to fc2, frozen, plus
// Dense(1, sigmoid) initialised with seed 42, compiled with Adam and binary cross-entropy. It
// returns the VGG16 (for freezing and unfreezing by layer name) and the trainable model.
func newClassifier() (*applications.Model, *training.Model) {
	b := backend.Must()
	vgg := applications.MustVGG16(applications.Until("fc2"), applications.WithSeed(42), applications.WithBackend(b))
	vgg.AsSequential("sequential_1")
	must(vgg.SetTrainable(false))
	_, err := vgg.AddDense("", 1, "sigmoid")
	must(err)
	classifier := training.MustNewModel(b, vgg.Context(), "sequential_1", vgg.Apply)
	classifier.MustCompile(training.NewAdam(), training.BinaryCrossentropy, training.Accuracy)
	return vgg, classifier
}

%%
fmt.Println("optimizer:", training.NewAdam())
fmt.Println("loss:", training.BinaryCrossentropy.Name, "- metrics:", training.Accuracy.Name)'''

GENERATORS_MD = (
    "**Step 8b: the data generators.** Keras:\n\n```python\n"
    "generate_train_data = ImageDataGenerator(rescale = 1./255, shear_range = 0.2,\n"
    "                                         zoom_range = 0.2, horizontal_flip = True)\n"
    "generate_test_data = ImageDataGenerator(rescale =1./255)\n"
    "training_dataset = generate_train_data.flow_from_directory('../Data/dataset/training_set',\n"
    "    target_size = (224, 224), batch_size = 32, class_mode = 'binary')\n"
    "test_datasetset = generate_test_data.flow_from_directory('../Data/dataset/test_set',\n"
    "    target_size = (224, 224), batch_size = 32, class_mode = 'binary')\n```\n\n"
    "`datasets.ImageDataGenerator` draws the same random shears, zooms and flips as Keras, "
    "from NumPy's generator reimplemented bit for bit; `datasets.Zoom(0.2)` is Keras' "
    "`zoom_range=0.2` (factors between 0.8 and 1.2). The training images are augmented anew "
    "every time they are drawn, the test images only rescaled. `flow_from_directory` prints "
    "`Found N images belonging to 2 classes.`; the classes are the sub-folders in sorted order, "
    "so `car` is 0 and `flower` is 1.\n\n"
    "**Seeds.** Step 4 of the book calls `np.random.seed(42)`, and Keras' generators shuffle and "
    "augment with NumPy's generator: the book's intent is a repeatable run. "
    "`Seed: datasets.Seed(42)` gives each generator that seed (Keras' `seed=42`), so every run of "
    "this notebook — and the reference run the instructors' grader makes — draws the same "
    "batches in the same order.")

GENERATORS_CODE = '''// dataDir is the folder holding training_set/ and test_set/: $WORKBOOK_DATA (the full data
// set) if set, otherwise the sample shipped with the workbook.
func dataDir() string {
	if d := os.Getenv("WORKBOOK_DATA"); d != "" {
		return d
	}
	return datasets.MustSampleDir()
}

// generators are the book's training and test generators, with the batch size of the schedule.
func generators() (trainingDataset, testDataset *datasets.DirectoryIterator) {
	generateTrainData := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2,
		ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
	generateTestData := datasets.ImageDataGenerator{Rescale: 1. / 255}
	flow := datasets.FlowOptions{TargetSize: [2]int{224, 224}, BatchSize: batch, ClassMode: datasets.Binary,
		Seed: datasets.Seed(42)}
	trainingDataset = generateTrainData.MustFlowFromDirectory(filepath.Join(dataDir(), "training_set"), flow)
	testDataset = generateTestData.MustFlowFromDirectory(filepath.Join(dataDir(), "test_set"), flow)
	must(datasets.CheckSameClasses(trainingDataset, testDataset))
	must(trainingDataset.CheckBinary())
	return trainingDataset, testDataset
}

%%
trainingDataset, testDataset := generators()
fmt.Println("class_indices:", trainingDataset.ClassIndices())
trainingDataset.Close()
testDataset.Close()'''

CHECKPOINT_FUNC = '''// checkpointFile is where a training run is saved after every epoch. Its name holds everything
// the run depends on — the exercise (and a version to bump when the code changes), the weights'
// digest, the data folder and the schedule — so a change of any of them trains anew. It lives in
// the workbook's cache folder ($WORKBOOK_CHECKPOINT_DIR overrides it), or in the kernel's
// temporary folder when WORKBOOK_CACHE=off.
func checkpointFile(run string, schedule ...int) string {
	dir := os.Getenv("WORKBOOK_CHECKPOINT_DIR")
	if dir == "" && !nbcache.Enabled() {
		dir = filepath.Join(os.Getenv("GONB_TMP_DIR"), "checkpoints")
	}
	if dir == "" {
		cache, err := os.UserCacheDir()
		must(err)
		dir = filepath.Join(cache, "transfer-learning-go", "checkpoints")
	}
	must(os.MkdirAll(dir, 0o755))
	weights := applications.MustLazyVGG16(applications.Until("fc2")).MustWeights().Digest
	name := fmt.Sprintf("%s-%.12s-%.8s", run, weights, nbcache.HashBytes([]byte(dataDir())))
	for _, n := range schedule {
		name += fmt.Sprintf("-%d", n)
	}
	return filepath.Join(dir, name+".ckpt")
}

// finished returns the history saved in a checkpoint that completed epochs epochs, or nil.
// It reads the file's header only, which takes milliseconds even for VGG16's 540 MB.
func finished(path string, epochs int) *training.History {
	info, err := training.ReadCheckpointInfo(path)
	if err != nil || info.EpochsDone < epochs {
		return nil
	}
	return info.History
}'''

FIT_MD = (
    "**Step 8c: fit.** Keras:\n\n```python\nclassifier.fit_generator(training_dataset, "
    "steps_per_epoch = 100, epochs = 10,\n                         validation_data = "
    "test_datasetset, validation_steps = 30, shuffle=False)\n```\n\n"
    "`Fit` is `fit_generator`: `training.NewSequenceGenerator(it, false)` feeds the iterator the "
    "way Keras' enqueuer feeds a `Sequence` with `shuffle=False`, and the log is Keras' progress "
    "bar, value for value (`val_loss` is, as in Keras 2.3, the loss of the last validation batch "
    "only). With a sample of 80 training images a \"pass\" is 3 batches, so 100 steps go "
    "through it 33 times per epoch; validation repeats the 32 test images.\n\n"
    "`history` is what `fit_generator` returns, Keras' `History`: `history.Get(\"val_accuracy\")` "
    "is `history.history['val_accuracy']`. The book's run reaches val_accuracy 0.8646 after the "
    "first epoch and 0.9365 after the tenth, with the ImageNet weights and the full data set.\n\n"
    "The run is saved after every epoch, so this cell trains once: run again (or any later cell) "
    "reads the finished run back.")

FIT_CODE = CHECKPOINT_FUNC + '''

// trainClassifier runs step 8's fit_generator once and returns its history; a finished run is
// read back from its checkpoint, an interrupted one continues after its last saved epoch.
func trainClassifier() *training.History {
	path := checkpointFile("exercise-8.03-v2", epochs, steps, valSteps, batch)
	if h := finished(path, epochs); h != nil {
		return h
	}
	fmt.Println("Training; the run is saved after every epoch to", path)
	_, classifier := newClassifier()
	trainingDataset, testDataset := generators()
	defer trainingDataset.Close()
	defer testDataset.Close()
	return classifier.MustFit(training.NewSequenceGenerator(trainingDataset, false), training.FitOptions{
		Epochs: epochs, StepsPerEpoch: steps,
		ValidationData: training.NewSequenceGenerator(testDataset, false), ValidationSteps: valSteps,
		Checkpoint: path, Resume: true})
}

var history = trainClassifier()

%%
fmt.Print(history)
fmt.Printf("val_accuracy after epoch 1: %.4f (the book: 0.8646 with the ImageNet weights)\\n", history.Get("val_accuracy")[0])
history.Display()'''

PREDICT_MD = (
    "**Steps 9–11: predict a new image.** Keras:\n\n```python\n"
    "new_image = image.load_img('../Data/Prediction/test_image_2.jpg', target_size = (224, 224))\n"
    "new_image = image.img_to_array(new_image)\nnew_image = np.expand_dims(new_image, axis = 0)\n"
    "result = classifier.predict(new_image)\ntraining_set.class_indices\n"
    "if result[0][0] == 1:\n    prediction = 'It is a flower'\nelse:\n    prediction = 'It is a car'\n"
    "print(prediction)\n```\n\n"
    "The book prints `It is a car`. Two details of this code matter, and the Go cell keeps both, "
    "to reproduce the book:\n\n"
    "- **No rescaling.** The model was trained on pixels divided by 255 (the generators' "
    "`rescale`), but `new_image` holds the raw values 0–255. The input is 255 times larger than "
    "anything seen in training, so the sigmoid is usually pushed to one of its ends: the output "
    "is often exactly `0.` or `1.` in float32, and the answer says more about the network's "
    "response to very bright inputs than about the photo.\n"
    "- **`== 1`, not `> 0.5`.** Only an output of exactly 1.0 counts as a flower; 0.99 is a car. "
    "With the saturation above this often works out, but it is not a threshold.\n\n"
    "The correct prediction divides by 255 first and compares with 0.5; the cell prints that one "
    "too, for comparison. `result` and `prediction` are the book's. `result` is computed once "
    "and then read from the on-disk cache (keyed by the checkpoint's content and the image).")

PREDICT_FUNCS = '''// testImage is steps 9–10: test_image_2.jpg at 224×224 as a batch of one, pixel values 0–255.
func testImage() *kernelext.Array {
	path := filepath.Join(datasets.MustPredictionDir(), "test_image_2.jpg")
	newImage := kernelext.MustLoadImg(path, kernelext.TargetSize(224, 224))
	return kernelext.ExpandDims(kernelext.ImgToArray(newImage), 0)
}

// predictWith is classifier.predict(x) with the weights saved in checkpoint, read from the
// on-disk cache when this prediction was made before.
func predictWith(checkpoint string, x *kernelext.Array) *kernelext.Array {
	key := "finetune/predict/v1/" + nbcache.MustFileHash(checkpoint) + "/" + nbcache.HashFloat32s(x.Data)
	data := nbcache.MustCached(key, func() ([]float32, error) {
		_, classifier := newClassifier()
		classifier.MustLoad(checkpoint)
		return classifier.MustPredict(x).Data, nil
	})
	return &kernelext.Array{Shape: []int{1, 1}, Data: data}
}

// rescaled is x divided by 255, as the generators prepared the training images.
func rescaled(x *kernelext.Array) *kernelext.Array {
	y := x.Clone()
	for i := range y.Data {
		y.Data[i] *= float32(1. / 255)
	}
	return y
}

// bookPrediction is the book's decision: a flower only when the output is exactly 1.
func bookPrediction(result *kernelext.Array) string {
	if result.Data[0] == 1 {
		return "It is a flower"
	}
	return "It is a car"
}'''

PREDICT_CODE = PREDICT_FUNCS + '''

var result = predictWith(checkpointFile("exercise-8.03-v2", epochs, steps, valSteps, batch), testImage())
var prediction = bookPrediction(result)

%%
fmt.Println(result)
fmt.Println(prediction)
p := predictWith(checkpointFile("exercise-8.03-v2", epochs, steps, valSteps, batch), rescaled(testImage())).Data[0]
fmt.Printf("rescaled by 1/255 as in training: %.4f, i.e. %s at the threshold 0.5\\n", p, map[bool]string{false: "car", true: "flower"}[p > 0.5])'''

SAVE_MD = (
    "**Step 12: save the model.** Keras: `classifier.save('car-flower-classifier.h5')` — the "
    "weights, the optimizer state and the training configuration in one file. `MustSave` writes "
    "the same content (every variable, frozen ones included, Adam's moments and step count) in "
    "the workbook's checkpoint format (not HDF5), atomically: a temporary file renamed into "
    "place. `training.Model.MustLoad` reads it back into a model built by `newClassifier`. "
    "`$WORKBOOK_MODEL_FILE` changes where it goes (the tests write it to a temporary folder).")

SAVE_CODE = '''// modelFile is where step 12 saves the model: the book's file name (with the workbook's own
// extension) in the notebook's folder, or $WORKBOOK_MODEL_FILE.
func modelFile(name string) string {
	if f := os.Getenv("WORKBOOK_MODEL_FILE"); f != "" {
		return f
	}
	return name
}

%%
_, classifier := newClassifier()
classifier.MustLoad(checkpointFile("exercise-8.03-v2", epochs, steps, valSteps, batch))
classifier.MustSave(modelFile("car-flower-classifier.ckpt"))
fmt.Println("saved", modelFile("car-flower-classifier.ckpt"))'''

CHECK_MD_803 = (
    "**Check your work.** `check.Exercise803` runs the visible checks your instructor's grader "
    "runs on `history`, `result` and `prediction` — the variables the grader reads — and says "
    "what to fix when one fails. The checks that compare with a reference training run (the "
    "first epoch's `val_accuracy` to one significant digit, as the book's own test does, and the "
    "prediction) are left to the grader: that run costs as long as yours.")

CHECK_CODE_803 = '''import "github.com/transfer-learning-go/workbook/solutions/check"

%%
check.Exercise803(history, result, prediction)'''

OUTRO_803 = (
    "**What the book gets.** With the ImageNet weights and the full data set, the book's run "
    "reaches val_accuracy 0.8646 after one epoch and 0.9365 after ten (its log line shows "
    "`loss: 0.5513 - acc: 0.7112 - val_loss: 0.3352 - val_acc: 0.8539` for one of them), and "
    "prints `It is a car`. Only the new 4,097 weights were trained: everything VGG16 learned on "
    "ImageNet is reused as it is. Notebook 07 continues with the next step of the recipe: "
    "unfreezing VGG16's last convolution block and training on with a small learning rate.")

KNOBS_803 = [
    ("epochs", "WORKBOOK_EPOCHS", 10, 1, "epochs"),
    ("steps", "WORKBOOK_STEPS", 100, 2, "steps_per_epoch"),
    ("valSteps", "WORKBOOK_VAL_STEPS", 30, 1, "validation_steps"),
    ("batch", "WORKBOOK_BATCH", 32, 2, "batch_size"),
]


def intro_803():
    return (
        "# Exercise 8.03: Fine-tuning the VGG16 model\n\n"
        "VGG16 learned to tell 1000 ImageNet classes apart. Here we keep everything it learned, "
        "drop its 1000-way output layer, freeze the rest, and put a new output layer on top — "
        "one sigmoid unit — that we train to tell **cars from flowers**. Only that layer's 4,097 "
        "weights are trained; the 134 million pretrained ones stay as they are. Then the model "
        "classifies a new photo, `test_image_2.jpg`, and is saved.\n\n"
        "Every step is the Go twin of one Keras call of the book; the markdown before each cell "
        "quotes the Python code.\n\n"
        + SCHEDULE_MD.format(rows=knob_rows(KNOBS_803), **MEASURED) + "\n\n" + COMMON_NOTES)


def schedule_md():
    return ("**The schedule.** The cell reads the knobs described at the top (the book's values "
            "unless an environment variable says otherwise) and prints them. The functions it "
            "declares are used by the later cells.")


def cells_803():
    return [
        ("md", intro_803()),
        ("md", "Run the setup cell first (and again after a kernel restart). It points this "
               "notebook's Go module at the workbook checkout it sits in, so the cells use the "
               "checkout's packages and its pinned GoMLX version."),
        ("code", SETUP_CELL),
        ("md", IMPORTS_MD), ("code", IMPORTS),
        ("md", schedule_md()), ("code", knob_code(KNOBS_803)),
        ("md", MODEL_MD), ("code", MODEL_CODE),
        ("md", REMOVE_MD), ("code", REMOVE_CODE),
        ("md", FREEZE_MD), ("code", FREEZE_CODE),
        ("md", DENSE_MD), ("code", DENSE_CODE),
        ("md", COMPILE_MD), ("code", COMPILE_CODE),
        ("md", GENERATORS_MD), ("code", GENERATORS_CODE),
        ("md", FIT_MD), ("code", FIT_CODE),
        ("md", PREDICT_MD), ("code", PREDICT_CODE),
        ("md", SAVE_MD), ("code", SAVE_CODE),
        ("md", CHECK_MD_803), ("code", CHECK_CODE_803),
        ("md", OUTRO_803),
    ]


# --- 07: freeze, then unfreeze -------------------------------------------------------------

KNOBS_FT = [
    ("epochs", "WORKBOOK_EPOCHS", 10, 1, "stage-1 epochs"),
    ("stage2Epochs", "WORKBOOK_STAGE2_EPOCHS", 5, 1, "stage-2 epochs"),
    ("steps", "WORKBOOK_STEPS", 100, 2, "steps_per_epoch"),
    ("valSteps", "WORKBOOK_VAL_STEPS", 30, 1, "validation_steps"),
    ("batch", "WORKBOOK_BATCH", 32, 2, "batch_size"),
]


def intro_ft():
    return (
        "# Freeze, then unfreeze: fine-tuning VGG16's top block\n\n"
        "Exercise 8.03 trains a new output layer on a frozen VGG16. The usual next step — the "
        "recipe of the Keras documentation and of the current Keras transfer-learning guide — is "
        "to **unfreeze the top of the pretrained network** and train on, so its most specific "
        "features adapt to cars and flowers:\n\n"
        "1. **Stage 1** — base frozen, train the new head (Exercise 8.03 exactly, with Adam's "
        "default learning rate 0.001).\n"
        "2. **Stage 2** — make the last convolution block (`block5_conv1` … `block5_pool`) "
        "trainable, **compile again** (in Keras a change of `trainable` takes effect at the next "
        "`compile()`), and train on with a **very small learning rate**, `Adam(1e-5)`.\n\n"
        "Why in this order? A freshly initialised head produces large, random gradients; "
        "unfrozen pretrained layers would be pulled far from what they learned before the head "
        "makes sense. Once the head is trained, the small learning rate adjusts the top block "
        "instead of overwriting it. Blocks 1–4 (edges, textures, parts) stay frozen: they are "
        "generic and their gradients would cost most of the compute. In this model `fc1` and "
        "`fc2` sit between block 5 and the head; they stay frozen as well (select them too "
        "with `training.LayersFrom(\"block5_conv1\")`).\n\n"
        "`training.FineTune` runs both stages: it freezes the base, compiles with Adam, fits; "
        "then unfreezes the selected layers, compiles with a fresh `Adam(1e-5)` and fits again, "
        "numbering the epochs on. Stage 1 is Exercise 8.03's run: when notebook 04 ran with the "
        "same schedule, its saved run is reused here.\n\n"
        "**Cost.** Stage 2 also back-propagates through block 5 (a small part of VGG16's "
        "compute at 14×14 pixels), so its steps cost a little more than stage 1's. "
        + SCHEDULE_MD.format(rows=knob_rows(KNOBS_FT), **MEASURED).split("\n\n", 1)[1]
        + "\n\n" + COMMON_NOTES)


FT_BUILD_MD = (
    "**The model, the data, the summaries.** The same functions as in Exercise 8.03: "
    "`newClassifier` builds VGG16 up to `fc2`, frozen, plus `Dense(1, sigmoid)`, compiled with "
    "Adam; `generators` are the book's. The summaries show the trainable parameters in each "
    "stage: 4,097 (the head) in stage 1; in stage 2 also block 5's three convolutions, "
    "7,079,424 more.")

FT_BUILD_CODE = COMPILE_CODE.split("\n\n%%")[0] + "\n\n" + GENERATORS_CODE.split("\n\n%%")[0] + '''

// stageLayers is the classifier's layer table (no weights) with the trainable flags of a stage.
func stageLayers(stage int) *applications.Architecture {
	layers := applications.MustLazyVGG16(applications.Until("fc2")).Architecture().Clone()
	layers.AsSequential("sequential_1")
	must(layers.SetTrainable(false))
	_, err := layers.AddDense("", 1, "sigmoid")
	must(err)
	if stage == 2 {
		must(layers.SetTrainable(true, "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool"))
	}
	return layers
}

%%
fmt.Println(applications.MustLazyVGG16().MustWeights())
fmt.Println("Stage 1:")
fmt.Print(stageLayers(1).Summary())
fmt.Println("Stage 2:")
fmt.Print(stageLayers(2).Summary())'''

FT_FIT_MD = (
    "**Both stages.** `training.FineTune(classifier, train, FineTuneOptions{...})` with\n\n"
    "- `Base: training.ApplicationLayers(vgg, training.LayersUntil(\"fc2\"))` — the pretrained "
    "layers (everything but the new head), which stage 1 freezes;\n"
    "- `Unfreeze: training.LayerPrefix(\"block5_\")` — what stage 2 trains (with the head);\n"
    "- `Stage2Optimizer` left nil: `Adam(learning_rate=1e-05)`, a new optimizer, as Keras' "
    "recompile creates;\n"
    "- each stage's `FitOptions` with its own checkpoint, so the cell trains once and an "
    "interrupted run resumes.\n\n"
    "The Keras equivalent:\n\n```python\n# stage 1: Exercise 8.03\nfor layer in classifier.layers[:-1]:\n"
    "    layer.trainable = False\nclassifier.compile(optimizer='adam', loss='binary_crossentropy', "
    "metrics=['accuracy'])\nclassifier.fit_generator(training_dataset, steps_per_epoch=100, epochs=10, ...)\n"
    "# stage 2\nfor layer in classifier.layers:\n    if layer.name.startswith('block5_'):\n"
    "        layer.trainable = True\nclassifier.compile(optimizer=keras.optimizers.Adam(1e-5), "
    "loss='binary_crossentropy', metrics=['accuracy'])\nclassifier.fit_generator(training_dataset, "
    "steps_per_epoch=100, initial_epoch=10, epochs=15, ...)\n```\n\n"
    "`history` holds both stages, epochs numbered on (stage 2's start at 11).")

FT_FIT_CODE = CHECKPOINT_FUNC + '''

// joinHistories appends the epochs of b to those of a (stage 2 after stage 1).
func joinHistories(a, b *training.History) *training.History {
	out := &training.History{Epoch: append(append([]int{}, a.Epoch...), b.Epoch...), Names: a.Names,
		Value: map[string][]float64{}}
	for _, n := range a.Names {
		out.Value[n] = append(append([]float64{}, a.Value[n]...), b.Value[n]...)
	}
	return out
}

// stage1File and stage2File are the two stages' checkpoints; stage 1 is Exercise 8.03's run.
func stage1File() string { return checkpointFile("exercise-8.03-v2", epochs, steps, valSteps, batch) }
func stage2File() string {
	return checkpointFile("finetune-block5-v1", epochs, stage2Epochs, steps, valSteps, batch)
}

// fineTune runs both stages once and returns their history; finished stages are read back from
// their checkpoints, an interrupted one continues after its last saved epoch.
func fineTune() *training.History {
	if h1 := finished(stage1File(), epochs); h1 != nil {
		if h2 := finished(stage2File(), epochs+stage2Epochs); h2 != nil {
			return joinHistories(h1, h2)
		}
	}
	fmt.Println("Training; the stages are saved after every epoch to", stage1File(), "and", stage2File())
	vgg, classifier := newClassifier()
	trainingDataset, testDataset := generators()
	defer trainingDataset.Close()
	defer testDataset.Close()
	train := training.NewSequenceGenerator(trainingDataset, false)
	val := training.NewSequenceGenerator(testDataset, false)
	h, err := training.FineTune(classifier, train, training.FineTuneOptions{
		Base:     training.ApplicationLayers(vgg, training.LayersUntil("fc2")),
		Unfreeze: []training.Selector{training.LayerPrefix("block5_")},
		Stage1: training.FitOptions{Epochs: epochs, StepsPerEpoch: steps, ValidationData: val,
			ValidationSteps: valSteps, Checkpoint: stage1File(), Resume: true},
		Stage2: training.FitOptions{Epochs: stage2Epochs, StepsPerEpoch: steps, ValidationData: val,
			ValidationSteps: valSteps, Checkpoint: stage2File(), Resume: true},
	})
	must(err)
	return h
}

var history = fineTune()

%%
fmt.Print(history)
fmt.Printf("val_accuracy: %.4f after stage 1, %.4f after stage 2\\n",
	history.Get("val_accuracy")[epochs-1], history.Last("val_accuracy"))
history.Display()'''

FT_CHECK_MD = (
    "**What stage 2 changed.** Reading both checkpoints, the cell compares every layer's "
    "weights after stage 1 and after stage 2, byte for byte. Only the trainable ones may "
    "differ: block 5's convolutions and the head. Blocks 1–4 and `fc1`/`fc2` are identical "
    "to the bit — a frozen layer is not touched at all, not merely updated by zero.")

FT_CHECK_CODE = '''// layerWeights loads a checkpoint into a fresh classifier and returns each variable's values.
func layerWeights(checkpoint string) map[string][]float32 {
	vgg, classifier := newClassifier()
	classifier.MustLoad(checkpoint)
	out := map[string][]float32{}
	for _, l := range vgg.Layers() {
		for _, w := range l.Weights {
			v := vgg.Context().InspectVariable("/"+l.Name, w.Key)
			if v == nil {
				continue
			}
			data := make([]float32, w.Size())
			must(v.MustValue().ConstFlatData(func(flat any) { copy(data, flat.([]float32)) }))
			out[l.Name+"/"+w.Key] = data
		}
	}
	return out
}

%%
before, after := layerWeights(stage1File()), layerWeights(stage2File())
for _, l := range stageLayers(1).Layers {
	for _, w := range l.Weights {
		a, b := before[l.Name+"/"+w.Key], after[l.Name+"/"+w.Key]
		changed := 0
		for i := range a {
			if a[i] != b[i] {
				changed++
			}
		}
		fmt.Printf("%-22s %-7s %10d values, %10d changed\\n", l.Name, w.Key, len(a), changed)
	}
}'''

FT_PREDICT_MD = (
    "**Predict and save.** As in Exercise 8.03 (steps 9–12), with the fine-tuned weights: "
    "`result` is the book's computation (pixel values 0–255, no rescale, \"flower\" only when "
    "the output is exactly 1 — see notebook 04 for why that is fragile), followed by the "
    "rescaled prediction for comparison; then the model is saved.")

FT_PREDICT_CODE = PREDICT_FUNCS + '''

// modelFile is where the model is saved, or $WORKBOOK_MODEL_FILE.
func modelFile(name string) string {
	if f := os.Getenv("WORKBOOK_MODEL_FILE"); f != "" {
		return f
	}
	return name
}

var result = predictWith(stage2File(), testImage())
var prediction = bookPrediction(result)

%%
fmt.Println(result)
fmt.Println(prediction)
p := predictWith(stage2File(), rescaled(testImage())).Data[0]
fmt.Printf("rescaled by 1/255 as in training: %.4f, i.e. %s at the threshold 0.5\\n", p, map[bool]string{false: "car", true: "flower"}[p > 0.5])
_, classifier := newClassifier()
classifier.MustLoad(stage2File())
classifier.MustSave(modelFile("car-flower-classifier-finetuned.ckpt"))
fmt.Println("saved", modelFile("car-flower-classifier-finetuned.ckpt"))'''

OUTRO_FT = (
    "**What to expect.** With the ImageNet weights, stage 2 typically adds a few points of "
    "validation accuracy over the frozen-base result, and the training loss keeps falling; with "
    "too large a learning rate (try `training.AdamWithLearningRate(1e-3)` as `Stage2Optimizer`) "
    "the validation accuracy drops in the first stage-2 epoch as the pretrained features are "
    "disturbed. For ResNet50 the same recipe needs its BatchNormalization layers kept in "
    "inference mode (`applications.WithBatchNormMode(applications.BatchNormInference)`) and "
    "`training.LayersFrom(\"res5a_branch2a\")` as the unfrozen part; `go run ./cmd/workbook "
    "finetune --model resnet50 --stage2-epochs 2` does that.")


def cells_ft():
    return [
        ("md", intro_ft()),
        ("md", "Run the setup cell first (and again after a kernel restart)."),
        ("code", SETUP_CELL),
        ("md", "**The libraries** — the same as in Exercise 8.03."), ("code", IMPORTS),
        ("md", schedule_md()), ("code", knob_code(KNOBS_FT)),
        ("md", FT_BUILD_MD), ("code", FT_BUILD_CODE),
        ("md", FT_FIT_MD), ("code", FT_FIT_CODE),
        ("md", FT_CHECK_MD), ("code", FT_CHECK_CODE),
        ("md", FT_PREDICT_MD), ("code", FT_PREDICT_CODE),
        ("md", OUTRO_FT),
    ]


NOTEBOOKS = [
    ("04-exercise-8.03-vgg16-finetune.ipynb", cells_803),
    ("07-freeze-then-unfreeze.ipynb", cells_ft),
]


def outputs():
    out = []
    for name, cells in NOTEBOOKS:
        text = build(cells(), name)
        out += [("notebooks/" + name, text), ("solutions/" + name, text)]
    return out


def main():
    write_all(outputs(), "make_finetune_notebooks.py")


if __name__ == "__main__":
    main()
