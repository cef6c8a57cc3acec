package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/internal/setup"
	"golang.org/x/sys/unix"
)

// grader holds one batch's state.
type grader struct {
	opt         Options
	host        *host
	log         io.Writer
	work        string // root of the sandboxes (root-owned, 0711)
	ownWork     bool   // work was created here and is removed at the end
	template    string // build cache template
	launcher    string
	copiedCache bool
	seq         atomic.Int64
	seedFailed  sync.Once // says once that the weights' digests could not be seeded
}

func (g *grader) prepare() error {
	var err error
	if g.launcher, err = sandbox.Launcher(); err != nil {
		return err
	}
	g.template = g.opt.GoCacheTemplate
	if g.template == "" {
		if g.template, err = DefaultGoCacheTemplate(); err != nil {
			return err
		}
	}
	if err := ensureTemplate(g.template); err != nil {
		return err
	}
	g.work = g.opt.WorkDir
	if g.work == "" {
		if g.work, err = os.MkdirTemp("", "workbook-grade-"); err != nil {
			return fmt.Errorf("grade: work folder: %v", err)
		}
		g.ownWork = true
	} else if err := os.MkdirAll(g.work, 0o711); err != nil {
		return fmt.Errorf("grade: work folder: %v", err)
	}
	if g.work, err = filepath.Abs(g.work); err != nil {
		return err
	}
	// Sandbox users may pass through (to their own 0700 folder) but not list it.
	return os.Chmod(g.work, 0o711)
}

func (g *grader) cleanup() {
	if g.ownWork && !g.opt.KeepWork {
		os.RemoveAll(g.work)
	}
}

// runOutcome is what one sandboxed notebook run produced.
type runOutcome struct {
	values       map[string]*grade.Value
	output       string // the printed output of the notebook's own cells (capped)
	problem      string // the run as a whole went wrong: timeout, memory, crash (empty if not)
	peak         int64
	executedCopy string // a copy of the executed notebook in the work folder, outside the sandbox
	result       *nbrun.Result
}

// notebookDoc is a notebook kept as generic JSON, so fields this grader does not know survive.
type notebookDoc struct {
	raw   map[string]any
	cells []any
}

func parseNotebookDoc(b []byte) (*notebookDoc, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a notebook (invalid JSON: %v)", err)
	}
	cells, ok := raw["cells"].([]any)
	if !ok {
		return nil, errors.New("not a notebook (no cells list)")
	}
	if v, _ := raw["nbformat"].(float64); v != 4 {
		return nil, fmt.Errorf("not a version 4 notebook (nbformat %v)", raw["nbformat"])
	}
	for i, c := range cells {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("not a notebook (cell %d is not an object)", i+1)
		}
		// Outputs saved in the file are never graded: clear them, so a cell that does not run
		// leaves no stale (or fabricated) output behind.
		if m["cell_type"] == "code" {
			m["outputs"] = []any{}
			m["execution_count"] = nil
		}
		// Only the grader's own cells say when they run (nbrun's driver).
		if meta, ok := m["metadata"].(map[string]any); ok {
			delete(meta, "nbrun")
		}
	}
	return &notebookDoc{raw: raw, cells: cells}, nil
}

// extraCell is a code cell the grader appends. onlyIfFailed >= 0 makes it run only when that
// cell (0-based, of the whole notebook) reported an error; -1 runs it always.
type extraCell struct {
	source       string
	onlyIfFailed int
}

// exportCells are the grader's cells reading variables, appended after the notebook's n cells:
// one cell that writes them all, and where there are several, one cell per variable that runs
// only if that one failed. Every code cell is a build of the whole program; a variable the
// notebook does not declare breaks the build of each cell naming it, so it then costs only its
// own value.
func exportCells(n int, variables []string) ([]extraCell, error) {
	all, err := grade.ExportCell(variables...)
	if err != nil {
		return nil, err
	}
	cells := []extraCell{{source: all, onlyIfFailed: -1}}
	if len(variables) == 1 {
		return cells, nil
	}
	for _, v := range variables {
		c, err := grade.ExportCell(v)
		if err != nil {
			return nil, err
		}
		cells = append(cells, extraCell{source: c, onlyIfFailed: n})
	}
	return cells, nil
}

// exportCellOf is the 1-based index of the cell whose fate tells why variable k was not read:
// its own cell, which runs when the cell reading them all failed, or that one.
func exportCellOf(res *nbrun.Result, n, nvars, k int) int {
	combined := n + 1
	if nvars == 1 || res == nil || res.Cells == nil || combined+1+k > len(res.Cells.Cells) {
		return combined
	}
	if own := res.Cells.Cells[combined+k]; own.ExecutionCount == 0 && len(own.Errors) == 0 {
		return combined // not run: the cell reading them all did not fail
	}
	return combined + 1 + k
}

