package nbrun

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// needKernel returns the kernel environment (testenv.Jupyter: a missing Jupyter or GoNB kernel
// skips, or fails in CI), with a value cache of the test's own.
func needKernel(t *testing.T) []string {
	t.Helper()
	// Each test gets its own value cache, so cached cells compute on their first run.
	return append(testenv.Jupyter(t), "WORKBOOK_CACHE_DIR="+t.TempDir())
}

func runTestdata(t *testing.T, name string, opt Options) (*Result, error) {
	t.Helper()
	return runTestdataCtx(context.Background(), t, name, opt)
}

func runTestdataCtx(ctx context.Context, t *testing.T, name string, opt Options) (*Result, error) {
	t.Helper()
	opt.Env = needKernel(t)
	if opt.OutDir == "" {
		opt.OutDir = t.TempDir()
	}
	if opt.CellTimeout == 0 {
		opt.CellTimeout = 5 * time.Minute // a cold Go build cache makes the first cell slow
	}
	// Run from an unrelated folder: the kernel must still start in the notebook's folder.
	t.Chdir(t.TempDir())
	src, err := filepath.Abs(filepath.Join(testdataDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, src, opt)
	if res == nil {
		t.Fatalf("Run(%s) returned no result: %v", name, err)
	}
	return res, err
}

// pkgDir is the package folder (the test's starting directory; tests may chdir later).
var pkgDir = func() string { wd, _ := os.Getwd(); return wd }()

func testdataDir(*testing.T) string { return filepath.Join(pkgDir, "testdata") }

func TestWiringNotebookUsesThisCheckout(t *testing.T) {
	res, err := runTestdata(t, "wiring.ipynb", Options{})
	if err != nil {
		t.Fatalf("wiring notebook failed: %v\nlog: %s", err, res.Log)
	}
	for _, p := range []string{res.Executed, res.HTML, res.Log} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	root, err := setup.RepoRoot(pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	cells := res.Cells.Cells
	want := map[int]string{
		2: "workbook packages from " + root + "\n",
		3: "shape (1, 224, 224, 3)\n",
		4: "computing\nvalue [1 2 3]\n",
		5: "value [1 2 3]\n", // served from the disk cache: "computing" must not appear
		7: "github.com/gomlx/gomlx v0.26.0\ngithub.com/janpfeifer/gonb v0.11.4\n",
	}
	for idx, w := range want {
		if got := cells[idx-1].Stdout; got != w {
			t.Errorf("cell %d stdout = %q, want %q", idx, got, w)
		}
	}
	if n := len(cells[5].PNGs); n != 1 {
		t.Fatalf("cell 6 displayed %d PNG images, want 1", n)
	}
	img, err := png.Decode(bytes.NewReader(cells[5].PNGs[0]))
	if err != nil {
		t.Fatalf("cell 6 image: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 4 || b.Dy() != 4 {
		t.Errorf("cell 6 image is %v, want 4x4", b)
	}
}

func TestCompileErrorReportsCellAndCompilerMessage(t *testing.T) {
	res, err := runTestdata(t, "compile_error.ipynb", Options{})
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *CellError", err, err)
	}
	if ce.Cell != 2 || ce.ExecutionCount != 2 || ce.Kind != "error" {
		t.Errorf("reported cell %d, In [%d], kind %q; want cell 2, In [2], error", ce.Cell, ce.ExecutionCount, ce.Kind)
	}
	if !strings.Contains(ce.Text, "undefined: undefinedThing") {
		t.Errorf("error text lacks the compiler message:\n%s", ce.Text)
	}
	msg := err.Error()
	for _, w := range []string{"compile_error.ipynb", "cell 2", "undefined: undefinedThing"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error message lacks %q:\n%s", w, msg)
		}
	}
	// Execution stopped at the failure, and the executed notebook and HTML were still written.
	if got := res.Cells.Cells[2].ExecutionCount; got != 0 {
		t.Errorf("cell 3 ran (In [%d]) after the failing cell", got)
	}
	if res.Cells.Cells[0].Stdout != "first\n" {
		t.Errorf("cell 1 stdout = %q", res.Cells.Cells[0].Stdout)
	}
	if _, err := os.Stat(res.HTML); err != nil {
		t.Errorf("no HTML export after a failure: %v", err)
	}
}

// A cell marked {"nbrun": {"only_if_failed": I}} runs only when cell I reported an error.
func TestOnlyIfFailedCells(t *testing.T) {
	res, err := runTestdata(t, "guarded.ipynb", Options{KeepGoing: true, NoHTML: true})
	var ce *CellError
	if !errors.As(err, &ce) || ce.Cell != 3 {
		t.Fatalf("err = %v, want the build failure of cell 3", err)
	}
	cells := res.Cells.Cells
	if cells[0].Stdout != "first\n" {
		t.Errorf("cell 1 stdout = %q", cells[0].Stdout)
	}
	if !cells[1].Conditional || !cells[3].Conditional || cells[2].Conditional {
		t.Error("the cells' only_if_failed metadata was not read")
	}
	if c := cells[1]; c.ExecutionCount != 0 || c.Stdout != "" {
		t.Errorf("cell 2 ran (In [%d], %q) although cell 1 succeeded", c.ExecutionCount, c.Stdout)
	}
	if c := cells[3]; c.ExecutionCount == 0 || c.Stdout != "ran after the failure\n" {
		t.Errorf("cell 4: In [%d], stdout %q; want it run after cell 3 failed", c.ExecutionCount, c.Stdout)
	}
}

func TestPanicReportsCellAndPanicText(t *testing.T) {
	res, err := runTestdata(t, "panic.ipynb", Options{})
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *CellError", err, err)
	}
	// Cell 3 of the file (after a markdown cell) is the second code cell executed.
	if ce.Cell != 3 || ce.ExecutionCount != 2 {
		t.Errorf("reported cell %d, In [%d]; want cell 3, In [2]", ce.Cell, ce.ExecutionCount)
	}
	if !strings.Contains(ce.Text, "panic: kaboom in cell") || !strings.Contains(ce.Summary, "exit status 2") {
		t.Errorf("summary %q / text:\n%s\nwant the panic message and exit status 2", ce.Summary, ce.Text)
	}
	if got := res.Cells.Cells[2].Stdout; got != "before\n" {
		t.Errorf("failing cell stdout = %q, want the output before the panic", got)
	}
}

