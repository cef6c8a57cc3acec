package batch

import (
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/nbrun"
)

// The texts below are what GoNB v0.11.4 printed for these notebooks when they ran through the
// grader (a setup cell without its "!", a setup cell whose go command fails): its own messages
// and the Go toolchain's, which the grader's explanations must read right.
const (
	gonbParseError = "parsing go files in TempDir \"/tmp/gonb_7ae6420b\": /tmp/gonb_7ae6420b/main.go:3:1: expected declaration, found '*' (and 6 more errors)"
	gonbParseText  = "Cell[1]: Line 1 /tmp/gonb_7ae6420b/main.go:3:1: expected declaration, found '*' (and 6 more errors)"
	gonbGetError   = "failed to run \"/usr/local/go/bin/go get\": exit status 1"
	gonbGetText    = gonbGetError + "\ngo: gonb_7ae6420b imports\ngithub.com/transfer-learning-go/workbook/kernelext: cannot find module providing package github.com/transfer-learning-go/workbook/kernelext"
)

// fakeRun is a run of a notebook with a markdown title, the setup cell, one student cell and
// one grader cell (cell 4), each code cell failing with the given error (nil: none) and stderr.
func fakeRun(setupSrc, setupStderr string, setupErr, studentErr, graderErr *nbrun.Error) *nbrun.Result {
	res := &nbrun.Result{Cells: &nbrun.Notebook{}}
	cells := []struct {
		src, stderr string
		err         *nbrun.Error
	}{{"# title", "", nil}, {setupSrc, setupStderr, setupErr}, {"var x = 1", "", studentErr}, {"// grader", "", graderErr}}
	for i, c := range cells {
		cell := nbrun.Cell{Index: i + 1, Type: "code", Source: c.src, Stderr: c.stderr, ExecutionCount: i}
		if i == 0 {
			cell = nbrun.Cell{Index: 1, Type: "markdown", Source: c.src}
		}
		if c.err != nil {
			cell.Errors = []nbrun.Error{*c.err}
			res.Errors = append(res.Errors, &nbrun.CellError{Cell: i + 1, ExecutionCount: i, Kind: "error",
				Summary: c.err.Value, Text: c.err.Text, Source: c.src})
		}
		res.Cells.Cells = append(res.Cells.Cells, cell)
	}
	return res
}

func TestBuildFailureReasons(t *testing.T) {
	getErr := &nbrun.Error{Name: "ERROR", Value: gonbGetError, Text: gonbGetText}
	cases := []struct {
		name      string
		res       *nbrun.Result
		want, not []string
	}{{
		name: "setup cell does not compile",
		res:  fakeRun(strings.TrimPrefix(SetupCell, "!"), "", &nbrun.Error{Name: "ERROR", Value: gonbParseError, Text: gonbParseText}, getErr, getErr),
		want: []string{"the notebook does not compile", "In [1], line 1: expected declaration, found '*'", "the setup cell"},
		not:  []string{"os.Exit", "exit status"},
	}, {
		name: "setup cell's command fails",
		res: fakeRun(strings.Replace(SetupCell, "cmd/nbsetup", "cmd/nbsetpu", 1),
			"no required module provides package github.com/transfer-learning-go/workbook/cmd/nbsetpu; to add it:\n\tgo get github.com/transfer-learning-go/workbook/cmd/nbsetpu\nexit status 1\n", nil, getErr, getErr),
		want: []string{"the notebook does not compile", "In [2]: github.com/transfer-learning-go/workbook/kernelext: cannot find module providing package",
			"the setup cell", "(In [1] failed: no required module provides package github.com/transfer-learning-go/workbook/cmd/nbsetpu"},
		not: []string{"os.Exit"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cause := buildCause(c.res, 4)
			why := missingReason("transformedImage", c.res, 4, "", firstStudentError(c.res, 4), cause, "")
			if !strings.HasPrefix(why, notCompiled+", so the grader cannot read transformedImage: ") {
				t.Errorf("reason %q", why)
			}
			for _, w := range c.want {
				if !strings.Contains(why, w) {
					t.Errorf("reason %q lacks %q", why, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(why, n) {
					t.Errorf("reason %q mentions %q", why, n)
				}
			}
		})
	}

	// A missing variable and a program that exits keep their own explanations.
	undefined := &nbrun.Error{Name: "ERROR", Value: "failed to run \"/usr/local/go/bin/go build -o /tmp/gonb_1/gonb_1\": exit status 1",
		Text: "Cell[3]: Line 9 ./main.go:12:6: undefined: transformedImage"}
	res := fakeRun(SetupCell, "", nil, nil, undefined)
	if why := missingReason("transformedImage", res, 4, "", "", buildCause(res, 4), ""); !strings.HasPrefix(why, "transformedImage is not defined") {
		t.Errorf("missing variable: %q", why)
	}
	// GoNB returns the program's *exec.ExitError as the cell's error.
	exited := &nbrun.Error{Name: "ERROR", Value: "exit status 3"}
	res = fakeRun(SetupCell, "", nil, nil, exited)
	if why := missingReason("transformedImage", res, 4, "", "", buildCause(res, 4), ""); !strings.Contains(why, "os.Exit") {
		t.Errorf("program that exits: %q", why)
	}
}

// A cell is named by the code it runs, not by its imports or comments.
func TestCodeLine(t *testing.T) {
	for src, want := range map[string]string{
		"import \"time\"\n\n%%\nfor {\n\ttime.Sleep(time.Second)\n}\n": "for {",
		"%%\nfor {\n}\n": "for {",
		"var yPred = predict(x)\n\n%%\n// show it\nfmt.Println(yPred)": "fmt.Println(yPred)",
		"import (\n\t\"os\"\n)\n\nvar _ = quit()\n":                    "var _ = quit()",
		"%%\n// nothing but a comment":                                 "%%",
		"// only a comment":                                            "// only a comment",
	} {
		if got := codeLine(src); got != want {
			t.Errorf("codeLine(%q) = %q, want %q", src, got, want)
		}
	}
}
