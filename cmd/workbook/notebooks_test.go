package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

func TestNotebooksRunReportsFailingCell(t *testing.T) {
	testenv.Jupyter(t)
	out := t.TempDir()
	testdata := filepath.Join("..", "..", "internal", "nbrun", "testdata")
	code, stdoutText, errOut := runCLI(t, "notebooks", "run", "--no-html", "--out", out,
		filepath.Join(testdata, "panic.ipynb"), filepath.Join(testdata, "compile_error.ipynb"))
	if code != 1 {
		t.Fatalf("status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdoutText, errOut)
	}
	for _, w := range []string{"FAIL  panic.ipynb", "FAIL  compile_error.ipynb"} {
		if !strings.Contains(stdoutText, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdoutText)
		}
	}
	for _, w := range []string{
		"panic.ipynb: cell 3 (In [2])", "panic: kaboom in cell",
		"compile_error.ipynb: cell 2 (In [2])", "undefined: undefinedThing",
		"2 of 2 notebooks failed",
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	for _, f := range []string{"panic.ipynb", "panic.log", "compile_error.ipynb"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestNotebooksUsage(t *testing.T) {
	if code, _, errOut := runCLI(t, "notebooks"); code != 2 || !strings.Contains(errOut, "missing subcommand") {
		t.Errorf("no subcommand: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "notebooks", "frob"); code != 2 || !strings.Contains(errOut, `unknown subcommand "frob"`) {
		t.Errorf("bad subcommand: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "notebooks", "run", "--out", t.TempDir(), filepath.Join(t.TempDir(), "absent.ipynb")); code != 1 || !strings.Contains(errOut, "absent.ipynb") {
		t.Errorf("missing notebook: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "notebooks", "run", "--out", t.TempDir(), t.TempDir()); code != 1 || !strings.Contains(errOut, "no notebooks in") {
		t.Errorf("empty folder: status %d, stderr %q", code, errOut)
	}
}

func TestCacheCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(nbcache.EnvDir, dir)
	t.Setenv(nbcache.EnvOff, "")
	nbcache.MustCached("cli/test", func() ([]float32, error) { return make([]float32, 256), nil })
	code, out, errOut := runCLI(t, "cache", "list")
	if code != 0 || !strings.Contains(out, "cli/test") || !strings.Contains(out, "[]float32") || !strings.Contains(out, "1 entries") {
		t.Errorf("cache list: status %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "cache", "dir")
	if code != 0 || strings.TrimSpace(out) != dir {
		t.Errorf("cache dir = %q", out)
	}
	code, out, _ = runCLI(t, "cache", "clear")
	if code != 0 || !strings.Contains(out, "removed 1 files") {
		t.Errorf("cache clear: status %d, %q", code, out)
	}
	if code, _, _ := runCLI(t, "cache", "purge"); code != 2 {
		t.Errorf("unknown cache subcommand: status %d, want 2", code)
	}
}
