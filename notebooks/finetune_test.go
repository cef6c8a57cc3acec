package notebooks_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/weights"
)

// finetuneNotebooks are the fine-tuning notebooks make_finetune_notebooks.py writes: Exercise
// 8.03 and freeze-then-unfreeze. Both are worked examples, identical in notebooks/ and
// solutions/.
var finetuneNotebooks = []string{"04-exercise-8.03-vgg16-finetune.ipynb", "07-freeze-then-unfreeze.ipynb"}

func TestFinetuneNotebooksAreWhatTheGeneratorWrites(t *testing.T) {
	testenv.Python(t, "nbformat")
	out, err := exec.Command(python, filepath.Join(pkgDir, "make_finetune_notebooks.py"), "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("make_finetune_notebooks.py --check: %v\n%s", err, out)
	}
}

// The variables the grader reads, declared once at top level (so later cells recompute them —
// cheaply, from the training checkpoint and the value cache).
var finetuneVars = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^var history = `),
	regexp.MustCompile(`(?m)^var result = .*\.MustPredict\(testImage\(\)\)$`),
	regexp.MustCompile(`(?m)^var prediction = training\.BookDecision\(result\.Data\[0\]\)$`),
}

func TestFinetuneNotebookLayout(t *testing.T) {
	setup := setupCell(t)
	for _, file := range finetuneNotebooks {
		t.Run(file, func(t *testing.T) {
			student, err := os.ReadFile(filepath.Join(rootDir, "notebooks", file))
			if err != nil {
				t.Fatal(err)
			}
			solved, err := os.ReadFile(filepath.Join(rootDir, "solutions", file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(student, solved) {
				t.Error("the notebook in solutions/ differs from the one in notebooks/")
			}
			n := readNotebook(t, "notebooks", file)
			code := n.CodeCells()
			if len(code) == 0 || code[0].Source != setup {
				t.Error("the first code cell is not the setup cell of README.md")
			}
			if n.KernelName != "gonb" {
				t.Errorf("kernel %q, want gonb", n.KernelName)
			}
			var all strings.Builder
			for _, c := range code {
				all.WriteString(c.Source + "\n")
			}
			for _, re := range finetuneVars {
				if got := len(re.FindAllString(all.String(), -1)); got != 1 {
					t.Errorf("%d declarations matching %s, want 1", got, re)
				}
			}
			// The schedule knobs, training once and the cached prediction are one package call
			// each (training.ScheduleFromEnv, FineTuning.History, FineTuning.Predict), and every
			// book step is one short cell.
			for _, w := range []string{"var schedule = training.MustScheduleFromEnv()\n", ".MustHistory()\n"} {
				if !strings.Contains(all.String(), w) {
					t.Errorf("no %q", w)
				}
			}
			nonBlank := 0
			for _, c := range code {
				n := 0
				for _, l := range strings.Split(c.Source, "\n") {
					if strings.TrimSpace(l) != "" {
						n++
					}
				}
				if n > 15 {
					t.Errorf("a code cell of %d non-blank lines (at most 15):\n%s", n, c.Source)
				}
				nonBlank += n
			}
			if nonBlank > 100 {
				t.Errorf("%d non-blank lines of code in all; at most 100", nonBlank)
			}
		})
	}
}

// TestFinetuneNotebooksExecute checks both notebooks on the pure-Go backend with the stand-in
// VGG16 and the notebook's quick schedule. Exercise 8.03 runs once, through the grader (as the
// prediction notebooks do in TestNotebooksExecute): the same run earns full marks and prints
// what is checked here. Notebook 07 runs headless with WORKBOOK_QUICK=1.
func TestFinetuneNotebooksExecute(t *testing.T) {
	testenv.Long(t, "trains VGG16 in two notebooks through Jupyter (about three minutes on two busy cores)")
	env := testenv.Jupyter(t)
	ref := reference.Dir(t)
	model := filepath.Join(t.TempDir(), "model.ckpt")
	env = append(slices.Clone(env),
		"GOMLX_BACKEND=go",
		weights.WeightsDirEnv+"="+ref,
		nbcache.EnvDir+"="+t.TempDir(),
		nbcache.EnvOff+"=",
		"WORKBOOK_QUICK=1",
		"WORKBOOK_DATA=",
		"WORKBOOK_MODEL_FILE="+model,
	)
	out := t.TempDir()
	exercise := graded(t, "8.03")["solutions/"+finetuneNotebooks[0]]
	t.Chdir(t.TempDir())
	run := func(t *testing.T, file string) *nbrun.Notebook {
		t.Helper()
		res, err := nbrun.Run(context.Background(), filepath.Join(rootDir, "notebooks", file), nbrun.Options{
			OutDir: out, CellTimeout: 10 * time.Minute, NoHTML: true, Env: env})
		if err != nil {
			log := ""
			if res != nil && res.Log != "" {
				b, _ := os.ReadFile(res.Log)
				log = string(b)
			}
			t.Fatalf("%v\nkernel log:\n%s", err, log)
		}
		t.Logf("%s: %v", file, res.Duration.Round(time.Second))
		if e := res.Cells.FirstError(); e != nil {
			t.Fatal(e)
		}
		for _, c := range res.Cells.CodeCells() {
			if c.ExecutionCount == 0 {
				t.Errorf("cell %d did not run", c.Index)
			}
		}
		return res.Cells
	}
	standIn := fmt.Sprintf("weights: stand-in checkpoint from $%s (%s) — predictions are NOT the book's ImageNet results",
		weights.WeightsDirEnv, filepath.Join(ref, weights.VGG16))

	t.Run(finetuneNotebooks[0], func(t *testing.T) {
		r := exercise
		n := r.executedCopy(t)
		checkScore(t, r)
		all := stdoutOf(n)
		golden, err := os.ReadFile(filepath.Join(rootDir, "kernelext", "applications", "testdata", "summary_vgg16.txt"))
		if err != nil {
			t.Fatal(err)
		}
		// The grader's sandbox holds its own copy of the stand-in: the folder is the sandbox's.
		weightsRe := regexp.MustCompile(`^weights: stand-in checkpoint from \$` + weights.WeightsDirEnv + ` \(/.+/` +
			regexp.QuoteMeta(weights.VGG16) + `\) — predictions are NOT the book's ImageNet results\n$`)
		if !slices.ContainsFunc(n.CodeCells(), func(c *nbrun.Cell) bool {
			line, ok := strings.CutSuffix(c.Stdout, string(golden))
			return ok && weightsRe.MatchString(line)
		}) {
			t.Error("no cell prints the weights line followed by Keras' VGG16 summary")
		}
		for _, w := range []string{
			"epochs=1 steps_per_epoch=2 validation_steps=1 batch_size=2\n",
			"Found 80 images belonging to 2 classes.\n", "Found 32 images belonging to 2 classes.\n",
			"class_indices: map[car:0 flower:1]\n",
			// Steps 4-7: without "predictions", frozen, with the new head.
			"fc2 (Dense)                  (None, 4096)              16781312  \n=================================================================\nTotal params: 134,260,544\nTrainable params: 134,260,544\n",
			"Total params: 134,260,544\nTrainable params: 0\nNon-trainable params: 134,260,544\n",
			"dense_1 (Dense)              (None, 1)                 4097      \n=================================================================\nTotal params: 134,264,641\nTrainable params: 4,097\nNon-trainable params: 134,260,544\n",
			"Epoch 1/1\n", "val_accuracy after epoch 1: ", "saved car-flower-classifier.ckpt\n",
			// The self-check of the last cell.
			"3 of 3 visible checks pass. 2 hidden check(s) are run by your instructor.\n",
		} {
			if !strings.Contains(all, w) {
				t.Errorf("the notebook does not print %q", w)
			}
		}
		// Trained once: the later cells read the run back from its checkpoint.
		if c := strings.Count(all, "Training; the run is saved after every epoch in "); c != 1 {
			t.Errorf("trained in %d cells, want 1", c)
		}
		checkBookPrediction(t, all)
		// The model the notebook saved, in the notebook's folder of the sandbox the grader kept.
		saved, _ := filepath.Glob(filepath.Join(r.work, "*-solved", "work", "car-flower-classifier.ckpt"))
		if len(saved) != 1 {
			t.Fatalf("%d saved models in the sandbox, want 1: %v", len(saved), saved)
		}
		info, err := training.ReadCheckpointInfo(saved[0])
		if err != nil {
			t.Fatal(err)
		}
		if info.Model != "sequential_1" || info.Iterations != 2 {
			t.Errorf("saved model: %q after %d steps, want sequential_1 after 2", info.Model, info.Iterations)
		}
	})

	t.Run(finetuneNotebooks[1], func(t *testing.T) {
		n := run(t, finetuneNotebooks[1])
		all := stdoutOf(n)
		for _, w := range []string{
			standIn + "\n",
			"Total params: 134,264,641\nTrainable params: 4,097\n",
			"Total params: 134,264,641\nTrainable params: 7,083,521\nNon-trainable params: 127,181,120\n",
			"Stage 2: [layers \"block5_\"*] unfrozen, training with Adam(learning_rate=1e-05", "Epoch 2/2\n",
		} {
			if !strings.Contains(all, w) {
				t.Errorf("the notebook does not print %q", w)
			}
		}
		// The byte-for-byte comparison of the two stages' weights.
		re := regexp.MustCompile(`(?m)^(\S+)\s+(kernel|bias)\s+(\d+) values,\s+(\d+) changed$`)
		rows := re.FindAllStringSubmatch(all, -1)
		if len(rows) != 32 { // 13 convolutions, fc1, fc2, dense_1: kernel and bias each
			t.Fatalf("%d weight comparison rows, want 32", len(rows))
		}
		for _, r := range rows {
			changed, _ := strconv.Atoi(r[4])
			trainable := strings.HasPrefix(r[1], "block5_") || r[1] == "dense_1"
			if trainable && changed == 0 {
				t.Errorf("%s/%s did not change in stage 2", r[1], r[2])
			}
			if !trainable && changed != 0 {
				t.Errorf("%s/%s changed in stage 2 (%s values) although frozen", r[1], r[2], r[4])
			}
		}
		checkBookPrediction(t, all)
	})
}

func stdoutOf(n *nbrun.Notebook) string {
	var b strings.Builder
	for _, c := range n.CodeCells() {
		b.WriteString(c.Stdout)
	}
	return b.String()
}

// checkBookPrediction checks the printed result and the book's decision made from it: a flower
// only when the output is exactly 1.
func checkBookPrediction(t *testing.T, all string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^array\(\[\[([0-9.e+-]+)\]\], dtype=float32\)\n(It is a (?:car|flower))\n`).FindStringSubmatch(all)
	if m == nil {
		t.Fatal("no `array([[p]], dtype=float32)` followed by the book's answer")
	}
	p, err := strconv.ParseFloat(m[1], 32)
	if err != nil {
		t.Fatal(err)
	}
	want := "It is a car"
	if p == 1 {
		want = "It is a flower"
	}
	if m[2] != want {
		t.Errorf("result %s printed as %q, the book's code says %q", m[1], m[2], want)
	}
	if !strings.Contains(all, "rescaled by 1/255 as in training: ") {
		t.Error("the rescaled prediction is not shown")
	}
}
