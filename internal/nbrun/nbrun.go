// Package nbrun executes the workbook's Go notebooks headless with the GoNB kernel, the way CI and
// graders need them: every notebook runs in a fresh kernel started in the notebook's own folder, the
// executed notebook and an HTML export are written to an output folder even when a cell fails, and a
// failure names the notebook, the cell and the error text (compiler messages, panic output).
//
// Execution goes through Debian's /usr/bin/python3 with nbclient, the engine behind
// `jupyter nbconvert --execute` (same ExecutePreprocessor options: kernel name, per-cell timeout,
// allow_errors). We drive it through a small script instead of the nbconvert command because
// nbconvert writes nothing when a cell fails, and then there is no executed notebook to look at.
package nbrun

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

//go:embed driver.py
var driverPy string

// Defaults for Options.
const (
	DefaultPython      = "/usr/bin/python3"
	DefaultKernel      = "gonb"
	DefaultCellTimeout = 10 * time.Minute
)

// Options tune Run.
type Options struct {
	// OutDir receives NAME.ipynb (executed), NAME.html and NAME.log (kernel and driver output) per
	// notebook; it is created if needed. Required.
	OutDir string
	// CellTimeout bounds each cell (nbconvert's ExecutePreprocessor.timeout); 0 means
	// DefaultCellTimeout, a negative value means no limit.
	CellTimeout time.Duration
	// Timeout bounds a whole notebook; 0 means no limit. On expiry the run is stopped and what was
	// executed so far is still written.
	Timeout time.Duration
	// KeepGoing runs the remaining cells after a failing one (nbconvert's --allow-errors); every
	// failing cell is then reported. By default execution stops at the first failure.
	KeepGoing bool
	// NoHTML skips the HTML export.
	NoHTML bool
	// Env is the environment of the kernel (nil: this process's). Use setup.KernelEnv so that go,
	// goimports and gopls are found.
	Env []string
	// Python runs the driver (default DefaultPython); Kernel is the kernel name (default DefaultKernel).
	Python string
	Kernel string
}

// Result describes one notebook run. Paths are empty for files that were not written.
type Result struct {
	Notebook string // the source notebook
	Executed string // executed notebook
	HTML     string // HTML export
	Log      string // kernel and driver output
	Duration time.Duration
	Cells    *Notebook    // the executed notebook, parsed; nil if it could not be read
	Errors   []*CellError // failing cells, top to bottom (several only with KeepGoing)
}

// CellError is a failing cell.
type CellError struct {
	Notebook       string // source notebook path
	Cell           int    // 1-based position among all cells, markdown included
	ExecutionCount int    // N of "In [N]"; 0 if the cell never started
	Kind           string // "error", "timeout", "kernel died", "deadline" or "stopped"
	Summary        string // one line: the kernel's error value or the runner's message
	Text           string // details: compiler messages, stderr (panics), traceback; plain text
	Source         string // the cell's source
}

