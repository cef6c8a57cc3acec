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
    step_s="82",            # one training step of the whole model in GoMLX's pure-Go backend, batch 32
    torch_step_s="7.5",     # PyTorch 1.13 on the same CPU, same step
    book_epoch_s="2083",    # the book's laptop, epoch 1 (its log line)
    cli_step_s="8",         # one step with the frozen base on the workbook's engine (notebooks, CLI, grader)
    cli_h="2.4",            # the book's schedule that way
    cached_h="0.7",         # workbook finetune --cached-features
)

SCHEDULE_MD = (
    "**How long this takes without a GPU.** The book's schedule is 10 epochs of 100 training steps "
    "and 30 validation steps, batches of 32 images at 224×224: 32,000 training images through "
    "VGG16 with a backward pass for the head, and 9,600 validation images. The frozen VGG16 runs "
    "on the workbook's own AVX2 engine and only the head trains in GoMLX (the same values to "
    "float32 rounding as the whole model in GoMLX, whose pure-Go backend takes about {step_s} s a "
    "step): about {cli_step_s} s a step on a 2-core laptop CPU, so the book's schedule takes about "
    "{cli_h} hours — the same run, at the same speed, as `go run ./cmd/workbook finetune` and the "
    "instructors' grader. The book's own log shows {book_epoch_s} s for an epoch on its laptop CPU "
    "with TensorFlow; `--cached-features` in the command takes about {cached_h} hours "
    "(notebooks/FINETUNING.md).\n\n"
    "The book's numbers are the **defaults**. To shorten the run, set environment variables before "
    "the schedule cell — in the notebook with `%env`, e.g. `%env WORKBOOK_STEPS 5`, or in the "
    "shell that starts Jupyter:\n\n"
    "| variable | the book | `WORKBOOK_QUICK=1` |\n|---|---|---|\n"
    "{rows}\n\n"
    "`WORKBOOK_QUICK=1` is what the automatic tests run: it checks that every cell works, not "
    "that the model learns. A value set explicitly wins over `WORKBOOK_QUICK`.")

