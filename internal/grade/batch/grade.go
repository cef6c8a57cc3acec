package batch

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade"
)

// SetupCell is the first code cell of every workbook notebook (notebooks/README.md): it points
// GoNB's temporary module at the checkout the notebook sits in.
const SetupCell = `!*go -C "$GONB_DIR" run github.com/transfer-learning-go/workbook/cmd/nbsetup`

// warmupCell imports what the exercises' notebooks and the self-checks import, so that their
// compiled packages land in the build cache template.
const warmupCell = `import (
	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
	"github.com/transfer-learning-go/workbook/kernelext/training"
	"github.com/transfer-learning-go/workbook/solutions/check"
)

var wbgradeWarmup = kernelext.NewArray(1, 2)

%%
_, _, _, _, _ = datasets.PredictionDir, applications.VGG16, nbcache.Enabled, check.Run, training.NewAdam
fmt.Println("warm-up", wbgradeWarmup.ShapeString())
`

// warmup runs the grader's own notebook in a sandbox exactly like a submission's. It proves
// that the kernel, the sandbox and the export cells work before any student is graded, and adds
// what it compiled to the build cache template (it is trusted code: the only source of
// template entries).
func (g *grader) warmup(ctx context.Context) error {
	doc := &notebookDoc{raw: map[string]any{"nbformat": 4.0, "nbformat_minor": 5.0, "metadata": map[string]any{}}}
	for _, src := range []string{SetupCell, warmupCell} {
		doc.cells = append(doc.cells, map[string]any{"cell_type": "code", "metadata": map[string]any{}, "source": src,
			"outputs": []any{}, "execution_count": nil, "id": fmt.Sprintf("warmup-%d", len(doc.cells)+1)})
	}
	var added int
	out, err := g.runNotebook(ctx, "warmup", doc, []string{"wbgradeWarmup"}, func(gocache string) error {
		var err error
		added, err = mergeCache(gocache, g.template)
		return err
	})
	if err != nil {
		return err
	}
	if out.executedCopy != "" {
		defer os.Remove(out.executedCopy)
	}
	v := out.values["wbgradeWarmup"]
	if v == nil || v.Missing != "" || v.Array == nil || len(v.Array.Shape) != 2 {
		reason := "no value"
		if v != nil && v.Missing != "" {
			reason = v.Missing
		}
		detail := ""
		if out.result != nil {
			for _, e := range out.result.Errors {
				detail += "\n" + e.Error()
			}
			if out.result.Log != "" {
				detail += "\n(kernel log: " + out.result.Log + ")"
			}
		}
		return fmt.Errorf("grade: the grader's own warm-up notebook failed: %s%s", reason, detail)
	}
	fmt.Fprintf(g.log, "grade %s: warm-up done; %d new build cache entries\n", g.opt.Spec.ID, added)
	return nil
}

// gradeOne grades one submission. The error is for failures of the grader only.
func (g *grader) gradeOne(ctx context.Context, student, path string) (*Result, error) {
	spec, ref := g.opt.Spec, g.opt.Reference
	res := &Result{Student: student, Path: path, MaxScore: spec.TotalPoints()}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()

	fail := func(reason string) *Result {
		res.Problem = reason
		for _, c := range spec.Checks {
			res.Checks = append(res.Checks, CheckResult{ID: c.ID, Name: c.Name, Hidden: c.Hidden, Points: c.Points,
				Detail: reason, Feedback: c.Feedback})
		}
		return res
	}
	b, err := readLimited(path, maxNotebookBytes)
	if err != nil {
		return fail("the submission could not be read: " + err.Error()), nil
	}
	doc, err := parseNotebookDoc(b)
	if err != nil {
		return fail("the submission is " + err.Error()), nil
	}
	out, err := g.runNotebook(ctx, student, doc, spec.Variables(), nil)
	if err != nil {
		return nil, err
	}
	res.Problem, res.PeakMemory = out.problem, out.peak
	for i := range spec.Checks {
		c := &spec.Checks[i]
		oc := grade.Evaluate(c, out.values[c.Variable], ref, out.output)
		cr := CheckResult{ID: c.ID, Name: c.Name, Hidden: c.Hidden, Points: c.Points, Passed: oc.Passed, Detail: oc.Detail}
		if oc.Passed {
			cr.Score = c.Points
			res.Score += c.Points
		} else {
			cr.Feedback = c.Feedback
		}
		res.Checks = append(res.Checks, cr)
	}
	if g.opt.ExecutedDir == "" && out.executedCopy != "" {
		os.Remove(out.executedCopy)
	}
	if g.opt.ExecutedDir != "" && out.executedCopy != "" {
		dst := filepath.Join(g.opt.ExecutedDir, student+".ipynb")
		if err := os.MkdirAll(g.opt.ExecutedDir, 0o755); err != nil {
			return nil, fmt.Errorf("grade: %v", err)
		}
		if err := os.Rename(out.executedCopy, dst); err != nil {
			if err := CopyFile(out.executedCopy, dst, 0o644); err != nil {
				return nil, fmt.Errorf("grade: keep executed notebook: %v", err)
			}
		}
		res.Executed = dst
	}
	return res, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, limit>>20)
	}
	return b, nil
}
