package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
)

// expectation is what one synthetic submission must score: the checks that pass (all others
// fail), and words the failing checks' reasons (or the run's problem) must contain ("a|b": one
// of them).
type expectation struct {
	pass   []string
	reason string
	// maybe are checks allowed either way (and not counted in the expected score).
	maybe []string
}

var (
	allChecks         = []string{"transformed-shape", "transformed-values", "prediction-shape", "prediction-values", "label-top5", "printed-top1"}
	transformedChecks = []string{"transformed-shape", "transformed-values"}
)

func without(list []string, drop ...string) []string {
	var out []string
	for _, x := range list {
		keep := true
		for _, d := range drop {
			keep = keep && x != d
		}
		if keep {
			out = append(out, x)
		}
	}
	return out
}

// TestBatchOfTwenty grades twenty-one submissions of Exercise 8.01 with two jobs: two correct
// ones, the typical mistakes, and every kind of hostile notebook. Each must get exactly the
// checks it deserves, with the reason; the batch must finish; nothing outside the sandboxes may
// change; no process may outlive its sandbox; and hidden checks must not leak into feedback.
func TestBatchOfTwenty(t *testing.T) {
	testenv.Long(t, "grades twenty notebooks through Jupyter (several minutes)")
	needGrading(t)
	spec, ref := testReference(t, "8.01")
	repo, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	checksFile := filepath.Join(repo, "solutions", "checks", "exercise-8.01.json")
	mark := fmt.Sprintf("/tmp/workbook-grade-escape-%d", time.Now().UnixNano())
	solved := solvedCells(spec)
	const (
		preprocessed = "kernelext.PreprocessInput(kernelext.ExpandDims(kernelext.ImgToArray(newImage), 0))"
		yPredDecl    = "var yPred = predict(transformedImage)"
	)
	insertAfter := func(cells []string, i int, cell string) []string {
		out := append([]string(nil), cells[:i+1]...)
		out = append(out, cell)
		return append(out, cells[i+1:]...)
	}
	top1 := fmt.Sprintf("%s (%.2f%%)\n", ref.Top[0][0].Label, float64(ref.Top[0][0].Score)*100)

	// Oracles for the mistakes whose top classes depend on the (random stand-in) weights.
	raw := ref.Raw
	mistakeTop := func(model string, x *kernelext.Array) []string {
		probs, err := modelFor(t, model).Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		top, err := kernelext.DecodePredictions(probs, 5)
		if err != nil {
			t.Fatal(err)
		}
		pass := []string{"prediction-shape"}
		if grade.Evaluate(checkByID(t, spec, "label-top5"), &grade.Value{Name: "label", Type: grade.TypePredictions, Predictions: top}, ref, "").Passed {
			pass = append(pass, "label-top5")
		}
		line := fmt.Sprintf("%s (%.2f%%)\n", top[0][0].Label, float64(top[0][0].Score)*100)
		if grade.Evaluate(checkByID(t, spec, "printed-top1"), nil, ref, line).Passed {
			pass = append(pass, "printed-top1")
		}
		return pass
	}
	rgb := reverseChannels(ref.Preprocessed)

	tamperQuiet := `import (
	"os"
	"os/exec"
	"syscall"
)

%%
_ = os.WriteFile("CHECKS", []byte("{}"), 0o644)
_ = os.WriteFile("REPO/go.mod", []byte("module evil\n"), 0o644)
_ = os.WriteFile("REPO/evil.txt", []byte("x"), 0o644)
for n := 1; n <= 40; n++ {
	for _, s := range []string{"solved", "top1", "missing-var", "wrong-type"} {
		base := fmt.Sprintf("WORK/%03d-%s", n, s)
		_ = os.WriteFile(base+".export/yPred.json", []byte("{}"), 0o644)
		_ = os.WriteFile(base+".out/submission.ipynb", []byte("{}"), 0o644)
		_ = os.WriteFile(base+"/work/submission.ipynb", []byte("{}"), 0o644)
	}
}
_ = os.WriteFile("MARK", []byte("x"), 0o644)
if _, err := os.ReadFile("SOLVED"); err == nil {
	fmt.Println("solved notebooks: readable")
} else {
	fmt.Println("solved notebooks: hidden")
}
if b, err := exec.Command("git", "-c", "safe.directory=*", "-C", "REPO", "show", "HEAD:SOLVEDREL").Output(); err == nil && len(b) > 0 {
	fmt.Println("solved notebooks in git: readable")
} else {
	fmt.Println("solved notebooks in git: hidden")
}
_ = syscall.Kill(1, syscall.SIGKILL)
daemon := exec.Command("sleep", "3600")
daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
_ = daemon.Start()
fmt.Println("tampering attempted")
`
	solvedFile := filepath.Join(repo, "solutions", "01-exercise-8.01-vgg16-pizza.ipynb")
	tamperQuiet = strings.NewReplacer("CHECKS", checksFile, "REPO", repo, "WORK", work, "MARK", mark, "SOLVEDREL", "solutions/"+filepath.Base(solvedFile),
		"SOLVED", solvedFile).Replace(tamperQuiet)

	subs := map[string][]byte{}
	want := map[string]expectation{}
	add := func(name string, cells []string, e expectation) {
		subs[name] = notebookJSON(cells)
		want[name] = e
	}
	add("solved", solved, expectation{pass: allChecks})
	add("solved-selfcheck", append(append([]string(nil), solved...),
		"import \"github.com/transfer-learning-go/workbook/solutions/check\"\n\n%%\ncheck.Exercise801(transformedImage, yPred, label)\n"),
		expectation{pass: allChecks})
	add("rgb-unflipped", variant(t, solved,
		"var transformedImage = "+preprocessed, "var transformedImage = subtractMeansRGB(kernelext.ExpandDims(kernelext.ImgToArray(newImage), 0))\n\n"+
			"// subtractMeansRGB subtracts the ImageNet means but keeps the RGB channel order.\n"+
			"func subtractMeansRGB(x *kernelext.Array) *kernelext.Array {\n\tout := x.Clone()\n\tmeans := []float32{123.68, 116.779, 103.939}\n"+
			"\tfor i := range out.Data {\n\t\tout.Data[i] -= means[i%3]\n\t}\n\treturn out\n}"),
		expectation{pass: append([]string{"transformed-shape"}, mistakeTop("vgg16", rgb)...), reason: "RGB order"})
	add("preprocess-skipped", variant(t, solved, preprocessed, "kernelext.ExpandDims(kernelext.ImgToArray(newImage), 0)"),
		expectation{pass: append([]string{"transformed-shape"}, mistakeTop("vgg16", raw)...), reason: "before preprocess_input"})
	add("target-size-forgotten", variant(t, solved, ", kernelext.TargetSize(224, 224))", ")"),
		expectation{reason: "panic"})
	add("top1", variant(t, solved, "MustDecodePredictions(yPred, 5)", "MustDecodePredictions(yPred, 1)"),
		expectation{pass: without(allChecks, "label-top5"), reason: "lists 1 class;"})
	add("model-swapped", variant(t, solved, "applications.VGG16()", "applications.ResNet50()"),
		expectation{pass: append(transformedChecks, mistakeTop("resnet50", ref.Preprocessed)...), reason: "not within"})
	add("compile-error", variant(t, solved, yPredDecl, yPredDecl+" + 1"),
		expectation{pass: transformedChecks, reason: "yPred is not defined"})
	// The first code cell, the setup cell, does not compile (its "!" lost, GoNB reads it as Go):
	// it never points the module at the checkout, so no later cell, the grader's neither,
	// finds the workbook's packages. GoNB says `go get` exited with status 1; the run's problem
	// must name the cell and the compiler's message, not an os.Exit.
	add("compile-error-first-cell", variant(t, solved, SetupCell, strings.TrimPrefix(SetupCell, "!")),
		expectation{reason: "the notebook does not compile: In [1], line 1: expected declaration"})
	add("panic-init", variant(t, solved, yPredDecl, "var yPred = explode()\n\nfunc explode() *kernelext.Array { panic(\"student bug: boom\") }"),
		expectation{reason: "student bug: boom"})
	add("exit-init", insertAfter(solved, 3, "import \"os\"\n\nvar _ = quit()\n\nfunc quit() int {\n\tos.Exit(0)\n\treturn 0\n}\n"),
		expectation{reason: "os.Exit"})
	// The loop comes after the cell that prints the answer: that output still counts. The cell
	// limit stops it, long before the notebook's. It sleeps rather than spins: the limit stops
	// both alike, and a spinning cell would take a core from the rest of the batch until then.
	add("infinite-loop", append(append([]string(nil), solved...), "import \"time\"\n\n%%\nfor {\n\ttime.Sleep(time.Second)\n}\n"),
		expectation{pass: []string{"printed-top1"}, reason: "did not finish within 45s, the limit for one cell"})
	add("memory-bomb", insertAfter(solved, 3, "var hog = allocate()\n\nfunc allocate() [][]byte {\n\tvar chunks [][]byte\n\tfor {\n"+
		"\t\tb := make([]byte, 256<<20)\n\t\tfor i := range b {\n\t\t\tb[i] = 1\n\t\t}\n\t\tchunks = append(chunks, b)\n\t}\n}\n"),
		// Every cell after the declaration re-runs it: the run stops at the second kill.
		expectation{reason: "and the run was stopped in cell"})
	// The flood ends with the memory limit (the output piles up in the kernel and the driver),
	// the file-size limit (the executed notebook) or the timeout, whichever comes first.
	add("output-flood", append(append([]string(nil), solved...),
		"import \"strings\"\n\n%%\nline := strings.Repeat(\"flood \", 100)\nfor {\n\tfmt.Println(line)\n}\n"),
		expectation{maybe: []string{"printed-top1"}, reason: "memory limit|did not finish|killed"})
	add("tamper-strict", insertAfter(solved, 1, "import \"os\"\n\nvar _ = tamper()\n\nfunc tamper() int {\n"+
		"\tif err := os.WriteFile(\""+checksFile+"\", []byte(\"{}\"), 0o644); err != nil {\n\t\tpanic(err)\n\t}\n\treturn 0\n}\n"),
		expectation{reason: "read-only file system"})
	add("tamper-quiet", append(append([]string(nil), solved...), tamperQuiet), expectation{pass: allChecks})
	add("network", insertAfter(solved, 1, "import (\n\t\"net\"\n\t\"time\"\n)\n\nvar _ = dial()\n\nfunc dial() int {\n"+
		"\tc, err := net.DialTimeout(\"tcp\", \"1.1.1.1:80\", 5*time.Second)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tc.Close()\n\treturn 0\n}\n"),
		expectation{reason: "network is unreachable"})
	add("missing-var", variant(t, solved, "yPred", "yPrediction"),
		expectation{pass: without(allChecks, "prediction-shape", "prediction-values"), reason: "yPred is not defined"})
	add("wrong-type", variant(t, solved, yPredDecl, yPredDecl+".Data",
		"MustDecodePredictions(yPred, 5)", "MustDecodePredictions(&kernelext.Array{Shape: []int{1, len(yPred)}, Data: yPred}, 5)",
		"fmt.Println(yPred.ShapeString())", "fmt.Println(len(yPred))"),
		expectation{pass: without(allChecks, "prediction-shape", "prediction-values"), reason: "has type []float32"})
	fake := variant(t, solved, "decodedLabel := label[0][0]\nfmt.Printf(\"%s (%.2f%%)\\n\", decodedLabel.Label, float64(decodedLabel.Score)*100)", "fmt.Println(\"done\")")
	subs["fake-outputs"] = notebookJSON(fake, top1)
	want["fake-outputs"] = expectation{pass: without(allChecks, "printed-top1"), reason: "has no line like"}
	subs["not-a-notebook"] = []byte("this is not a notebook\n")
	want["not-a-notebook"] = expectation{reason: "not a notebook"}
	if len(subs) != 21 {
		t.Fatalf("%d submissions; the test is about twenty-one", len(subs))
	}

	dir := t.TempDir()
	var paths []string
	for name, b := range subs {
		paths = append(paths, writeNotebook(t, dir, name, b))
	}
	sort.Strings(paths)
	protected := []string{checksFile, filepath.Join(repo, "go.mod")}
	before := hashes(t, protected)

	out := t.TempDir()
	start := time.Now()
	// 2 GiB: about three times what a correct 8.01 submission peaks at (kernel, compiler and
	// VGG16 together, about 700 MiB), so the memory bomb and the output flood reach the limit
	// in half the time the default's 4 GiB would take.
	rep, err := Grade(context.Background(), Options{
		Spec: spec, Reference: ref, Repo: repo, Jobs: 2, Timeout: 2 * time.Minute, CellTimeout: 45 * time.Second, Memory: 2 << 30, WorkDir: work,
		ExecutedDir: filepath.Join(out, "executed"), HideDirs: []string{dir, out}, NoWarmup: true, Log: testLog{t},
	}, paths)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	t.Logf("graded %d submissions with 2 jobs in %v", len(rep.Results), wall.Round(time.Second))
	if err := rep.WriteFiles(out); err != nil {
		t.Fatal(err)
	}

	for _, r := range rep.Results {
		e := want[r.Student]
		passing := map[string]bool{}
		for _, id := range e.pass {
			passing[id] = true
		}
		mentions := func(s string) bool {
			for _, alt := range strings.Split(e.reason, "|") {
				if strings.Contains(s, alt) {
					return true
				}
			}
			return false
		}
		reasonSeen := e.reason == "" || mentions(r.Problem)
		maybe := map[string]bool{}
		for _, id := range e.maybe {
			maybe[id] = true
		}
		for _, c := range r.Checks {
			if c.Passed != passing[c.ID] && !maybe[c.ID] {
				t.Errorf("%s: %s passed=%v, want %v (%s)", r.Student, c.ID, c.Passed, passing[c.ID], c.Detail)
			}
			if !c.Passed && mentions(c.Detail) {
				reasonSeen = true
			}
		}
		if !reasonSeen {
			t.Errorf("%s: no failing check or problem mentions %q", r.Student, e.reason)
			logChecks(t, r)
		}
		var score float64
		for _, c := range r.Checks {
			if maybe[c.ID] && c.Passed {
				score += c.Points
			}
		}
		for _, id := range e.pass {
			for _, c := range spec.Checks {
				if c.ID == id {
					score += c.Points
				}
			}
		}
		if r.Score != score {
			t.Errorf("%s: score %v, want %v", r.Student, r.Score, score)
		}
		t.Logf("%-22s %4.1f  %5.1fs  %s", r.Student, r.Score, r.Duration.Seconds(), firstLine(r.Problem))
		if testing.Verbose() && r.Score < r.MaxScore {
			logChecks(t, r)
		}
	}

	if r := findResult(rep, "compile-error-first-cell"); r == nil ||
		!strings.HasPrefix(r.Problem, "the notebook does not compile: In [1], line 1: expected declaration, found '*'") ||
		!strings.Contains(r.Problem, "the setup cell") || strings.Contains(r.Problem, "os.Exit") {
		t.Errorf("a first cell that does not compile: result %+v, want the cell and the compiler's message as the problem", r)
	} else {
		for _, c := range r.Checks {
			if c.ID != "printed-top1" && (!strings.HasPrefix(c.Detail, "the notebook does not compile, so the grader cannot read") || strings.Contains(c.Detail, "os.Exit")) {
				t.Errorf("compile-error-first-cell: %s says %q", c.ID, c.Detail)
			}
		}
	}
	// The solved notebooks stay out of reach while a submission runs.
	if r := findResult(rep, "tamper-quiet"); r == nil || r.Executed == "" {
		t.Error("tamper-quiet left no executed notebook")
	} else if b, err := os.ReadFile(r.Executed); err != nil || !strings.Contains(string(b), "solved notebooks: hidden") {
		t.Errorf("the submission could read %s during grading (err %v)", solvedFile, err)
	} else if !strings.Contains(string(b), "solved notebooks in git: hidden") {
		t.Errorf("the submission could read %s from the checkout's git history during grading", solvedFile)
	}

	// Nothing outside the sandboxes changed; nothing escaped them.
	if after := hashes(t, protected); !equalStrings(before, after) {
		t.Errorf("protected files changed: %v -> %v", before, after)
	}
	for _, p := range []string{filepath.Join(repo, "evil.txt"), mark} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a submission created %s", p)
			os.Remove(p)
		}
	}
	if procs := sandboxProcesses(t, work); len(procs) > 0 {
		t.Errorf("processes outlived their sandbox: %v", procs)
	}
	if entries, _ := os.ReadDir(work); len(entries) > 0 {
		t.Errorf("sandbox folders left behind: %d entries in %s", len(entries), work)
	}

	// The gradebook has a row per student and the right totals.
	f, err := os.ReadFile(filepath.Join(out, "gradebook.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(f)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(subs)+1 || rows[0][0] != "student" || rows[0][len(allChecks)+1] != "total" {
		t.Fatalf("gradebook: %d rows, header %v", len(rows), rows[0])
	}
	for _, row := range rows[1:] {
		r := findResult(rep, row[0])
		if total, _ := strconv.ParseFloat(row[len(allChecks)+1], 64); r == nil || total != r.Score {
			t.Errorf("gradebook row %v disagrees with the report", row)
		}
	}
	// Hidden checks never show in feedback: not their id, name, advice or finding.
	for _, r := range rep.Results {
		fb, err := os.ReadFile(filepath.Join(out, "feedback", r.Student+".md"))
		if err != nil {
			t.Fatal(err)
		}
		assertNoHidden(t, r, string(fb), spec)
	}
}

