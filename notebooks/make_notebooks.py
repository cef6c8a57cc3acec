#!/usr/bin/python3
"""Writes the Chapter 8 prediction notebooks: the exercises and the student versions of the
activities into notebooks/, the solved versions of all of them into solutions/.

    /usr/bin/python3 notebooks/make_notebooks.py

The notebooks are generated so that the five stay consistent with each other (same cell
layout, same variable names the grader reads, same setup cell as notebooks/README.md). Edit
this script and run it again rather than editing the .ipynb files by hand; the notebook test
(notebooks/notebooks_test.go) fails when a notebook differs from what this script writes.

Numbering leaves 04 free for Exercise 8.03 (fine-tuning), so that the files sort in the book's
order: Exercise 8.01, Activity 8.01, Exercise 8.02, Exercise 8.03, Exercise 8.04, Activity 8.02.
"""
import hashlib
import os
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The setup cell documented in notebooks/README.md (and used by internal/nbrun's test notebooks).
SETUP_CELL = r'''!*go -C "$GONB_DIR" run github.com/transfer-learning-go/workbook/cmd/nbsetup'''

# One entry per notebook. "book" is what the book prints with the ImageNet weights.
NOTEBOOKS = [
    dict(file="01-exercise-8.01-vgg16-pizza.ipynb", kind="exercise", number="8.01",
         title="Identifying an image with the VGG16 network",
         model="VGG16", image="pizza.jpg", subject="a slice of pizza", summary=False,
         book_top5="""[[('n07873807', 'pizza', 0.97680503),
  ('n07871810', 'meat_loaf', 0.012848727),
  ('n07880968', 'burrito', 0.0019428912),
  ('n04270147', 'spatula', 0.0019108421),
  ('n03887697', 'paper_towel', 0.0009799759)]]""",
         book_line="pizza (97.68%)",
         outro="With the ImageNet weights VGG16 is almost certain: 97.68 % pizza. ImageNet has a "
               "`pizza` class with many similar photos, so the network has seen this kind of "
               "image before."),
    dict(file="02-activity-8.01-vgg16-motorcycle.ipynb", kind="activity", number="8.01",
         title="Recognising a motorbike with VGG16",
         model="VGG16", image="test_image_1.jpg", subject="a motorbike", summary=False,
         book_top5=None, book_line=None,
         outro="With the ImageNet weights the book's top prediction is `moped`, at 84.33 %: "
               "ImageNet has no plain `motorcycle` class, and of its two-wheeler classes "
               "(`moped`, `motor_scooter`, `mountain_bike`, ...) moped is the closest."),
    dict(file="03-exercise-8.02-vgg16-stick-insect.ipynb", kind="exercise", number="8.02",
         title="Classifying an image whose class is not in ImageNet",
         model="VGG16", image="stick_insect.jpg", subject="a stick insect", summary=True,
         book_top5="""[[('n02231487', 'walking_stick', 0.30524516),
  ('n01775062', 'wolf_spider', 0.26035702),
  ('n03804744', 'nail', 0.14323168),
  ('n01770081', 'harvestman', 0.066652186),
  ('n01773549', 'barn_spider', 0.03670299)]]""",
         book_line="walking_stick (30.52%)",
         outro="With the ImageNet weights the book gets `walking_stick` at only 30.52 %, with "
               "spiders and a nail close behind: the network is far less sure than it was about "
               "the pizza. The book treats `walking_stick` as a walking cane and the stick insect "
               "as a class ImageNet lacks. In fact ImageNet's class `n02231487` is the WordNet "
               "synset *walking stick, walkingstick, stick insect* — the insect (class 313, among "
               "the other insects) — so the top answer is right, only uncertain. The lesson holds "
               "all the same: a pretrained classifier can only answer with the 1000 classes it was "
               "trained on, and a photo of something outside them gets the nearest ones, often "
               "with confidence spread thin. To recognise new classes you put your own classifier "
               "on top of the pretrained layers and train it on your images — what Exercise 8.03 "
               "does for cars and flowers."),
    dict(file="05-exercise-8.04-resnet50-racer.ipynb", kind="exercise", number="8.04",
         title="Classifying an image with ResNet50",
         model="ResNet50", image="test_image_3.jpg", subject="a NASCAR racing car", summary=True,
         book_top5="""[[('n04037443', 'racer', 0.8013074),
  ('n04285008', 'sports_car', 0.06431753),
  ('n02974003', 'car_wheel', 0.024077434),
  ('n02504013', 'Indian_elephant', 0.019822922),
  ('n04461696', 'tow_truck', 0.007778575)]]""",
         book_line="racer (80.13%)",
         outro="With the ImageNet weights ResNet50 answers `racer` with 80.13 %, `sports_car` "
               "second. Only the model changed compared with the VGG16 exercises: loading, "
               "preprocessing and decoding are the same calls."),
    dict(file="06-activity-8.02-resnet50-television.ipynb", kind="activity", number="8.02",
         title="Classifying a television with ResNet50",
         model="ResNet50", image="test_image_4.jpg", subject="a television set", summary=False,
         book_top5=None, book_line=None,
         outro="With the ImageNet weights the book reports `television` with a probability "
               "close to 100 %."),
]

KERAS_NAME = {"VGG16": "vgg16", "ResNet50": "resnet50"}


# The book's import cells (Exercises 8.01/8.02 and 8.04), as printed in the chapter.
BOOK_IMPORTS = {
    "VGG16": ("import numpy as np\nfrom keras.applications.vgg16 import VGG16\n"
              "from keras.preprocessing import image\nfrom keras.applications.vgg16 import preprocess_input"),
    "ResNet50": ("import numpy as np\nfrom keras.applications.resnet50 import ResNet50, preprocess_input\n"
                 "from keras.preprocessing import image"),
}


def intro(nb, solved):
    kind = "Exercise" if nb["kind"] == "exercise" else "Activity"
    head = f"# {kind} {nb['number']}: {nb['title']}\n\n"
    if nb["kind"] == "exercise":
        body = (f"We hand the photo of {nb['subject']} (`{nb['image']}`) to **{nb['model']}**, a network "
                f"already trained on the 1000 classes of ImageNet, and read off what it thinks the "
                f"photo shows. Nothing is trained here: the whole point of a pretrained network is "
                f"that someone else already spent the compute.\n\n"
                f"Every step is the Go twin of one Keras call of the book; the markdown before each "
                f"cell names the call. The outputs have the same form as Jupyter shows them for "
                f"the Python code: shapes as Python tuples, arrays as NumPy prints them, the "
                f"top-5 list as Keras returns it.\n\n")
    elif solved:
        body = (f"**Solution.** The task: classify the photo of {nb['subject']} (`{nb['image']}`) with "
                f"the pretrained **{nb['model']}**, in the six steps of the activity. The student "
                f"version of this notebook (same name, in `notebooks/`) has the same cells "
                f"with the code left to write.\n\n")
    else:
        body = (f"Your task: classify the photo of {nb['subject']} (`{nb['image']}`) with the "
                f"pretrained **{nb['model']}**. The steps are those of the exercises before this "
                f"one; each code cell below says what to compute and which Keras call it "
                f"corresponds to, and prints a `TODO` hint until you have filled it in. Replace "
                f"each `// TODO` declaration by your code and run the cells from the top.\n\n"
                f"Keep the variable names given in the cells (`newImage`, `transformedImage`, "
                f"`yPred`, `label`): the automatic checks read them.\n\n")
    notes = ("**How these Go notebooks run.** GoNB compiles and runs every cell as a new program. "
             "Top-level declarations (`import`, `func`, `var`) are kept and *recomputed* in every "
             "later cell; the code after `%%` runs only in its own cell. That is why each step "
             "declares its result as a new top-level `var` (a `var` cannot be assigned again in a "
             "later cell), and why the prediction goes through `MustPredictCached`: it is "
             "computed once and read back from an on-disk cache in the following cells.\n\n"
             "**Which weights?** The book's numbers come from the published ImageNet weights, "
             "which the model cell downloads once into Keras' own cache (`~/.keras/models`) "
             "like `VGG16()` does. Where there is no network access, `$WORKBOOK_WEIGHTS_DIR` can "
             "point at stand-in checkpoints of the same names (the tests use seeded random "
             "ones); then the cell says so, and every prediction below is meaningless — only the "
             "shapes and formats can be compared with the book.")
    return head + body + notes


def setup_md():
    return ("Run the setup cell first (and again after a kernel restart). It points this notebook's "
            "Go module at the workbook checkout it sits in, so the cells use the checkout's "
            "`kernelext`, `applications` and `datasets` packages and its pinned GoMLX version.")


def imports_code():
    return ('import (\n'
            '\t"fmt"\n'
            '\t"path/filepath"\n\n'
            '\t"github.com/transfer-learning-go/workbook/datasets"\n'
            '\t"github.com/transfer-learning-go/workbook/kernelext"\n'
            '\t"github.com/transfer-learning-go/workbook/kernelext/applications"\n'
            ')')


def imports_md(nb, step):
    return (f"**Step {step}: the libraries.** The book's first cell:\n\n```python\n{BOOK_IMPORTS[nb['model']]}\n```\n\n"
            f"(`decode_predictions` comes later, at step 9.) In Go, `kernelext` holds the twins of "
            f"`image.load_img`, `img_to_array`, `np.expand_dims`, `preprocess_input` and "
            f"`decode_predictions`, `applications` the models, and `datasets` finds the book's images "
            f"wherever the checkout is. This cell only declares the imports; it prints nothing.")


def lazy_ctor(nb):
    return f"applications.MustLazy{nb['model']}()"


def model_md(nb, step):
    s = (f"**Step {step}: the model.** Keras: `classifier = {nb['model']}()` — the network with its "
         f"ImageNet weights and its 1000-class top. `{lazy_ctor(nb)}` describes the same model "
         f"without reading its weights yet: they are read when a prediction actually has to be "
         f"computed (`applications.Must{nb['model']}()` would read them at once, and — every cell "
         f"being a new program — again in every later cell). `classifier.MustModel()` returns the "
         f"fully built model if you need it.\n\n"
         f"The cell prints which weights the model will use: check it before comparing results "
         f"with the book.")
    if nb["summary"]:
        s += (f"\n\nIt also prints `classifier.summary()` (`fmt.Print(classifier.Summary())`): the "
              f"layers, their output shapes and parameter counts, in exactly Keras' layout. The input "
              f"is `(None, 224, 224, 3)` — any number of 224×224 RGB images — and the last layer, "
              f"`{'predictions' if nb['model'] == 'VGG16' else 'fc1000'}`, is a `Dense` layer with "
              f"1000 outputs, one per ImageNet class.")
    return s


def model_code(nb):
    lines = [f"var classifier = {lazy_ctor(nb)}", "", "%%", "fmt.Println(classifier.MustWeights())"]
    if nb["summary"]:
        lines.append("fmt.Print(classifier.Summary())")
    return "\n".join(lines)


def image_path(nb):
    return f'filepath.Join(datasets.MustPredictionDir(), "{nb["image"]}")'


def load_md(nb, step):
    return (f"**Step {step}: load the image.** Keras: `new_image = image.load_img('../Data/Prediction/{nb['image']}', "
            f"target_size=(224, 224))`. {nb['model']} takes 224×224 pixels, so the photo is resized on "
            f"loading (nearest-neighbour, as Keras does). `kernelext.MustLoadImg` decodes the JPEG to the "
            f"very same pixels as Pillow, and `kernelext.DisplayImage` shows the image, as Jupyter "
            f"does when a cell ends with `new_image`.")


def load_code(nb):
    return (f"var newImage = kernelext.MustLoadImg({image_path(nb)}, kernelext.TargetSize(224, 224))\n\n"
            "%%\nkernelext.DisplayImage(newImage)")


def array_md(step):
    return ("**Step %s: image to array.** Keras: `transformed_image = image.img_to_array(new_image)`, "
            "then `transformed_image.shape`. The pixels become a float32 array of height × width × "
            "channels; `ShapeString` prints the shape as Python prints the tuple." % step)


def array_code():
    return "var imageArray = kernelext.ImgToArray(newImage)\n\n%%\nfmt.Println(imageArray.ShapeString())"


def batch_md(nb, step):
    return ("**Step %s: add the batch axis.** Keras: `transformed_image = np.expand_dims(transformed_image, axis=0)`. "
            "%s predicts on batches of images, so the single image becomes a batch of one: a new "
            "first axis of length 1." % (step, nb["model"]))


def batch_code():
    return "var imageBatch = kernelext.ExpandDims(imageArray, 0)\n\n%%\nfmt.Println(imageBatch.ShapeString())"


def preprocess_md(nb, step):
    return ("**Step %s: preprocess.** Keras: `transformed_image = preprocess_input(transformed_image)`. "
            "%s was trained on images in BGR channel order with the ImageNet mean colour subtracted "
            "(B 103.939, G 116.779, R 123.68), so ours must be prepared the same way. Printing the array "
            "(`fmt.Println(transformedImage)`) shows it as Jupyter shows a NumPy array: `array([[[[...]]]], "
            "dtype=float32)`, the middle of each axis elided." % (step, nb["model"]))


def preprocess_code():
    return "var transformedImage = kernelext.PreprocessInput(imageBatch)\n\n%%\nfmt.Println(transformedImage)"


def predict_md(nb, step):
    return (f"**Step {step}: predict.** Keras: `y_pred = classifier.predict(transformed_image)`. The result "
            f"holds one probability per ImageNet class for each image of the batch. "
            f"`classifier.MustPredictCached` computes it the first time (reading the weights then: "
            f"{'several' if nb['model'] == 'VGG16' else 'a few'} seconds on GoMLX's pure-Go backend) and "
            f"afterwards reads it from the on-disk cache, keyed by the model, its weights and the input "
            f"values — so the later cells, which recompute `yPred`, stay fast. "
            f"(`classifier.MustModel().MustPredict(transformedImage)` always computes.)")


def predict_code():
    return "var yPred = classifier.MustPredictCached(transformedImage)\n\n%%\nfmt.Println(yPred)"


def shape_md(step):
    return ("**Step %s: the shape of the prediction.** Keras: `y_pred.shape` — `(1, 1000)`: one image, "
            "1000 ImageNet classes." % step)


def shape_code():
    return "%%\nfmt.Println(yPred.ShapeString())"


def top5_md(nb, step):
    s = (f"**Step {step}: the five most likely classes.** Keras: `decode_predictions(y_pred, top=5)`. "
         f"Each entry is (WordNet ID, class name, probability), most likely first. "
         f"`kernelext.MustDecodePredictions(yPred, 5)` returns the same entries in the same order "
         f"(ties included) and `kernelext.FormatPredictions` prints them as Jupyter shows Keras' "
         f"list of tuples. (`kernelext.DisplayPredictions` would show them as a table instead.)")
    if nb["book_top5"]:
        s += f"\n\nWith the ImageNet weights the book gets:\n\n```\n{nb['book_top5']}\n```"
    return s


def top5_code():
    return "%%\nfmt.Println(kernelext.FormatPredictions(kernelext.MustDecodePredictions(yPred, 5)))"


def label_md(nb, step):
    s = ("**Step %s: the answer in one line.** Keras:\n\n```python\nlabel = decode_predictions(y_pred)\n"
         "decoded_label = label[0][0]\nprint('%%s (%%.2f%%%%)' %% (decoded_label[1], decoded_label[2]*100))\n```\n\n"
         "`label[0][0]` is the top entry for the first (only) image. Python multiplies the float32 "
         "score by 100 in double precision and rounds to two decimals; "
         "`float64(decodedLabel.Score)*100` with `%%.2f` does exactly the same in Go, so both print "
         "the same digits. With stand-in weights the cell adds a reminder that the result is not "
         "the book's." % step)
    if nb["book_line"]:
        s += f"\n\nThe book prints `{nb['book_line']}`."
    return s


LABEL_PRINT = ('decodedLabel := label[0][0] // the most likely class of the first image\n'
               'fmt.Printf("%s (%.2f%%)\\n", decodedLabel.Label, float64(decodedLabel.Score)*100)')
STANDIN_NOTE = ('if !classifier.MustWeights().Published {\n'
                '\tfmt.Println("(stand-in weights: not a result to compare with the book)")\n'
                '}')


def label_code():
    return "var label = kernelext.MustDecodePredictions(yPred, 5)\n\n%%\n" + LABEL_PRINT + "\n" + STANDIN_NOTE


def outro_md(nb):
    return "**What the book gets.** " + nb["outro"]


def check_func(nb):
    return ("Exercise" if nb["kind"] == "exercise" else "Activity") + nb["number"].replace(".", "")


def check_md(nb):
    return (f"**Check your work.** `check.{check_func(nb)}` runs the visible checks your instructor's "
            "grader runs on `transformedImage`, `yPred` and `label` — the variables the grader "
            "reads — and says what to fix when one fails; hidden checks are only counted. Its "
            "reference is computed here, with the same weights as the notebook (one more "
            "prediction, then cached).")


def check_code(nb):
    return ('import "github.com/transfer-learning-go/workbook/solutions/check"\n\n'
            f"%%\ncheck.{check_func(nb)}(transformedImage, yPred, label)")


def exercise_cells(nb):
    c = [("md", intro(nb, True)), ("md", setup_md()), ("code", SETUP_CELL),
         ("md", imports_md(nb, 1)), ("code", imports_code()),
         ("md", model_md(nb, 2)), ("code", model_code(nb)),
         ("md", load_md(nb, 3)), ("code", load_code(nb)),
         ("md", array_md(4)), ("code", array_code()),
         ("md", batch_md(nb, 5)), ("code", batch_code()),
         ("md", preprocess_md(nb, 6)), ("code", preprocess_code()),
         ("md", predict_md(nb, 7)), ("code", predict_code()),
         ("md", shape_md(8)), ("code", shape_code()),
         ("md", top5_md(nb, 9)), ("code", top5_code()),
         ("md", label_md(nb, 10)), ("code", label_code()),
         ("md", check_md(nb)), ("code", check_code(nb)),
         ("md", outro_md(nb))]
    return c


# Activities: the book's six steps. Step 4 (img_to_array, expand_dims, preprocess_input), step 5
# (predict, shape) and step 6 (top 5, label) each take one cell.

def activity_step_md(nb, step, solved):
    m = nb["model"]
    texts = {
        1: (f"**Step 1: import the libraries** — Keras' `{KERAS_NAME[m]}` module and `image`. "
            f"The Go packages are the same as in the exercises; this cell is given."),
        2: (f"**Step 2: initiate the pretrained {m}.** Keras: `classifier = {m}()`. In Go, "
            f"`{lazy_ctor(nb)}` describes the model and reads its weights only when a prediction "
            f"needs them. The cell prints which weights it uses."),
        3: (f"**Step 3: load the image to classify**, `{nb['image']}`, at the 224×224 size {m} "
            f"takes. Keras: `image.load_img(path, target_size=(224, 224))`; Go: "
            f"`kernelext.MustLoadImg(path, kernelext.TargetSize(224, 224))` with the path "
            f"`{image_path(nb)}`. The cell displays it."),
        4: ("**Step 4: preprocess the image.** Three transformations, as in the exercises: "
            "`image.img_to_array` (Go: `kernelext.ImgToArray`), `np.expand_dims(..., axis=0)` "
            "(`kernelext.ExpandDims`) and `preprocess_input` (`kernelext.PreprocessInput`). "
            "The cell prints the two shapes and the preprocessed array."),
        5: ("**Step 5: predict.** Keras: `y_pred = classifier.predict(transformed_image)`. Go: "
            "`classifier.MustPredictCached(transformedImage)`, computed once and then read from "
            "the on-disk cache. The cell prints `y_pred` and its shape."),
        6: ("**Step 6: label the image.** Keras: `decode_predictions(y_pred, top=5)` for the "
            "five most likely classes, then the top one as `label (xx.xx%)`. Go: "
            "`kernelext.MustDecodePredictions(yPred, 5)`, printed with "
            "`kernelext.FormatPredictions`, and "
            "`fmt.Printf(\"%s (%.2f%%)\\n\", ...)` with the score widened to `float64` before "
            "multiplying by 100, as Python does."),
    }
    return texts[step]


def activity_solved_code(nb, step):
    if step == 1:
        return imports_code()
    if step == 2:
        return model_code(nb)
    if step == 3:
        return load_code(nb)
    if step == 4:
        return ("var imageArray = kernelext.ImgToArray(newImage)\n"
                "var imageBatch = kernelext.ExpandDims(imageArray, 0)\n"
                "var transformedImage = kernelext.PreprocessInput(imageBatch)\n\n"
                "%%\nfmt.Println(imageArray.ShapeString())\nfmt.Println(imageBatch.ShapeString())\n"
                "fmt.Println(transformedImage)")
    if step == 5:
        return ("var yPred = classifier.MustPredictCached(transformedImage)\n\n"
                "%%\nfmt.Println(yPred)\nfmt.Println(yPred.ShapeString())")
    if step == 6:
        return ("var label = kernelext.MustDecodePredictions(yPred, 5)\n\n"
                "%%\nfmt.Println(kernelext.FormatPredictions(label))\n" + LABEL_PRINT + "\n" + STANDIN_NOTE)
    raise ValueError(step)


def todo(msg):
    return 'fmt.Println("TODO: %s")\nreturn' % msg


def activity_student_code(nb, step):
    m = nb["model"]
    if step == 1:
        return imports_code()
    if step == 2:
        return ("// TODO: replace this declaration by the pretrained %s with its ImageNet weights\n"
                "// (Keras: classifier = %s(); see the constructors in package applications).\n"
                "var classifier *applications.LazyModel\n\n"
                "%%%%\nif classifier == nil {\n\t%s\n}\nfmt.Println(classifier.MustWeights())"
                % (m, m, todo("step 2, declare classifier").replace("\n", "\n\t")))
    if step == 3:
        return ("// TODO: load %s at 224x224 pixels (Keras: image.load_img(path, target_size=(224, 224))).\n"
                "// The book's images are in datasets.MustPredictionDir().\n"
                "var newImage *kernelext.Image\n\n"
                "%%%%\nif newImage == nil {\n\t%s\n}\nkernelext.DisplayImage(newImage)"
                % (nb["image"], todo("step 3, declare newImage").replace("\n", "\n\t")))
    if step == 4:
        return ("// TODO: replace the three declarations: the image as an array (img_to_array),\n"
                "// as a batch of one (np.expand_dims, axis 0), and preprocessed (preprocess_input).\n"
                "var imageArray *kernelext.Array\n"
                "var imageBatch *kernelext.Array\n"
                "var transformedImage *kernelext.Array\n\n"
                "%%\n"
                "if imageArray == nil {\n\t" + todo("step 4, declare imageArray").replace("\n", "\n\t") + "\n}\n"
                "fmt.Println(imageArray.ShapeString())\n"
                "if imageBatch == nil {\n\t" + todo("step 4, declare imageBatch").replace("\n", "\n\t") + "\n}\n"
                "fmt.Println(imageBatch.ShapeString())\n"
                "if transformedImage == nil {\n\t" + todo("step 4, declare transformedImage").replace("\n", "\n\t") + "\n}\n"
                "fmt.Println(transformedImage)")
    if step == 5:
        return ("// TODO: predict transformedImage with classifier (Keras: classifier.predict(transformed_image));\n"
                "// use the cached prediction method, so that the following cells stay fast.\n"
                "var yPred *kernelext.Array\n\n"
                "%%\nif yPred == nil {\n\t" + todo("step 5, declare yPred").replace("\n", "\n\t") + "\n}\n"
                "fmt.Println(yPred)\nfmt.Println(yPred.ShapeString())")
    if step == 6:
        return ("// TODO: decode the five most likely classes of yPred (Keras: decode_predictions(y_pred, top=5)).\n"
                "var label [][]kernelext.Prediction\n\n"
                "%%\nif label == nil {\n\t" + todo("step 6, declare label").replace("\n", "\n\t") + "\n}\n"
                "fmt.Println(kernelext.FormatPredictions(label))\n"
                "// TODO: print the most likely class as the book does, e.g. \"pizza (97.68%)\".\n"
                + STANDIN_NOTE)
    raise ValueError(step)


def activity_cells(nb, solved):
    c = [("md", intro(nb, solved)), ("md", setup_md()), ("code", SETUP_CELL)]
    for step in range(1, 7):
        c.append(("md", activity_step_md(nb, step, solved)))
        c.append(("code", activity_solved_code(nb, step) if solved else activity_student_code(nb, step)))
    c.append(("md", check_md(nb)))
    c.append(("code", check_code(nb)))
    c.append(("md", outro_md(nb)))
    return c


def build(cells, name):
    nb = new_notebook()
    for i, (kind, src) in enumerate(cells):
        # Stable cell ids, so that regenerating an unchanged notebook changes nothing.
        cid = hashlib.sha1(f"{name}/{i}".encode()).hexdigest()[:8]
        cell = new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        cell.id = cid
        nb.cells.append(cell)
    nb.metadata = {
        "kernelspec": {"name": "gonb", "display_name": "Go (gonb)", "language": "go"},
        "language_info": {"name": "go"},
    }
    return nbformat.writes(nb) + "\n"


def outputs():
    """(path relative to the checkout, content) for every generated notebook."""
    out = []
    for nb in NOTEBOOKS:
        if nb["kind"] == "exercise":
            text = build(exercise_cells(nb), nb["file"])
            out += [("notebooks/" + nb["file"], text), ("solutions/" + nb["file"], text)]
        else:
            out.append(("notebooks/" + nb["file"], build(activity_cells(nb, False), nb["file"])))
            out.append(("solutions/" + nb["file"], build(activity_cells(nb, True), nb["file"])))
    return out


def write_all(outputs, script):
    """Writes each (path relative to the checkout, content) that differs from the file there
    (temporary file + rename); with --check only lists the stale ones and exits 1. Shared with
    make_finetune_notebooks.py."""
    check = "--check" in sys.argv[1:]
    stale = []
    for rel, text in outputs:
        path = os.path.join(ROOT, rel)
        try:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
        except FileNotFoundError:
            same = False
        if same:
            continue
        if check:
            stale.append(rel)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        print("wrote", rel)
    if stale:
        print(f"out of date (run /usr/bin/python3 notebooks/{script}):", " ".join(stale))
        sys.exit(1)


def main():
    write_all(outputs(), "make_notebooks.py")


if __name__ == "__main__":
    main()
