package notebooks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/internal/grade/batch"
	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/solutions/checks"
	"github.com/transfer-learning-go/workbook/weights"
)

// Each notebook runs once per test binary, through the grader: its sandbox executes it, the
// grader scores it, and the executed copy it keeps is what the format checks of
// TestNotebooksExecute read. So one run proves both that a solved notebook prints the book's
// steps and that it earns full marks.

func TestMain(m *testing.M) {
	// The grader re-executes this test binary as its sandbox launcher.
	sandbox.Init()
	os.Exit(m.Run())
}

// gradedRun is one notebook as the grader ran it.
type gradedRun struct {
	spec     *grade.Spec
	result   *batch.Result
	executed *nbrun.Notebook
	// work holds the sandbox folders of a fine-tuning exercise, kept after grading so that
	// the model file its notebook saves can be read back ("" for the others).
	work string
}

var (
	gradedMu   sync.Mutex
	gradedRuns = map[string]*gradedRun{} // "solutions/FILE" or "notebooks/FILE"
	warmedUp   bool
)

// graded grades, once per test binary, the solved notebook of exercise or activity id and, for
// an activity, the untouched student version (the same file name in notebooks/), on the
// pure-Go backend with the stand-in checkpoints; it returns the runs by "DIR/FILE".
func graded(t *testing.T, id string) map[string]*gradedRun {
	t.Helper()
	testenv.NeedRoot(t, "grading sandboxes")
	_, err := sandbox.CgroupSupport()
	testenv.Need(t, err == nil, "grading sandboxes need a memory cgroup: %v", err)
	testenv.Jupyter(t)
	spec, err := checks.Find(id)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Solution == "" {
		t.Fatalf("%s has no solution notebook", spec.ID)
	}
	solved := "solutions/" + filepath.Base(spec.Solution)
	student := "notebooks/" + filepath.Base(spec.Solution)
	keys := []string{solved}
	if strings.HasPrefix(spec.ID, "A") {
		keys = append(keys, student)
	}
	gradedMu.Lock()
	defer gradedMu.Unlock()
	if r := gradedRuns[solved]; r != nil {
		return pick(keys)
	}
	// The reference and the sandboxes read the stand-ins; the process environment is the
	// grader's host environment (it finds go, Jupyter and GoNB there).
	for _, kv := range []string{weights.WeightsDirEnv + "=" + reference.Dir(t), "GOMLX_BACKEND=go"} {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	start := time.Now()
	var ref *grade.Reference
	var runEnv []string
	if spec.Task == grade.TaskFinetune {
		ref, err = grade.ComputeFinetuneReference(context.Background(), spec, grade.FinetuneOptions{Schedule: grade.QuickSchedule})
		runEnv = ref.Schedule.Env("")
	} else {
		ref, err = grade.ComputeReference(context.Background(), spec, grade.ReferenceOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reference %s: %v", spec.ID, time.Since(start).Round(time.Millisecond))
	repo, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, executed, work := t.TempDir(), t.TempDir(), ""
	if spec.Task == grade.TaskFinetune {
		work = t.TempDir()
	}
	names := map[string]string{"solved": solved, "untouched": student}
	var paths []string
	for _, name := range []string{"solved", "untouched"}[:len(keys)] {
		b, err := os.ReadFile(filepath.Join(repo, names[name]))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".ipynb")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	rep, err := batch.Grade(context.Background(), batch.Options{
		Spec: spec, Reference: ref, Repo: repo, Jobs: 2, Timeout: 10 * time.Minute, NoWarmup: warmedUp,
		ExecutedDir: executed, Log: testLog{t}, Env: runEnv, WorkDir: work, KeepWork: work != "",
	}, paths)
	if err != nil {
		t.Fatal(err)
	}
	warmedUp = true
	for _, r := range rep.Results {
		run := &gradedRun{spec: spec, result: r, work: work}
		if nb, err := nbrun.ReadNotebook(filepath.Join(executed, r.Student+".ipynb")); err == nil {
			run.executed = nb
		} else {
			t.Logf("%s %s: no executed copy: %v", spec.ID, r.Student, err)
		}
		gradedRuns[names[r.Student]] = run
		t.Logf("%s %s: %v/%v in %v%s", spec.ID, r.Student, r.Score, r.MaxScore, r.Duration.Round(time.Second), problem(r))
	}
	return pick(keys)
}

func pick(keys []string) map[string]*gradedRun {
	out := map[string]*gradedRun{}
	for _, k := range keys {
		out[k] = gradedRuns[k]
	}
	return out
}

func problem(r *batch.Result) string {
	if r.Problem == "" {
		return ""
	}
	return fmt.Sprintf(" (problem: %s)", r.Problem)
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Logf("%s", b)
	return len(b), nil
}

// executedCopy is a graded run's executed notebook, failing the test where the grader kept
// none or the run did not finish.
func (r *gradedRun) executedCopy(t *testing.T) *nbrun.Notebook {
	t.Helper()
	if r == nil {
		t.Fatal("the notebook was not graded")
	}
	if r.result.Problem != "" {
		t.Fatalf("%s %s: %s", r.spec.ID, r.result.Student, r.result.Problem)
	}
	if r.executed == nil {
		t.Fatalf("%s %s: the grader kept no executed copy", r.spec.ID, r.result.Student)
	}
	if e := r.executed.FirstError(); e != nil {
		t.Fatal(e)
	}
	return r.executed
}

// checkScore: a solved notebook scores full marks; an untouched activity runs to the end and
// scores nothing, each check saying which variable is still empty.
func checkScore(t *testing.T, r *gradedRun) {
	t.Helper()
	switch r.result.Student {
	case "solved":
		if r.result.Score != r.result.MaxScore {
			t.Errorf("%s solved: %v/%v", r.spec.ID, r.result.Score, r.result.MaxScore)
			logChecks(t, r.result)
		}
	case "untouched":
		if r.result.Score != 0 || r.result.Problem != "" {
			t.Errorf("%s untouched: %v/%v, problem %q; want 0 and a complete run", r.spec.ID, r.result.Score, r.result.MaxScore, r.result.Problem)
		}
		for _, c := range r.result.Checks {
			if c.ID == "transformed-values" && !strings.Contains(c.Detail, "transformedImage is nil") {
				t.Errorf("untouched %s: %q", c.ID, c.Detail)
			}
		}
	}
}

func logChecks(t *testing.T, r *batch.Result) {
	t.Helper()
	for _, c := range r.Checks {
		t.Logf("%s %-20s passed=%-5v %s", r.Student, c.ID, c.Passed, c.Detail)
	}
}