COMMON_NOTES = (
    "**How these Go notebooks run.** GoNB compiles and runs every cell as a new program: "
    "top-level declarations (`import`, `func`, `var`) are kept and *recomputed* in every later "
    "cell; the code after `%%` runs only in its own cell. Training must not start again in every "
    "later cell, so `training.Exercise803(schedule).MustHistory()` trains once, in a run folder "
    "of the workbook's cache named by every setting the run depends on (the weights, the data "
    "folder, the schedule), saving the run after every epoch; later cells read the finished run "
    "back in milliseconds, and an interrupted run continues after its last completed epoch. "
    "`go run ./cmd/workbook cache clear` (or deleting the folder the training cell prints) trains "
    "again. Predictions are cached the same way, keyed by the trained weights and the image.\n\n"
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

SCHEDULE_CODE = '''var schedule = training.MustScheduleFromEnv()

%%
fmt.Println(schedule)'''

SCHEDULE_FT_CODE = '''var schedule = training.MustScheduleFromEnv()
var stage2Epochs = training.MustStage2EpochsFromEnv()

%%
fmt.Println(schedule, "stage2_epochs:", stage2Epochs)
fmt.Println(applications.MustLazyVGG16().MustWeights())'''


def knob_rows(knobs):
    return "\n".join(f"| `{env}` ({label}) | {book} | {quick} |" for env, book, quick, label in knobs)


KNOBS_803 = [
    ("WORKBOOK_EPOCHS", 10, 1, "epochs"),
    ("WORKBOOK_STEPS", 100, 2, "steps_per_epoch"),
    ("WORKBOOK_VAL_STEPS", 30, 1, "validation_steps"),
    ("WORKBOOK_BATCH", 32, 2, "batch_size"),
]
KNOBS_FT = KNOBS_803[:1] + [("WORKBOOK_STAGE2_EPOCHS", 5, 1, "stage-2 epochs")] + KNOBS_803[1:]


IMPORTS = '''import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/training"
)'''

IMPORTS_MD = (
    "**Step 1: the libraries.** The book imports NumPy, Keras and TensorFlow's `random`:\n\n"
    "```python\nimport numpy as np\nimport keras\nfrom keras.layers import Dense\n"
    "from tensorflow import random\n```\n\n"
    "In Go, `applications` holds VGG16, `training` Keras' `compile`/`fit_generator`/`save` "
    "(Adam, binary cross-entropy, accuracy, the progress bar, checkpoints), `datasets` the "
    "`ImageDataGenerator` and `flow_from_directory`, `kernelext` the image helpers "
    "(`load_img`, `img_to_array`, `expand_dims`). This cell only declares the imports.")

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

// must stops the cell on an error, with the error's text.
func must(err error) {
	if err != nil {
		panic(err)
	}
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
    "**Step 8a: compile.** Keras: `classifier.compile(optimizer='adam', "
    "loss='binary_crossentropy', metrics=['accuracy'])`. `training.NewAdam()` is Keras' Adam "
    "with its defaults (learning rate 0.001, ε = 1e-7), `training.BinaryCrossentropy` and "
    "`training.Accuracy` are Keras' loss and metric. `training.Exercise803` — the exercise "
    "defined once for this notebook, the command and the grader — builds steps 4–7 on the real "
    "VGG16, with its weights and the new layer initialised with seed 42, and compiles it so; this "
    "cell shows the three.")

COMPILE_CODE = '''%%
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
    "batches in the same order. `training.Exercise803` trains with exactly these two generators "
    "(`training.BookTrainAugmentation` and `training.BookTestPreprocessing`).")

GENERATORS_CODE = '''%%
generateTrainData := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2,
	ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
generateTestData := datasets.ImageDataGenerator{Rescale: 1. / 255}
trainDir, testDir, err := datasets.TrainTestDirs("", os.Stdout)
must(err)
flow := datasets.FlowOptions{TargetSize: [2]int{224, 224}, BatchSize: schedule.Batch,
	ClassMode: datasets.Binary, Seed: datasets.Seed(42)}
trainingDataset := generateTrainData.MustFlowFromDirectory(trainDir, flow)
testDataset := generateTestData.MustFlowFromDirectory(testDir, flow)
fmt.Println("class_indices:", trainingDataset.ClassIndices())
trainingDataset.Close()
testDataset.Close()'''

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
    "`training.Exercise803(schedule).MustHistory()` is this `fit_generator` on the model of steps "
    "4–8 and the generators of step 8b. The run is saved after every epoch, so this cell trains "
    "once: run again (or any later cell) reads the finished run back.")

FIT_CODE = '''var history = training.Exercise803(schedule).MustHistory()

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
    "too, for comparison. `result` and `prediction` are the book's; `training.BookDecision` is the "
    "book's `== 1`. `MustPredict` computes `result` once and then reads it from the on-disk cache "
    "(keyed by the trained weights and the image).")

PREDICT_FUNCS = '''// testImage is steps 9–10: test_image_2.jpg at 224×224 as a batch of one, pixel values 0–255.
func testImage() *kernelext.Array {
	path := filepath.Join(datasets.MustPredictionDir(), "test_image_2.jpg")
	newImage := kernelext.MustLoadImg(path, kernelext.TargetSize(224, 224))
	return kernelext.ExpandDims(kernelext.ImgToArray(newImage), 0)
}'''

PREDICT_CODE = PREDICT_FUNCS + '''

var result = training.Exercise803(schedule).MustPredict(testImage())
var prediction = training.BookDecision(result.Data[0])

%%
fmt.Println(result)
fmt.Println(prediction)
rescaled := testImage().Scale(1. / 255)
p := training.Exercise803(schedule).MustPredict(rescaled).Data[0]
fmt.Printf("rescaled by 1/255 as in training: %.4f, i.e. %s at the threshold 0.5\\n", p, map[bool]string{false: "car", true: "flower"}[p > 0.5])'''