func (e *CellError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: cell %d", filepath.Base(e.Notebook), e.Cell)
	if e.ExecutionCount > 0 {
		fmt.Fprintf(&b, " (In [%d])", e.ExecutionCount)
	}
	if e.Kind != "error" {
		fmt.Fprintf(&b, " %s", e.Kind)
	}
	fmt.Fprintf(&b, ": %s", e.Summary)
	if first := firstLine(e.Source); first != "" {
		fmt.Fprintf(&b, "\n    cell starts: %s", first)
	}
	if e.Text != "" {
		for _, l := range strings.Split(e.Text, "\n") {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// RunError is a run that failed outside any cell: the driver, nbclient or the kernel start crashed.
type RunError struct {
	Notebook string
	Reason   string
	LogTail  string // last lines of the driver/kernel output
}

func (e *RunError) Error() string {
	s := fmt.Sprintf("nbrun: %s: %s", filepath.Base(e.Notebook), e.Reason)
	if e.LogTail != "" {
		s += "\n    " + strings.ReplaceAll(e.LogTail, "\n", "\n    ")
	}
	return s
}

// driverStatus is what driver.py writes at the end.
type driverStatus struct {
	Status    string  `json:"status"`
	CellIndex *int    `json:"cell_index"`
	Message   string  `json:"message"`
	Seconds   float64 `json:"seconds"`
	HTMLError string  `json:"html_error"`
}

// Run executes one notebook. The error is nil, the first *CellError, or a *RunError; the Result is
// always returned with whatever files were written.
func Run(ctx context.Context, notebook string, opt Options) (*Result, error) {
	if opt.OutDir == "" {
		return nil, errors.New("nbrun: Options.OutDir is required")
	}
	src, err := filepath.Abs(notebook)
	if err != nil {
		return nil, fmt.Errorf("nbrun: %v", err)
	}
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("nbrun: %v", err)
	}
	// Absolute: the driver runs in the notebook's folder.
	if opt.OutDir, err = filepath.Abs(opt.OutDir); err != nil {
		return nil, fmt.Errorf("nbrun: %v", err)
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("nbrun: output folder: %v", err)
	}
	python := orDefault(opt.Python, DefaultPython)
	kernel := orDefault(opt.Kernel, DefaultKernel)
	cellTimeout := opt.CellTimeout
	if cellTimeout == 0 {
		cellTimeout = DefaultCellTimeout
	}
	timeoutArg := "-1"
	if cellTimeout > 0 {
		timeoutArg = fmt.Sprint(max(1, int(cellTimeout.Round(time.Second).Seconds())))
	}
	allow := "0"
	if opt.KeepGoing {
		allow = "1"
	}

	name := strings.TrimSuffix(filepath.Base(src), ".ipynb")
	res := &Result{
		Notebook: src,
		Executed: filepath.Join(opt.OutDir, name+".ipynb"),
		Log:      filepath.Join(opt.OutDir, name+".log"),
	}
	if !opt.NoHTML {
		res.HTML = filepath.Join(opt.OutDir, name+".html")
	}
	if res.Executed == src {
		return nil, fmt.Errorf("nbrun: output %s would overwrite the source notebook", res.Executed)
	}
	// Stale files from an earlier run must not pass for this run's output.
	for _, p := range []string{res.Executed, res.HTML} {
		if p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("nbrun: %v", err)
			}
		}
	}
	statusPath := filepath.Join(opt.OutDir, "."+name+".status.json")
	_ = os.Remove(statusPath)
	defer os.Remove(statusPath)

	logf, err := os.Create(res.Log)
	if err != nil {
		return nil, fmt.Errorf("nbrun: %v", err)
	}
	defer logf.Close()

	// The driver enforces opt.Timeout itself (through nbclient's cell timeouts); the context here
	// is a backstop that also leaves time for kernel shutdown and the HTML export.
	runCtx := ctx
	deadlineArg := "-1"
	if opt.Timeout > 0 {
		deadlineArg = fmt.Sprint(max(1, int(opt.Timeout.Round(time.Second).Seconds())))
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, opt.Timeout+2*time.Minute)
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, python, "-c", driverPy,
		src, res.Executed, res.HTML, kernel, timeoutArg, deadlineArg, allow, statusPath)
	cmd.Dir = filepath.Dir(src)
	cmd.Env = opt.Env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C in the terminal reaches only us; we then cancel ctx, and SIGUSR1
	// makes the driver kill the kernel and still write what ran so far (see driver.py).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGUSR1) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	res.Duration = time.Since(start)

	st, statusErr := readStatus(statusPath)
	if statusErr != nil {
		reason := fmt.Sprintf("the notebook driver (%s with nbclient) ended without a status: %v", python, runErr)
		switch {
		case ctx.Err() != nil:
			reason = "cancelled before the driver could write its output"
		case runCtx.Err() != nil:
			reason = fmt.Sprintf("still running %s after its %s deadline; killed", 2*time.Minute, opt.Timeout)
		}
		res.Executed, res.HTML = existing(res.Executed), existing(res.HTML)
		return res, &RunError{Notebook: src, Reason: reason, LogTail: tail(res.Log, 15)}
	}
	if st.HTMLError != "" {
		fmt.Fprintf(logf, "nbrun: HTML export failed: %s\n", st.HTMLError)
		res.HTML = ""
	}
	if res.Cells, err = ReadNotebook(res.Executed); err != nil {
		return res, &RunError{Notebook: src, Reason: err.Error(), LogTail: tail(res.Log, 15)}
	}
	res.Cells.Path = src

	for i := range res.Cells.Cells {
		if c := &res.Cells.Cells[i]; len(c.Errors) > 0 {
			res.Errors = append(res.Errors, newCellError(res.Cells, c, "error", ""))
		}
	}
	switch st.Status {
	case "ok", "cell_error":
		if st.Status == "cell_error" && len(res.Errors) == 0 {
			// The kernel said "error" without sending an error output: report the running cell.
			res.Errors = append(res.Errors, statusCellError(res.Cells, st, "error"))
		}
	case "timeout":
		res.Errors = append(res.Errors, statusCellError(res.Cells, st, "timeout"))
	case "kernel_died":
		res.Errors = append(res.Errors, statusCellError(res.Cells, st, "kernel died"))
	case "deadline":
		st.Message = fmt.Sprintf("the notebook ran past its %s deadline", opt.Timeout)
		res.Errors = append(res.Errors, statusCellError(res.Cells, st, "deadline"))
	case "terminated":
		st.Message = "stopped before the end (interrupted or cancelled)"
		res.Errors = append(res.Errors, statusCellError(res.Cells, st, "stopped"))
	default: // "crash"
		return res, &RunError{Notebook: src, Reason: "nbclient failed: " + st.Message, LogTail: tail(res.Log, 15)}
	}
	if len(res.Errors) > 0 {
		return res, res.Errors[0]
	}
	if runErr != nil {
		return res, &RunError{Notebook: src, Reason: fmt.Sprintf("driver exited with %v after a clean run", runErr), LogTail: tail(res.Log, 15)}
	}
	return res, nil
}