// withCells returns the notebook JSON with extra code cells appended and the GoNB kernel set.
func (d *notebookDoc) withCells(extra []extraCell) ([]byte, error) {
	cells := append([]any(nil), d.cells...)
	for i, c := range extra {
		meta := map[string]any{}
		if c.onlyIfFailed >= 0 {
			meta["nbrun"] = map[string]any{"only_if_failed": c.onlyIfFailed}
		}
		cells = append(cells, map[string]any{
			"cell_type": "code", "id": fmt.Sprintf("workbook-grade-%d", i+1), "metadata": meta,
			"source": c.source, "outputs": []any{}, "execution_count": nil,
		})
	}
	out := map[string]any{}
	for k, v := range d.raw {
		out[k] = v
	}
	out["cells"] = cells
	meta, _ := out["metadata"].(map[string]any)
	m := map[string]any{}
	for k, v := range meta {
		m[k] = v
	}
	m["kernelspec"] = map[string]any{"name": "gonb", "display_name": "Go (gonb)", "language": "go"}
	out["metadata"] = m
	if minor, _ := out["nbformat_minor"].(float64); minor < 5 {
		// Cell ids need nbformat 4.5; older files get them added by nbformat on read.
		out["nbformat_minor"] = 5
	}
	return json.MarshalIndent(out, "", " ")
}