func TestKeepGoingRunsLaterCells(t *testing.T) {
	res, err := runTestdata(t, "compile_error.ipynb", Options{KeepGoing: true, NoHTML: true})
	var ce *CellError
	if !errors.As(err, &ce) || ce.Cell != 2 {
		t.Fatalf("err = %v, want the cell 2 error", err)
	}
	if len(res.Errors) != 1 {
		t.Errorf("%d errors, want 1", len(res.Errors))
	}
	if got := res.Cells.Cells[2].Stdout; got != "after\n" {
		t.Errorf("cell 3 stdout = %q, want it to run after the failure (GoNB drops the failed cell's code)", got)
	}
	if res.HTML != "" {
		t.Errorf("HTML = %q with NoHTML", res.HTML)
	}
}

func TestCellTimeoutNamesTheCell(t *testing.T) {
	res, err := runTestdata(t, "sleep.ipynb", Options{CellTimeout: 5 * time.Second})
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *CellError", err, err)
	}
	if ce.Kind != "timeout" || ce.Cell != 2 || !strings.Contains(ce.Summary, "timed out") {
		t.Errorf("got kind %q cell %d summary %q; want a timeout in cell 2", ce.Kind, ce.Cell, ce.Summary)
	}
	if res.Cells.Cells[0].Stdout != "first\n" {
		t.Errorf("cell 1 output lost: %q", res.Cells.Cells[0].Stdout)
	}
}

func TestNotebookDeadlineStillWritesOutput(t *testing.T) {
	res, err := runTestdata(t, "sleep.ipynb", Options{CellTimeout: -1, Timeout: 8 * time.Second})
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *CellError", err, err)
	}
	if ce.Kind != "deadline" || ce.Cell != 2 {
		t.Errorf("got kind %q cell %d; want the deadline in cell 2", ce.Kind, ce.Cell)
	}
	if res.Cells.Cells[0].Stdout != "first\n" {
		t.Errorf("cell 1 output lost: %q", res.Cells.Cells[0].Stdout)
	}
}

func TestCancelStopsKernelAndStillWritesOutput(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { time.Sleep(6 * time.Second); cancel() }()
	res, err := runTestdataCtx(ctx, t, "sleep.ipynb", Options{CellTimeout: -1})
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *CellError", err, err)
	}
	if ce.Kind != "stopped" || ce.Cell != 2 {
		t.Errorf("got kind %q cell %d; want stopped in cell 2", ce.Kind, ce.Cell)
	}
	if res.Duration > time.Minute {
		t.Errorf("cancellation took %v", res.Duration)
	}
	if res.Cells.Cells[0].Stdout != "first\n" {
		t.Errorf("cell 1 output lost: %q", res.Cells.Cells[0].Stdout)
	}
}