func checkByID(t *testing.T, spec *grade.Spec, id string) *grade.Check {
	t.Helper()
	for i := range spec.Checks {
		if spec.Checks[i].ID == id {
			return &spec.Checks[i]
		}
	}
	t.Fatalf("%s has no check %q", spec.ID, id)
	return nil
}

func findResult(rep *Report, student string) *Result {
	for _, r := range rep.Results {
		if r.Student == student {
			return r
		}
	}
	return nil
}

// assertNoHidden fails if feedback mentions anything specific to a hidden check.
func assertNoHidden(t *testing.T, r *Result, feedback string, spec *grade.Spec) {
	t.Helper()
	visibleText := ""
	for _, c := range r.Checks {
		if !c.Hidden {
			visibleText += c.Detail + "\n" + c.Feedback + "\n" + c.Name + "\n"
		}
	}
	for i, c := range spec.Checks {
		if !c.Hidden {
			continue
		}
		for _, s := range []string{c.ID, c.Name, c.Feedback, r.Checks[i].Detail} {
			// A run's problem is shown once and is the same for every check; it is not about
			// the hidden check.
			if s == "" || s == r.Problem || strings.Contains(visibleText, s) {
				continue
			}
			if strings.Contains(feedback, s) {
				t.Errorf("%s: feedback reveals hidden check %s: %q", r.Student, c.ID, s)
			}
		}
	}
}

func hashes(t *testing.T, paths []string) []string {
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%x", sha256.Sum256(b)))
	}
	return out
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// sandboxProcesses lists live processes running as a sandbox UID (see randomUID) whose
// environment points into work — this batch's sandboxes, not those of another grader running at
// the same time.
func sandboxProcesses(t *testing.T, work string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "Uid:" {
				env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
				if uid, _ := strconv.Atoi(f[1]); uid >= 1_800_000_000 && uid < 2_000_000_000 && bytes.Contains(env, []byte(work)) {
					cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
					out = append(out, fmt.Sprintf("%s (uid %d): %s", e.Name(), uid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
				}
			}
		}
	}
	return out
}

// reverseChannels swaps the last axis end for end (RGB <-> BGR).
func reverseChannels(a *kernelext.Array) *kernelext.Array {
	out := a.Clone()
	for i := 0; i+3 <= len(out.Data); i += 3 {
		out.Data[i], out.Data[i+2] = out.Data[i+2], out.Data[i]
	}
	return out
}