SAVE_MD = (
    "**Step 12: save the model.** Keras: `classifier.save('car-flower-classifier.h5')` — the "
    "weights, the optimizer state and the training configuration in one file. `MustSave` writes "
    "the same content (every variable, frozen ones included, Adam's moments and step count) in "
    "the workbook's checkpoint format (not HDF5), atomically: a temporary file renamed into "
    "place; `training.Model.MustLoad` reads it back. `MustModel` is the trained model of the "
    "run the fit cell made. `$WORKBOOK_MODEL_FILE` changes where it goes (the tests write it to a "
    "temporary folder).")

SAVE_CODE = '''%%
file := cmp.Or(os.Getenv("WORKBOOK_MODEL_FILE"), "car-flower-classifier.ckpt")
training.Exercise803(schedule).MustModel().MustSave(file)
fmt.Println("saved", file)'''

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
    return ("**The schedule.** `training.MustScheduleFromEnv()` reads the knobs described at the "
            "top (the book's values unless an environment variable says otherwise); the cell "
            "prints them.")


def cells_803():
    return [
        ("md", intro_803()),
        ("md", "Run the setup cell first (and again after a kernel restart). It points this "
               "notebook's Go module at the workbook checkout it sits in, so the cells use the "
               "checkout's packages and its pinned GoMLX version."),
        ("code", SETUP_CELL),
        ("md", IMPORTS_MD), ("code", IMPORTS),
        ("md", schedule_md()), ("code", SCHEDULE_CODE),
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
        "`training.FineTuning` runs both stages: it freezes the base, compiles with Adam, fits; "
        "then unfreezes the selected layers, compiles with a fresh `Adam(1e-5)` and fits again, "
        "numbering the epochs on. Stage 1 is Exercise 8.03's run, its frozen VGG16 on the "
        "workbook's engine; in stage 2 the engine computes the still-frozen blocks 1–4 and GoMLX "
        "trains block 5 and the layers above it (the same values as the whole model in GoMLX, to "
        "float32 rounding).\n\n"
        "**Cost.** Stage 2 also back-propagates through block 5 (a small part of VGG16's "
        "compute at 14×14 pixels), so its steps cost a little more than stage 1's. "
        + SCHEDULE_MD.format(rows=knob_rows(KNOBS_FT), **MEASURED).split("\n\n", 1)[1]
        + "\n\n" + COMMON_NOTES)


FT_BUILD_MD = (
    "**The model's two stages, in summaries.** `stageLayers` is the classifier's layer table "
    "(no weights): VGG16 up to `fc2`, frozen, plus `Dense(1, sigmoid)`, as in Exercise 8.03, "
    "with block 5 trainable again in stage 2. The summaries show the trainable parameters in each "
    "stage: 4,097 (the head) in stage 1; in stage 2 also block 5's three convolutions, "
    "7,079,424 more.")

FT_BUILD_CODE = '''func stageLayers(stage int) *applications.Architecture {
	layers := applications.MustLazyVGG16(applications.Until("fc2")).Architecture().Clone()
	layers.AsSequential("sequential_1")
	err := layers.SetTrainable(false)
	_, errDense := layers.AddDense("", 1, "sigmoid")
	if stage == 2 {
		err = errors.Join(err, layers.SetTrainable(true, "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool"))
	}
	if err = errors.Join(err, errDense); err != nil {
		panic(err)
	}
	return layers
}

%%
fmt.Print("Stage 1:\\n", stageLayers(1).Summary(), "Stage 2:\\n", stageLayers(2).Summary())'''