// runNotebook runs one notebook (the original cells plus the grader's export cells) in a
// fresh sandbox and reads back what it produced. An error means the grader could not run it at
// all (a problem of the grader, not of the notebook).
//
// keepCache, if set, is called with the run's build cache before the sandbox is removed (the
// warm-up merges it into the template).
func (g *grader) runNotebook(ctx context.Context, label string, doc *notebookDoc, variables []string, keepCache func(gocache string) error) (*runOutcome, error) {
	var cells []extraCell
	if len(variables) > 0 {
		var err error
		if cells, err = exportCells(len(doc.cells), variables); err != nil {
			return nil, err
		}
	}
	nbJSON, err := doc.withCells(cells)
	if err != nil {
		return nil, fmt.Errorf("grade: %v", err)
	}
	n := g.seq.Add(1)
	name := fmt.Sprintf("%03d-%s", n, safeName.ReplaceAllString(label, "_"))
	sb := &sandboxDirs{root: filepath.Join(g.work, name)}
	uid := randomUID()
	weak := g.opt.Isolation == Weak
	if weak {
		uid = os.Getuid()
	}
	if err := sb.create(uid, weak, g.host.repo); err != nil {
		return nil, err
	}
	defer func() {
		if !g.opt.KeepWork {
			sb.remove()
		}
	}()
	gid := uid
	if weak {
		gid = os.Getgid()
	}
	copied, err := seedCache(g.template, sb.gocache, uid, gid)
	if err != nil {
		return nil, err
	}
	if copied && !weak {
		g.copiedCache = true
	}
	g.seedWeightDigests(sb, uid, gid)
	if err := writeOwned(sb.notebook, nbJSON, uid); err != nil {
		return nil, err
	}
	cfg, err := g.sandboxConfig(sb, uid)
	if err != nil {
		return nil, err
	}
	var cg *sandbox.Cgroup
	if !weak {
		if cg, err = sandbox.NewCgroup(name+fmt.Sprintf("-%d", os.Getpid()), g.opt.Memory, pidsLimit); err != nil {
			return nil, err
		}
		defer cg.Remove()
		cfg.CgroupProcs = cg.ProcsFiles()
	}
	cfg.ReportFile = sb.root + ".launch"
	defer os.Remove(cfg.ReportFile)
	cfgPath := sb.root + ".sandbox.json"
	if err := cfg.Write(cfgPath); err != nil {
		return nil, err
	}
	defer os.Remove(cfgPath)

	runCtx, stopRun := context.WithCancel(ctx)
	memStop := watchMemory(runCtx, cg, stopRun)
	res, runErr := nbrun.Run(runCtx, sb.notebook, nbrun.Options{
		OutDir:      sb.out,
		CellTimeout: g.opt.CellTimeout,
		Timeout:     g.opt.Timeout,
		KeepGoing:   true,
		NoHTML:      true,
		Env:         []string{sandbox.ConfigEnv + "=" + cfgPath, "HOME=/"},
		Python:      g.launcher,
	})
	stopRun()
	memStopped := <-memStop
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// The launcher's report, which the sandboxed code cannot write, tells a broken sandbox (the
	// grader's failure) from a broken notebook.
	if err := sandbox.ReadReport(cfg.ReportFile); err != nil {
		msg := ""
		if runErr != nil {
			msg = "\n" + runErr.Error()
		}
		return nil, fmt.Errorf("grade: sandbox for %s: %v%s", label, err, msg)
	}
	out := &runOutcome{values: map[string]*grade.Value{}, result: res}
	oom := 0
	if cg != nil {
		if st, err := cg.Stats(); err == nil {
			out.peak, oom = st.PeakMemory, st.OOMKills
		}
		if err := cg.Remove(); err != nil {
			return nil, err
		}
	}
	memNote := ""
	if oom > 0 {
		memNote = fmt.Sprintf(" (the memory limit of %s was exceeded: %d process(es) were killed)", formatBytes(g.opt.Memory), oom)
	}
	if res != nil && res.Executed != "" {
		// The launcher sanitized the output folder: this is a plain file of at most the
		// file-size limit.
		cp := sb.root + ".executed.ipynb"
		if err := CopyFile(res.Executed, cp, 0o644); err == nil {
			out.executedCopy = cp
		}
	}
	if keepCache != nil {
		if err := keepCache(sb.gocache); err != nil {
			return nil, err
		}
	}
	first := len(doc.cells) + 1 // 1-based index of the first export cell
	var runProblem string
	var re *nbrun.RunError
	switch {
	case errors.As(runErr, &re):
		// The Jupyter driver itself died (killed by the memory limit, typically while holding a
		// flood of output): nothing of the run is left to look at.
		runProblem = "the notebook's run was killed before it could finish" + memNote
		if memNote == "" {
			runProblem += ": " + re.Reason
		}
	case runErr != nil && res == nil:
		return nil, fmt.Errorf("grade: %s: %v", label, runErr)
	}
	if res != nil {
		for _, ce := range res.Errors {
			switch ce.Kind {
			case "deadline":
				runProblem = fmt.Sprintf("the notebook did not finish within %s (cell %d was running: %s)%s",
					g.opt.Timeout, ce.Cell, codeLine(ce.Source), memNote)
			case "timeout":
				runProblem = fmt.Sprintf("cell %d did not finish within %s, the limit for one cell (%s)%s",
					ce.Cell, g.opt.CellTimeout, codeLine(ce.Source), memNote)
			case "kernel died", "stopped":
				runProblem = fmt.Sprintf("the kernel stopped while running cell %d: %s%s", ce.Cell, ce.Summary, memNote)
				if memStopped {
					runProblem = fmt.Sprintf("cell after cell exceeded the memory limit of %s (%d processes were killed), "+
						"and the run was stopped in cell %d: the cells after it did not run", formatBytes(g.opt.Memory), oom, ce.Cell)
				}
			}
		}
	}
	out.problem = runProblem
	if res != nil && res.Cells != nil {
		var b strings.Builder
		for _, c := range res.Cells.Cells {
			if c.Index < first && c.Type == "code" {
				b.WriteString(nbrun.StripANSI(c.Stdout))
				if b.Len() > MaxOutputBytes {
					break
				}
			}
		}
		s := b.String()
		if len(s) > MaxOutputBytes {
			s = s[:MaxOutputBytes]
		}
		out.output = s
	}
	studentError := firstStudentError(res, first)
	cause := buildCause(res, first)
	uncompiled := len(variables) > 0
	for k, v := range variables {
		val, err := readExportSafe(sb.export, v)
		switch {
		case err == nil:
			out.values[v] = val
			uncompiled = false
			continue
		case !errors.Is(err, grade.ErrNotExported):
			out.values[v] = &grade.Value{Name: v, Missing: "the grader could not read " + v + ": " + err.Error()}
			uncompiled = false
			continue
		}
		why := missingReason(v, res, exportCellOf(res, len(doc.cells), len(variables), k), runProblem, studentError, cause, memNote)
		uncompiled = uncompiled && strings.HasPrefix(why, notCompiled)
		out.values[v] = &grade.Value{Name: v, Missing: why}
	}
	// Nothing could be read because no program builds: that is the run's problem, named with
	// the cell that broke the build and the compiler's message.
	if uncompiled && out.problem == "" {
		out.problem = notCompiled + ": " + cause
	}
	return out, nil
}