// RunAll runs the notebooks one after another (each in its own kernel) and returns every result;
// the error is non-nil if any notebook failed (or the names collide in the output folder).
func RunAll(ctx context.Context, notebooks []string, opt Options, progress func(*Result, error)) ([]*Result, error) {
	seen := map[string]string{}
	for _, nb := range notebooks {
		base := filepath.Base(nb)
		if other, ok := seen[base]; ok {
			return nil, fmt.Errorf("nbrun: %s and %s would write the same files in %s", other, nb, opt.OutDir)
		}
		seen[base] = nb
	}
	var results []*Result
	failed := 0
	for _, nb := range notebooks {
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		res, err := Run(ctx, nb, opt)
		if res == nil {
			res = &Result{Notebook: nb}
		}
		if err != nil {
			failed++
		}
		results = append(results, res)
		if progress != nil {
			progress(res, err)
		}
	}
	if failed > 0 {
		return results, fmt.Errorf("nbrun: %d of %d notebooks failed", failed, len(notebooks))
	}
	return results, nil
}

// Discover lists the notebooks in dir (not recursive; Jupyter's .ipynb_checkpoints and hidden
// files are skipped), sorted by name.
func Discover(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("nbrun: %v", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".ipynb") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out, nil
}

func newCellError(nb *Notebook, c *Cell, kind, summary string) *CellError {
	e := &CellError{Notebook: nb.Path, Cell: c.Index, ExecutionCount: c.ExecutionCount, Kind: kind,
		Summary: summary, Source: c.Source}
	var text []string
	// stderr first: for a panic its first line ("panic: ...") is the message; GoNB's report after it
	// only maps the stack trace to cell lines.
	if s := strings.TrimSpace(StripANSI(c.Stderr)); s != "" {
		text = append(text, s)
	}
	for _, ce := range c.Errors {
		if e.Summary == "" {
			e.Summary = strings.TrimSpace(StripANSI(ce.Value))
			if ce.Name != "" && ce.Name != "ERROR" && ce.Name != "GoNB" {
				e.Summary = ce.Name + ": " + e.Summary
			}
		}
		if ce.Text != "" {
			text = append(text, ce.Text)
		}
		tb := strings.TrimSpace(StripANSI(strings.Join(ce.Traceback, "\n")))
		if tb != "" && tb != strings.TrimSpace(StripANSI(ce.Value)) {
			text = append(text, tb)
		}
	}
	if e.Summary == "" {
		e.Summary = "failed"
	}
	e.Text = strings.Join(text, "\n")
	return e
}

// statusCellError reports the cell the driver says was running when execution stopped.
func statusCellError(nb *Notebook, st *driverStatus, kind string) *CellError {
	summary := firstLine(st.Message)
	if st.CellIndex == nil || *st.CellIndex < 0 || *st.CellIndex >= len(nb.Cells) {
		return &CellError{Notebook: nb.Path, Kind: kind, Summary: summary}
	}
	return newCellError(nb, &nb.Cells[*st.CellIndex], kind, summary)
}

func readStatus(path string) (*driverStatus, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st driverStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return StripANSI(strings.Join(lines, "\n"))
}

func existing(p string) string {
	if p == "" {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
