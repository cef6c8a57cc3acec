// Package notebooks_test checks the Chapter 8 prediction notebooks: that they are what
// make_notebooks.py writes, that they keep the variables the grader reads, and — through real
// Jupyter and GoNB — that every solved notebook runs without an error and prints what the book
// prints, in the book's formats, with values checked against the PyTorch reference of
// internal/reference (run with its seeded stand-in checkpoints, as there is no network in CI).
package notebooks_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/npy"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/weights"
)

const python = testenv.PythonPath

type notebook struct {
	file     string
	id       string // the exercise or activity, as the grader's checks name it
	activity bool
	model    string // Keras model name
	image    string
	summary  bool // prints classifier.summary()
}

var book = []notebook{
	{"01-exercise-8.01-vgg16-pizza.ipynb", "8.01", false, "vgg16", "pizza.jpg", false},
	{"02-activity-8.01-vgg16-motorcycle.ipynb", "A8.01", true, "vgg16", "test_image_1.jpg", false},
	{"03-exercise-8.02-vgg16-stick-insect.ipynb", "8.02", false, "vgg16", "stick_insect.jpg", true},
	{"05-exercise-8.04-resnet50-racer.ipynb", "8.04", false, "resnet50", "test_image_3.jpg", true},
	{"06-activity-8.02-resnet50-television.ipynb", "A8.02", true, "resnet50", "test_image_4.jpg", false},
}

var (
	pkgDir  = func() string { wd, _ := os.Getwd(); return wd }()
	rootDir = filepath.Dir(pkgDir)
)