// missingReason explains why variable v was not recorded, from its export cell's fate.
//
// cause is buildCause's account of the first cell that does not build, given when the grader's
// own cell does not build either.
func missingReason(v string, res *nbrun.Result, cellIndex int, runProblem, studentError, cause, memNote string) string {
	if res == nil || res.Cells == nil || cellIndex > len(res.Cells.Cells) {
		if runProblem != "" {
			return runProblem
		}
		return v + " could not be read: the notebook run produced no executed notebook"
	}
	c := res.Cells.Cells[cellIndex-1]
	if c.ExecutionCount == 0 && len(c.Errors) == 0 {
		if runProblem != "" {
			return runProblem
		}
		return v + " could not be read: the notebook stopped before the grader's cells ran"
	}
	var text strings.Builder
	text.WriteString(nbrun.StripANSI(c.Stderr))
	for _, e := range c.Errors {
		text.WriteString("\n" + e.Value + "\n" + e.Text)
	}
	t := text.String()
	switch {
	case strings.Contains(t, "undefined: "+v):
		msg := v + " is not defined: declare it at the top level of a cell (var " + v + " = ...)"
		if studentError != "" {
			msg += "; note that " + studentError
		}
		return msg
	case strings.Contains(t, "panic:"):
		return "the notebook's declarations panic when they are initialised (every cell fails): " + panicLine(t) + memNote
	case memNote != "" && strings.Contains(t, "signal: killed"):
		return "the notebook was killed" + memNote
	case len(c.Errors) > 0 && buildFailed(t):
		// The grader's cell did not build although it declares nothing the student's code does
		// (a missing variable is the case above): what broke is common to every cell, typically
		// a setup cell that did not run, so that no cell finds the workbook's packages. GoNB
		// reports it as `go get` or `go build` exiting with status 1, which is no os.Exit.
		return notCompiled + ", so the grader cannot read " + v + ": " + cause + memNote
	case len(c.Errors) > 0 && strings.Contains(t, "exit status"):
		return "the notebook's program exits before the grader can read " + v + " (" + exitLine(t) + "): os.Exit or log.Fatal during initialisation?" + memNote
	case len(c.Errors) > 0:
		return "the grader's cell reading " + v + " failed: " + firstMeaningfulLine(t) + memNote
	}
	return "the notebook's program ended before the grader could read " + v + " (os.Exit during initialisation?)" + memNote
}

// buildFailed reports whether a cell's error text is GoNB's report that it could not build the
// cell's program: `go build`, `go get` or goimports failed, or the code does not parse.
func buildFailed(t string) bool {
	return strings.Contains(t, "failed to run") && (strings.Contains(t, " build ") || strings.Contains(t, "go get") || strings.Contains(t, "goimports")) ||
		strings.Contains(t, "parsing go files")
}

// cellLine matches GoNB's compile-error lines, which name the cell by its execution count and
// the line within it: "Cell[3]: Line 5 ./main.go:12:2: undefined: x" (a parse error names the
// file by its full path).
var cellLine = regexp.MustCompile(`Cell\[(\d+)\]: Line (\d+) (?:\S+\.go:\d+:\d+: )?(.*)`)

const notCompiled = "the notebook does not compile"

// buildCause names the first cell that fails to build, as a student sees it: "In [3], line 5:
// undefined: x" (the compiler's first message), or "In [3]: <what GoNB says>" when `go get` or
// goimports failed. When no cell finds the workbook's own packages, the setup cell did not do its
// work, and the message says so (and what the setup cell printed, if its command failed). Empty
// when no cell failed to build.
func buildCause(res *nbrun.Result, first int) string {
	if res == nil {
		return ""
	}
	msg, noWorkbook := "", false
	for _, ce := range res.Errors {
		t := ce.Summary + "\n" + ce.Text
		if !buildFailed(t) {
			continue
		}
		noWorkbook = noWorkbook || strings.Contains(t, "module providing package "+setup.ModulePath+"/")
		if msg != "" {
			continue
		}
		if m := cellLine.FindStringSubmatch(t); m != nil {
			msg = fmt.Sprintf("In [%s], line %s: %s", m[1], m[2], strings.TrimSpace(m[3]))
		} else {
			msg = fmt.Sprintf("In [%d]: %s", ce.ExecutionCount, buildMessage(t))
		}
		if ce.Cell >= first {
			msg = "the grader's cell " + msg
		}
	}
	if noWorkbook {
		msg += "; no cell finds the workbook's packages: the setup cell (the notebook's first code cell) must run, unchanged, before any other"
		if s := setupFailure(res.Cells, first); s != "" {
			msg += " (" + s + ")"
		}
	}
	return msg
}