FT_FIT_MD = (
    "**Both stages.** `training.Exercise803(schedule)` with\n\n"
    "- `Stage2Epochs` — the epochs of stage 2, numbered after stage 1's;\n"
    "- `Unfreeze: \"block5_\"` — what stage 2 trains (with the head);\n"
    "- `LR2: 1e-5` — `Adam(learning_rate=1e-05)`, a new optimizer, as Keras' recompile "
    "creates.\n\n"
    "The Keras equivalent:\n\n```python\n# stage 1: Exercise 8.03\nfor layer in classifier.layers[:-1]:\n"
    "    layer.trainable = False\nclassifier.compile(optimizer='adam', loss='binary_crossentropy', "
    "metrics=['accuracy'])\nclassifier.fit_generator(training_dataset, steps_per_epoch=100, epochs=10, ...)\n"
    "# stage 2\nfor layer in classifier.layers:\n    if layer.name.startswith('block5_'):\n"
    "        layer.trainable = True\nclassifier.compile(optimizer=keras.optimizers.Adam(1e-5), "
    "loss='binary_crossentropy', metrics=['accuracy'])\nclassifier.fit_generator(training_dataset, "
    "steps_per_epoch=100, initial_epoch=10, epochs=15, ...)\n```\n\n"
    "`history` holds both stages, epochs numbered on (stage 2's start at 11). Both stages are "
    "saved after every epoch: the cell trains once.")

FT_FIT_CODE = '''// fineTuning is Exercise 8.03 followed by stage 2: block5_ unfrozen, trained on with Adam(1e-5).
func fineTuning() training.FineTuning {
	f := training.Exercise803(schedule)
	f.Stage2Epochs, f.Unfreeze, f.LR2 = stage2Epochs, "block5_", 1e-5
	return f
}

var history = fineTuning().MustHistory()

%%
fmt.Print(history)
fmt.Printf("val_accuracy: %.4f after stage 1, %.4f after stage 2\\n",
	history.Get("val_accuracy")[schedule.Epochs-1], history.Last("val_accuracy"))
history.Display()'''

FT_CHECK_MD = (
    "**What training changed.** The cell compares every layer's weights before training and "
    "after stage 2, bit for bit. Only the trainable ones may differ: block 5's convolutions and "
    "the head. Blocks 1–4 and `fc1`/`fc2` are identical to the bit — a frozen layer is not "
    "touched at all, not merely updated by zero.")

FT_CHECK_CODE = '''%%
changes, err := training.CompareVariables(fineTuning().MustUntrained(), fineTuning().MustModel())
if err != nil {
	panic(err)
}
for _, c := range changes {
	fmt.Printf("%-22s %-7s %10d values, %10d changed\\n", c.Layer, c.Name, c.Size, c.Changed)
}'''

FT_PREDICT_MD = (
    "**Predict and save.** As in Exercise 8.03 (steps 9–12), with the fine-tuned weights: "
    "`result` is the book's computation (pixel values 0–255, no rescale, \"flower\" only when "
    "the output is exactly 1 — see notebook 04 for why that is fragile), followed by the "
    "rescaled prediction for comparison; then the model is saved.")

FT_PREDICT_CODE = PREDICT_FUNCS + '''

var result = fineTuning().MustPredict(testImage())
var prediction = training.BookDecision(result.Data[0])

%%
fmt.Print(result, "\\n", prediction, "\\n")
p := fineTuning().MustPredict(testImage().Scale(1. / 255)).Data[0]
fmt.Printf("rescaled by 1/255 as in training: %.4f, i.e. %s at the threshold 0.5\\n", p, map[bool]string{false: "car", true: "flower"}[p > 0.5])
file := cmp.Or(os.Getenv("WORKBOOK_MODEL_FILE"), "car-flower-classifier-finetuned.ckpt")
fineTuning().MustModel().MustSave(file)
fmt.Println("saved", file)'''

OUTRO_FT = (
    "**What to expect.** With the ImageNet weights, stage 2 typically adds a few points of "
    "validation accuracy over the frozen-base result, and the training loss keeps falling; with "
    "too large a learning rate (try `f.LR2 = 1e-3`) "
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
        ("md", schedule_md()), ("code", SCHEDULE_FT_CODE),
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
