package batch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// Weak isolation (for a grader that is not root) grades a solved notebook fully, with the
// per-process address-space limit in place of the cgroup, and leaves no copy in the checkout.
func TestWeakIsolation(t *testing.T) {
	testenv.Long(t, "runs a notebook through Jupyter")
	needGrading(t)
	spec, ref := testReference(t, "8.04")
	repo, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := writeNotebook(t, t.TempDir(), "solved", notebookJSON(solvedCells(spec)))
	rep, err := Grade(context.Background(), Options{
		Spec: spec, Reference: ref, Repo: repo, Timeout: 5 * time.Minute, Isolation: Weak, NoWarmup: true, Log: testLog{t},
	}, []string{p})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Score != r.MaxScore {
		t.Errorf("weak isolation: %v/%v (%s)", r.Score, r.MaxScore, r.Problem)
		logChecks(t, r)
	}
	left, _ := filepath.Glob(filepath.Join(repo, "notebooks", ".grade-*"))
	if len(left) > 0 {
		t.Errorf("left in the checkout: %v", left)
		for _, l := range left {
			os.RemoveAll(l)
		}
	}
}