// buildMessage is the line of GoNB's report on a failed `go get` or goimports that says what is
// wrong (which package cannot be found), not which command failed.
func buildMessage(t string) string {
	for _, l := range strings.Split(t, "\n") {
		if l = strings.TrimSpace(l); strings.Contains(l, "cannot find module") || strings.Contains(l, "no required module") {
			return l
		}
	}
	return firstMeaningfulLine(t)
}

// setupFailure describes the notebook's first code cell if it is a shell cell ("!" lines, as the
// setup cell is) whose command failed: GoNB then prints the command's stderr and "exit status
// N" but raises no error.
func setupFailure(nb *nbrun.Notebook, first int) string {
	if nb == nil {
		return ""
	}
	for _, c := range nb.Cells {
		if c.Index >= first {
			break
		}
		if c.Type != "code" {
			continue
		}
		stderr := strings.TrimSpace(nbrun.StripANSI(c.Stderr))
		if !strings.HasPrefix(strings.TrimSpace(c.Source), "!") || !strings.Contains(stderr, "exit status") {
			return ""
		}
		return fmt.Sprintf("In [%d] failed: %s", c.ExecutionCount, firstLine(stderr))
	}
	return ""
}

// firstStudentError describes the first failing cell among the student's own, if any.
func firstStudentError(res *nbrun.Result, first int) string {
	if res == nil {
		return ""
	}
	for _, ce := range res.Errors {
		if ce.Cell < first {
			return fmt.Sprintf("cell %d fails: %s", ce.Cell, firstMeaningfulLine(ce.Summary+"\n"+ce.Text))
		}
	}
	return ""
}

// codeLine is the line of a cell's source that names it in a message: the first that says
// something (not blank, a comment or an import) in the part GoNB runs (after "%%"), or else
// in the whole cell.
func codeLine(src string) string {
	if _, run, ok := strings.Cut(src, "\n%%\n"); ok {
		if l := firstStatement(run); l != "" {
			return l
		}
	}
	if l := firstStatement(strings.TrimPrefix(src, "%%\n")); l != "" {
		return l
	}
	return firstLine(strings.TrimSpace(src))
}

// firstStatement is the first line of code that is not blank, a comment, "%%" or part of an
// import declaration.
func firstStatement(code string) string {
	inImport := false
	for _, l := range strings.Split(code, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case inImport:
			inImport = l != ")"
		case strings.HasPrefix(l, "import ("):
			inImport = true
		case l == "" || l == "%%" || strings.HasPrefix(l, "//") || strings.HasPrefix(l, "import "):
		default:
			return l
		}
	}
	return ""
}

func panicLine(t string) string {
	for _, l := range strings.Split(t, "\n") {
		if i := strings.Index(l, "panic:"); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return "panic"
}

func exitLine(t string) string {
	for _, l := range strings.Split(t, "\n") {
		if i := strings.Index(l, "exit status"); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return "exit status"
}

func firstMeaningfulLine(t string) string {
	for _, l := range strings.Split(t, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "failed to run") {
			return l
		}
	}
	return strings.TrimSpace(t)
}

// readExportSafe opens dir/name.json without following any symlink (the folder belongs to the
// sandbox user) and refuses anything but a plain file.
func readExportSafe(dir, name string) (*grade.Value, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("export folder: %v", err)
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, name+".json", &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, grade.ErrNotExported
	}
	if err != nil {
		return nil, fmt.Errorf("open %s.json: %v", name, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, name+".json"))
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s.json is not a plain file", name)
	}
	return grade.DecodeExport(f, f.Name(), name)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

func writeOwned(path string, b []byte, uid int) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("grade: %v", err)
	}
	if err := os.Lchown(path, uid, uid); err != nil && os.Getuid() == 0 {
		return fmt.Errorf("grade: %v", err)
	}
	return nil
}

// memoryStopKills is how many processes the memory limit may kill before a run is stopped. A
// notebook whose declarations allocate too much fails in every cell alike (each cell is a new
// process that re-evaluates them), and each of those cells costs seconds of page faults before
// it is killed; one cell that asks for too much once is only one kill, and the run goes on.
const memoryStopKills = 2

// watchMemory cancels the run (stop) once the sandbox's memory limit has killed
// memoryStopKills processes. The channel it returns says, once ctx is done, whether it did.
func watchMemory(ctx context.Context, cg *sandbox.Cgroup, stop func()) <-chan bool {
	done := make(chan bool, 1)
	if cg == nil {
		done <- false
		return done
	}
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- false
				return
			case <-tick.C:
				if st, err := cg.Stats(); err == nil && st.OOMKills >= memoryStopKills {
					stop()
					done <- true
					return
				}
			}
		}
	}()
	return done
}