func TestUnknownKernelIsARunError(t *testing.T) {
	_, err := runTestdata(t, "compile_error.ipynb", Options{Kernel: "no-such-kernel", NoHTML: true})
	var re *RunError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "no-such-kernel") {
		t.Fatalf("err = %v (%T), want a *RunError naming the kernel", err, err)
	}
}

func TestDriverMissingIsARunError(t *testing.T) {
	_, err := Run(context.Background(), filepath.Join(testdataDir(t), "panic.ipynb"),
		Options{OutDir: t.TempDir(), Python: filepath.Join(t.TempDir(), "no-python")})
	var re *RunError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "without a status") {
		t.Fatalf("err = %v (%T), want a *RunError", err, err)
	}
}

func TestDiscoverSortsAndSkipsCheckpoints(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.ipynb", "a.ipynb", ".hidden.ipynb", "notes.md"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".ipynb_checkpoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || filepath.Base(got[0]) != "a.ipynb" || filepath.Base(got[1]) != "b.ipynb" {
		t.Fatalf("Discover = %v", got)
	}
}

// testdata/executed holds compile_error.ipynb and panic.ipynb as the real GoNB v0.11.4 kernel
// executed them with KeepGoing, made with
//
//	go run ./cmd/workbook notebooks run --keep-going --no-html --out internal/nbrun/testdata/executed \
//	    internal/nbrun/testdata/compile_error.ipynb internal/nbrun/testdata/panic.ipynb
//
// (then the .log files removed), so that parsing is tested without Jupyter.
func TestParseExecutedGoNBOutputs(t *testing.T) {
	nb, err := ReadNotebook(filepath.Join(testdataDir(t), "executed", "compile_error.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if nb.KernelName != "gonb" || len(nb.Cells) != 3 || len(nb.CodeCells()) != 3 {
		t.Fatalf("kernel %q, %d cells", nb.KernelName, len(nb.Cells))
	}
	c := nb.Cells[1]
	if len(c.Errors) != 1 || !strings.Contains(c.Errors[0].Value, "go build") {
		t.Fatalf("cell 2 errors = %+v, want one `go build` error", c.Errors)
	}
	if !strings.Contains(c.Errors[0].Text, "Cell[2]: Line 2 ./main.go:11:6: undefined: undefinedThing") {
		t.Errorf("compiler text = %q", c.Errors[0].Text)
	}
	if strings.Contains(c.Errors[0].Text, "flag.Parse") || strings.Contains(c.Errors[0].Text, "<") {
		t.Errorf("compiler text keeps GoNB's hidden context or markup: %q", c.Errors[0].Text)
	}
	if len(c.HTML) != 0 {
		t.Errorf("the error report was also counted as HTML output")
	}
	if nb.Cells[2].Stdout != "after\n" {
		t.Errorf("cell 3 stdout = %q", nb.Cells[2].Stdout)
	}
	fe := nb.FirstError()
	if fe == nil || fe.Cell != 2 || fe.ExecutionCount != 2 {
		t.Fatalf("FirstError = %+v", fe)
	}

	nb, err = ReadNotebook(filepath.Join(testdataDir(t), "executed", "panic.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	fe = nb.FirstError()
	if fe == nil || fe.Cell != 3 || fe.ExecutionCount != 2 || !strings.HasPrefix(fe.Text, "panic: kaboom in cell") {
		t.Fatalf("FirstError = %+v", fe)
	}
	if strings.Contains(fe.Text, "\x1b[") {
		t.Errorf("ANSI codes left in %q", fe.Text)
	}
}

func TestParseMultilineSourceAndJSONData(t *testing.T) {
	src := `{"metadata": {"kernelspec": {"name": "gonb"}}, "nbformat": 4, "nbformat_minor": 5, "cells": [
	 {"cell_type": "code", "execution_count": 4, "metadata": {}, "source": ["a\n", "b"],
	  "outputs": [{"output_type": "stream", "name": "stdout", "text": ["x\n", "y\n"]},
	              {"output_type": "execute_result", "execution_count": 4, "metadata": {},
	               "data": {"application/json": {"k": 1}, "text/plain": ["1"]}}]}]}`
	nb, err := ParseNotebook([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := nb.Cells[0]
	if c.Source != "a\nb" || c.Stdout != "x\ny\n" || c.ExecutionCount != 4 {
		t.Errorf("cell = %+v", c)
	}
	if d := c.Outputs[1].Data; d["application/json"] != `{"k": 1}` || d["text/plain"] != "1" {
		t.Errorf("data = %q", d)
	}
}
