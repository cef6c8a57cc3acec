package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/weights"
)

func TestGradeUsageErrors(t *testing.T) {
	nb := filepath.Join(t.TempDir(), "alice.ipynb")
	if err := os.WriteFile(nb, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"grade", nb}, 2, "--exercise is required"},
		{[]string{"grade", "--exercise", "8.01"}, 2, "no submissions given"},
		{[]string{"grade", "--exercise", "8.01", "--memory", "lots", nb}, 2, `"lots" is not a size`},
		{[]string{"grade", "--exercise", "8.01", "--memory", "1MiB", nb}, 2, "too little memory"},
		{[]string{"grade", "--exercise", "8.01", "--jobs", "0", nb}, 2, "--jobs must be at least 1"},
		{[]string{"grade", "--exercise", "9.99", nb}, 1, `no checks for exercise "9.99" (known: 8.01, 8.02, 8.03, 8.04, A8.01, A8.02)`},
		{[]string{"grade", "--exercise", "8.01", filepath.Join(t.TempDir(), "missing.ipynb")}, 1, "no such file"},
		// The schedule and the data belong to the fine-tuning exercise.
		{[]string{"grade", "--exercise", "8.01", "--epochs", "2", nb}, 2, "--epochs is for the fine-tuning exercise (8.03), not 8.01"},
		{[]string{"grade", "--exercise", "8.01", "--quick", nb}, 2, "--quick and --data are for the fine-tuning exercise"},
		{[]string{"grade", "--exercise", "8.03", "--steps", "-1", nb}, 2, "--steps must be at least 1"},
		{[]string{"grade", "--exercise", "8.03", "--data", t.TempDir(), nb}, 1, "has no training_set folder"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "4G": 4 << 30, "512MiB": 512 << 20, "1.5GiB": 3 << 29, "134217728": 128 << 20, "2 GiB": 2 << 30} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1GiB", "4 PB", "1KiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// The command end to end, through this binary as the sandbox launcher: a solved notebook and a
// broken file give a gradebook, a report and feedback, and the command succeeds.
func TestGradeCommand(t *testing.T) {
	testenv.Long(t, "runs notebooks through Jupyter")
	testenv.Jupyter(t)
	testenv.NeedRoot(t, "the grading sandbox")
	_, err := sandbox.CgroupSupport()
	testenv.Need(t, err == nil, "the grading sandbox needs a memory cgroup: %v", err)
	t.Setenv(weights.WeightsDirEnv, reference.Dir(t))
	t.Setenv("GOMLX_BACKEND", "go")
	repo, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	subs := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repo, "solutions", "05-exercise-8.04-resnet50-racer.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"ada.ipynb": b, "bob.ipynb": []byte("not json")} {
		if err := os.WriteFile(filepath.Join(subs, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "grades")
	code, stdoutText, errOut := runCLI(t, "grade", "--exercise", "exercise-8.04", "--jobs", "2", "--out", out, subs)
	if code != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, stdoutText, errOut)
	}
	if !strings.Contains(stdoutText, "graded 2 submission(s) for 8.04") || !strings.Contains(stdoutText, "1 with full marks") {
		t.Errorf("stdout:\n%s", stdoutText)
	}
	f, err := os.ReadFile(filepath.Join(out, "gradebook.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(f)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][0] != "ada" || rows[1][7] != "10" || rows[2][0] != "bob" || rows[2][7] != "0" ||
		!strings.Contains(rows[2][9], "not a notebook") {
		t.Errorf("gradebook:\n%s", f)
	}
	for _, p := range []string{"report.json", "feedback/ada.md", "feedback/bob.md", "executed/ada.ipynb"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Error(err)
		}
	}
}