func readNotebook(t *testing.T, dir, file string) *nbrun.Notebook {
	t.Helper()
	nb, err := nbrun.ReadNotebook(filepath.Join(rootDir, dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

func TestNotebooksAreWhatTheGeneratorWrites(t *testing.T) {
	testenv.Python(t, "nbformat")
	out, err := exec.Command(python, filepath.Join(pkgDir, "make_notebooks.py"), "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("make_notebooks.py --check: %v\n%s", err, out)
	}
}

// setupCell is the cell notebooks/README.md tells every notebook to start with.
func setupCell(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pkgDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## The setup cell")
	if !ok {
		t.Fatal("README.md has no setup cell section")
	}
	_, after, _ = strings.Cut(after, "```\n")
	cell, _, ok := strings.Cut(after, "\n```")
	if !ok {
		t.Fatal("README.md: setup cell block not closed")
	}
	return cell
}

// The variables the grader reads, declared at top level (so that later cells recompute them).
var (
	solvedVars = []*regexp.Regexp{
		regexp.MustCompile(`(?m)^var newImage = kernelext\.MustLoadImg\(filepath\.Join\(datasets\.MustPredictionDir\(\), "([^"]+)"\), kernelext\.TargetSize\(224, 224\)\)$`),
		regexp.MustCompile(`(?m)^var transformedImage = kernelext\.PreprocessInput\(`),
		regexp.MustCompile(`(?m)^var yPred = classifier\.MustPredictCached\(transformedImage\)$`),
		regexp.MustCompile(`(?m)^var label = kernelext\.MustDecodePredictions\(yPred, 5\)$`),
	}
	studentVars = []*regexp.Regexp{
		regexp.MustCompile(`(?m)^var newImage \*kernelext\.Image$`),
		regexp.MustCompile(`(?m)^var transformedImage \*kernelext\.Array$`),
		regexp.MustCompile(`(?m)^var yPred \*kernelext\.Array$`),
		regexp.MustCompile(`(?m)^var label \[\]\[\]kernelext\.Prediction$`),
	}
	// The Go form of print('%s (%.2f%%)' % (decoded_label[1], decoded_label[2]*100)); see
	// TestPercentLineMatchesPython.
	labelPrintf = `fmt.Printf("%s (%.2f%%)\n", decodedLabel.Label, float64(decodedLabel.Score)*100)`
)

func TestNotebookLayoutAndGraderVariables(t *testing.T) {
	setup := setupCell(t)
	for _, nb := range book {
		t.Run(nb.file, func(t *testing.T) {
			student, err := os.ReadFile(filepath.Join(rootDir, "notebooks", nb.file))
			if err != nil {
				t.Fatal(err)
			}
			solved, err := os.ReadFile(filepath.Join(rootDir, "solutions", nb.file))
			if err != nil {
				t.Fatal(err)
			}
			if !nb.activity && !bytes.Equal(student, solved) {
				t.Error("the exercise in solutions/ differs from the one in notebooks/")
			}
			if nb.activity && bytes.Equal(student, solved) {
				t.Error("the activity in notebooks/ is the solution")
			}
			for _, c := range []struct {
				dir  string
				vars []*regexp.Regexp
			}{{"solutions", solvedVars}, {"notebooks", studentVars}} {
				if c.dir == "notebooks" && !nb.activity {
					continue
				}
				n := readNotebook(t, c.dir, nb.file)
				code := n.CodeCells()
				if len(code) == 0 || code[0].Source != setup {
					t.Errorf("%s: the first code cell is not the setup cell of README.md", c.dir)
				}
				if n.KernelName != "gonb" {
					t.Errorf("%s: kernel %q, want gonb", c.dir, n.KernelName)
				}
				var all strings.Builder
				for _, cell := range code {
					all.WriteString(cell.Source + "\n")
				}
				for _, re := range c.vars {
					if got := len(re.FindAllString(all.String(), -1)); got != 1 {
						t.Errorf("%s: %d declarations matching %s, want 1", c.dir, got, re)
					}
				}
				if c.dir == "solutions" {
					if m := solvedVars[0].FindStringSubmatch(all.String()); m != nil && m[1] != nb.image {
						t.Errorf("loads %s, want %s", m[1], nb.image)
					}
					if !strings.Contains(all.String(), labelPrintf) {
						t.Errorf("no %s", labelPrintf)
					}
				}
			}
		})
	}
	// Every notebook in the folders is one of ours (the fine-tuning ones are checked in finetune_test.go).
	for _, dir := range []string{"notebooks", "solutions"} {
		files, err := nbrun.Discover(filepath.Join(rootDir, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			name := filepath.Base(f)
			if !slices.ContainsFunc(book, func(nb notebook) bool { return nb.file == name }) && !slices.Contains(finetuneNotebooks, name) {
				t.Errorf("%s/%s is not a Chapter 8 prediction notebook this test knows", dir, name)
			}
		}
	}
}

// TestPercentLineMatchesPython checks the notebooks' Printf against Python: Keras' scores are
// NumPy float32 values; under NumPy 1.24, score*100 with a Python int is computed in float64, and
// '%.2f' rounds the exact binary value correctly, as Go's %.2f does.
func TestPercentLineMatchesPython(t *testing.T) {
	testenv.Python(t, "numpy")
	scores := []float32{0, 1, 0.97680503, 0.30524516, 0.8013074, 0.012848727, 0.0009799759, 1e-8,
		0.00125, 0.00375, 0.105, 0.125, 0.995, 0.99995, 0.5, 0.015, 0.025}
	rng := rand.New(rand.NewPCG(8, 1))
	for range 5000 {
		scores = append(scores, rng.Float32())
	}
	// Scores whose float64 product lies next to a rounding boundary x.xx5.
	for k := range 2000 {
		scores = append(scores, float32((float64(k)+0.5)/10000))
	}
	var in strings.Builder
	for _, s := range scores {
		fmt.Fprintf(&in, "%08x\n", math.Float32bits(s))
	}
	script := `
import struct, sys
import numpy as np
for line in sys.stdin:
    s = np.float32(struct.unpack('<f', bytes.fromhex(line.strip())[::-1])[0])
    print('%s (%.2f%%)' % ('x', s*100))
`
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(want) != len(scores) {
		t.Fatalf("python printed %d lines for %d scores", len(want), len(scores))
	}
	bad := 0
	for i, s := range scores {
		got := fmt.Sprintf("%s (%.2f%%)", "x", float64(s)*100)
		if got != want[i] && bad < 10 {
			t.Errorf("score %v (%08x): Go %q, Python %q", s, math.Float32bits(s), got, want[i])
			bad++
		}
	}
}

// oracle holds the reference data the executed notebooks are compared with.
type oracle struct {
	dir      string
	images   map[string]int       // book image → row in the reference arrays
	pixels   []float32            // preprocessed images (7, 224, 224, 3), BGR, mean-subtracted
	probs    map[string][]float32 // model → (7, 1000) softmax
	top5     map[string][][]int   // model → per image, the reference's top-5 class indices
	gap      map[string]float64   // model → PyTorch float32 vs float64 gap
	classes  map[int][2]string    // ImageNet index → (wnid, label), Keras' class index
	arrays   map[string]string    // book image → NumPy's repr of its preprocessed batch
	standIns map[string]string    // model → stand-in checkpoint path
	goldens  map[string]string    // model → Keras' summary text
}

func loadOracle(t *testing.T) *oracle {
	t.Helper()
	dir := reference.Dir(t)
	testenv.Python(t, "numpy")
	o := &oracle{dir: dir, images: map[string]int{}, probs: map[string][]float32{}, top5: map[string][][]int{},
		gap: map[string]float64{}, classes: map[int][2]string{}, arrays: map[string]string{},
		standIns: map[string]string{}, goldens: map[string]string{}}
	m, err := reference.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range m.Images {
		o.images[im.Name] = i
	}
	if _, o.pixels, err = npy.ReadFile(filepath.Join(dir, reference.ImagesFile)); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, reference.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var per map[string]json.RawMessage
	if err := json.Unmarshal(raw, &per); err != nil {
		t.Fatal(err)
	}
	for model, f := range map[string]string{"vgg16": reference.VGG16Probs, "resnet50": reference.ResNet50Probs} {
		if _, o.probs[model], err = npy.ReadFile(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
		var e struct {
			Top5 [][]int `json:"top5_index"`
			Gap  float64 `json:"float32_vs_float64_max_abs_prob_diff"`
		}
		if err := json.Unmarshal(per[model], &e); err != nil || len(e.Top5) != len(m.Images) {
			t.Fatalf("manifest entry for %s: %v", model, err)
		}
		o.top5[model], o.gap[model] = e.Top5, e.Gap
	}
	o.standIns["vgg16"] = filepath.Join(dir, weights.VGG16)
	o.standIns["resnet50"] = filepath.Join(dir, weights.ResNet50)
	// Keras' own class index (md5 checked in kernelext's tests).
	b, err := os.ReadFile(filepath.Join(rootDir, "kernelext", "imagenet_class_index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string][2]string
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for k, v := range idx {
		i, _ := strconv.Atoi(k)
		o.classes[i] = v
	}
	for model, golden := range map[string]string{"vgg16": "summary_vgg16.txt", "resnet50": "summary_resnet50.txt"} {
		b, err := os.ReadFile(filepath.Join(rootDir, "kernelext", "applications", "testdata", golden))
		if err != nil {
			t.Fatal(err)
		}
		o.goldens[model] = string(b)
	}
	// NumPy's repr of each preprocessed batch, as a Jupyter cell shows transformed_image.
	script := `
import sys
import numpy as np
a = np.load(sys.argv[1])
for i in range(a.shape[0]):
    sys.stdout.write(repr(a[i:i+1]) + '\n\x00')
`
	out, err := exec.Command(python, "-c", script, filepath.Join(dir, reference.ImagesFile)).Output()
	if err != nil {
		t.Fatalf("numpy repr: %v", err)
	}
	reprs := strings.Split(string(out), "\x00")
	for name, i := range o.images {
		o.arrays[name] = reprs[i]
	}
	return o
}

// TestNotebooksExecute grades every prediction notebook through the grader (Jupyter and GoNB in
// its sandbox, on the pure-Go backend with the stand-in checkpoints): each exercise and solved
// activity scores full marks and prints the book's steps in the book's formats; each student
// activity, untouched, runs without errors, prints its TODO hints and scores nothing.
func TestNotebooksExecute(t *testing.T) {
	testenv.Long(t, "grades seven notebooks through Jupyter (about four minutes on two busy cores)")
	o := loadOracle(t)
	for _, nb := range book {
		if !nb.activity { // the exercise students open is the graded file, byte for byte
			a, errA := os.ReadFile(filepath.Join(rootDir, "notebooks", nb.file))
			b, errB := os.ReadFile(filepath.Join(rootDir, "solutions", nb.file))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("notebooks/%s and solutions/%s differ (%v, %v)", nb.file, nb.file, errA, errB)
			}
		}
		runs := graded(t, nb.id)
		t.Run("solutions/"+nb.file, func(t *testing.T) {
			r := runs["solutions/"+nb.file]
			checkSolved(t, o, nb, r.executedCopy(t))
			checkScore(t, r)
		})
		if nb.activity {
			t.Run("notebooks/"+nb.file, func(t *testing.T) {
				r := runs["notebooks/"+nb.file]
				checkStudent(t, r.executedCopy(t))
				checkScore(t, r)
			})
		}
	}
}

var (
	tupleRe = regexp.MustCompile(`^ *\('(n\d{8})', ('[^']*'|"[^"]*"), ([0-9.e+-]+)\)(,|\]\])$`)
	lineRe  = regexp.MustCompile(`^(\S+) \((\d+\.\d\d)%\)$`)
	arrayRe = regexp.MustCompile(`(?s)array\(.*?dtype=float32\)`)
)

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// checkSolved checks an executed exercise or solved activity against the book's formats and
// the reference values.
func checkSolved(t *testing.T, o *oracle, nb notebook, n *nbrun.Notebook) {
	row := o.images[nb.image]
	var stdout []string
	count := map[string]int{}
	pngs := 0
	for _, c := range n.CodeCells() {
		// The grader's per-variable cells run only if the cell reading all variables failed.
		if c.Conditional {
			if c.ExecutionCount != 0 {
				t.Errorf("cell %d, a grader's fallback cell, ran: the cell reading all variables failed", c.Index)
			}
			continue
		}
		if c.ExecutionCount == 0 {
			t.Errorf("cell %d did not run", c.Index)
		}
		for _, l := range lines(c.Stdout) {
			count[l]++
		}
		stdout = append(stdout, c.Stdout)
		for _, p := range c.PNGs {
			pngs++
			checkImage(t, o, row, p)
		}
	}
	all := strings.Join(stdout, "")
	if pngs != 1 {
		t.Errorf("%d inline PNG images, want 1 (the loaded image)", pngs)
	}
	for _, shape := range []string{"(224, 224, 3)", "(1, 224, 224, 3)", "(1, 1000)"} {
		if count[shape] != 1 {
			t.Errorf("%q printed %d times, want once", shape, count[shape])
		}
	}
	// The grader's sandbox holds its own copy of the stand-in: the folder is the sandbox's, the
	// file the checkpoint's.
	weightsRe := regexp.MustCompile(`^weights: stand-in checkpoint from \$` + weights.WeightsDirEnv + ` \(/.+/` +
		regexp.QuoteMeta(filepath.Base(o.standIns[nb.model])) + `\) — predictions are NOT the book's ImageNet results$`)
	var weightsLine string
	for l, c := range count {
		if weightsRe.MatchString(l) {
			if weightsLine != "" || c != 1 {
				t.Errorf("the weights line is printed more than once: %q, %q", weightsLine, l)
			}
			weightsLine = l
		}
	}
	if weightsLine == "" {
		t.Errorf("the weights line is missing; want one matching %s", weightsRe)
	}
	if nb.summary {
		want := weightsLine + "\n" + o.goldens[nb.model]
		if !slices.ContainsFunc(n.CodeCells(), func(c *nbrun.Cell) bool { return c.Stdout == want }) {
			t.Errorf("no cell prints the weights line followed by Keras' %s summary", nb.model)
		}
	}
	// The preprocessed batch, as NumPy prints it.
	if want := o.arrays[nb.image]; !strings.Contains(all, want) {
		t.Errorf("the preprocessed array is not printed as NumPy prints it; NumPy:\n%.400s", want)
	}
	checkPrediction(t, o, nb, row, all)
	// The self-check of the last cell.
	if !strings.Contains(all, "4 of 4 visible checks pass. 2 hidden check(s) are run by your instructor.\n") {
		t.Error("the self-check does not pass all visible checks")
	}
}

// checkImage compares the displayed PNG with the reference's Keras-loaded image (undoing
// preprocess_input: BGR order, ImageNet means).
func checkImage(t *testing.T, o *oracle, row int, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("inline image: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 224 || r.Dy() != 224 {
		t.Fatalf("inline image is %dx%d, want 224x224", r.Dx(), r.Dy())
	}
	means := [3]float64{103.939, 116.779, 123.68} // B, G, R
	px := o.pixels[row*224*224*3 : (row+1)*224*224*3]
	diffs := 0
	for y := range 224 {
		for x := range 224 {
			r, g, bl, _ := img.At(x, y).RGBA()
			got := [3]uint32{bl >> 8, g >> 8, r >> 8}
			for c := range 3 {
				want := math.Round(float64(px[(y*224+x)*3+c]) + means[c])
				if float64(got[c]) != want {
					diffs++
				}
			}
		}
	}
	if diffs > 0 {
		t.Errorf("inline image differs from Keras' load_img in %d values", diffs)
	}
}

func checkPrediction(t *testing.T, o *oracle, nb notebook, row int, all string) {
	t.Helper()
	tol := max(1e-5, 2*o.gap[nb.model])
	ref := o.probs[nb.model][row*1000 : (row+1)*1000]
	// y_pred's repr: every value, in NumPy's format (the other array printed is the 4-D image).
	var yRepr string
	for _, a := range arrayRe.FindAllString(all, -1) {
		if !strings.HasPrefix(a, "array([[[[") {
			if yRepr != "" {
				t.Fatal("more than one 2-D array printed")
			}
			yRepr = a
		}
	}
	if yRepr == "" {
		t.Fatal("y_pred is not printed as a NumPy array")
	}
	yRepr = strings.TrimSuffix(yRepr, "dtype=float32)")
	fields := strings.FieldsFunc(strings.TrimPrefix(yRepr, "array("), func(r rune) bool {
		return r == '[' || r == ']' || r == ',' || r == ' ' || r == '\n'
	})
	if len(fields) != 1000 {
		t.Fatalf("y_pred shows %d values, want all 1000 (NumPy does not elide 1000 elements)", len(fields))
	}
	var worst float64
	for i, f := range fields {
		v, err := strconv.ParseFloat(f, 32)
		if err != nil {
			t.Fatalf("y_pred value %q: %v", f, err)
		}
		worst = max(worst, math.Abs(v-float64(ref[i])))
	}
	if worst > tol {
		t.Errorf("y_pred differs from the PyTorch reference by %.3g > %.3g", worst, tol)
	}

	// The five decoded predictions, as Jupyter shows Keras' list of tuples.
	var tuples [][]string
	ls := lines(all)
	for i, l := range ls {
		if strings.HasPrefix(l, "[[('n") && i+5 <= len(ls) {
			for j, tl := range ls[i : i+5] {
				if j == 0 {
					tl = strings.TrimPrefix(tl, "[[")
				}
				m := tupleRe.FindStringSubmatch(tl)
				if m == nil || (j < 4) != (m[4] == ",") {
					t.Fatalf("line %d of the top-5 list is %q", j+1, ls[i+j])
				}
				tuples = append(tuples, m[1:4])
			}
			break
		}
	}
	if len(tuples) != 5 {
		t.Fatal("no top-5 list of ('nXXXXXXXX', 'label', p) tuples")
	}
	for k, tu := range tuples {
		want := o.classes[o.top5[nb.model][row][k]]
		if tu[0] != want[0] || strings.Trim(tu[1], `'"`) != want[1] {
			t.Errorf("top-5 entry %d is (%s, %s), the reference's is (%s, %s)", k+1, tu[0], tu[1], want[0], want[1])
		}
		p, err := strconv.ParseFloat(tu[2], 32)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(p - float64(ref[o.top5[nb.model][row][k]])); d > tol {
			t.Errorf("top-5 entry %d probability %s differs from the reference by %.3g", k+1, tu[2], d)
		}
	}

	// One "label (xx.xx%)" line, for the top entry.
	var found []string
	sc := bufio.NewScanner(strings.NewReader(all))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if lineRe.MatchString(sc.Text()) {
			found = append(found, sc.Text())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d lines like `label (xx.xx%%)`, want 1: %q", len(found), found)
	}
	p, _ := strconv.ParseFloat(tuples[0][2], 32)
	if want := fmt.Sprintf("%s (%.2f%%)", strings.Trim(tuples[0][1], `'"`), float64(float32(p))*100); found[0] != want {
		t.Errorf("label line %q, want %q", found[0], want)
	}
	if !strings.Contains(all, "(stand-in weights: not a result to compare with the book)\n") {
		t.Error("the result line lacks the stand-in reminder")
	}
}

// checkStudent checks an executed, unfilled activity: it ran without errors and every step
// prints a TODO hint.
func checkStudent(t *testing.T, n *nbrun.Notebook) {
	todos := 0
	for _, c := range n.CodeCells() {
		if c.ExecutionCount == 0 && !c.Conditional {
			t.Errorf("cell %d did not run", c.Index)
		}
		if strings.HasPrefix(c.Stdout, "TODO: ") {
			todos++
		}
	}
	if todos != 5 {
		t.Errorf("%d cells print a TODO hint, want 5 (steps 2 to 6)", todos)
	}
	// The self-check (the notebook's last cell; the grader appends its own after it) runs on
	// the empty variables and says what is missing.
	var last *nbrun.Cell
	for _, c := range n.CodeCells() {
		if strings.Contains(c.Source, "workbook/solutions/check\"") {
			last = c
		}
	}
	if last == nil {
		t.Fatal("no cell imports the self-check package")
	}
	if !strings.Contains(last.Stdout, "0 of 4 visible checks pass.") || !strings.Contains(last.Stdout, "transformedImage is nil") {
		t.Errorf("the self-check of the unfilled notebook prints %q", last.Stdout)
	}
}
