// Package setup installs and checks what the workbook's Go notebooks need on a Debian or Ubuntu
// machine: Debian's Jupyter (notebook, nbconvert, nbclient, ipykernel), the GoNB kernel at a pinned
// version, goimports and gopls, and the kernel registration for /usr/bin/jupyter.
//
// Every step first checks and only then acts, so running it twice does nothing the second time.
// We use Debian's /usr/bin/python3 and /usr/bin/jupyter on purpose: the python first on PATH is often
// another interpreter (pyenv, conda, a virtualenv) that lacks Jupyter or reads another kernel
// directory, and the notebooks must run the same way for every student and for CI.
package setup

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// Fixed locations of Debian's Jupyter. Notebooks are always run by these, never by whatever
// python or jupyter comes first on PATH.
const (
	Jupyter = "/usr/bin/jupyter"
	Python  = "/usr/bin/python3"
)

// KernelName is the Jupyter kernel name GoNB registers and the notebooks declare.
const KernelName = "gonb"

// AptPackages are the Debian packages that provide Jupyter for the notebooks.
var AptPackages = []string{"jupyter-notebook", "jupyter-nbconvert", "python3-nbclient", "python3-ipykernel"}

// Tool is a Go program the kernel needs, pinned to a module version.
type Tool struct {
	Name    string // binary name
	Package string // package path given to `go install`
	Module  string // module that carries the version (checked in the binary's build info)
	Version string
}

// Tools are the Go programs GoNB needs: itself, goimports (it rewrites each cell's imports) and gopls
// (completion and contextual help in the browser).
var Tools = []Tool{
	{Name: "gonb", Package: "github.com/janpfeifer/gonb", Module: "github.com/janpfeifer/gonb", Version: "v0.11.4"},
	{Name: "goimports", Package: "golang.org/x/tools/cmd/goimports", Module: "golang.org/x/tools", Version: "v0.36.0"},
	{Name: "gopls", Package: "golang.org/x/tools/gopls", Module: "golang.org/x/tools/gopls", Version: "v0.20.0"},
}

// Outcome says what a step found or did.
type Outcome int

const (
	Present   Outcome = iota // already in place; nothing done
	Installed                // was missing (or wrong) and is now in place and verified
	Failed                   // missing and could not be put in place; Detail says what to do
	Skipped                  // not attempted, because an earlier step failed or it was switched off
	Passed                   // a check that ran and succeeded (the smoke test)
)

func (o Outcome) String() string {
	switch o {
	case Present:
		return "present"
	case Installed:
		return "installed"
	case Failed:
		return "FAILED"
	case Skipped:
		return "skipped"
	case Passed:
		return "passed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Step is one line of the summary.
type Step struct {
	Name     string
	Outcome  Outcome
	Detail   string
	Duration time.Duration // wall time spent on the step
}

// Report is the outcome of Run.
type Report struct {
	Steps []Step
	last  time.Time // end of the previous step; each step's Duration is measured from it
}

// OK reports whether no step failed.
func (r *Report) OK() bool {
	for _, s := range r.Steps {
		if s.Outcome == Failed {
			return false
		}
	}
	return true
}

// WriteSummary prints one aligned line per step.
func (r *Report) WriteSummary(w io.Writer) {
	width := 0
	for _, s := range r.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  %-*s  %-9s %6.1fs  %s\n", width, s.Name, s.Outcome, s.Duration.Seconds(), s.Detail)
	}
}

func (r *Report) add(name string, o Outcome, format string, args ...any) {
	now := time.Now()
	r.Steps = append(r.Steps, Step{Name: name, Outcome: o, Detail: fmt.Sprintf(format, args...), Duration: now.Sub(r.last)})
	r.last = now
}

// Options tune Run.
type Options struct {
	// Log receives progress lines and the output of the commands run (apt-get, go, gonb).
	// Nil discards them.
	Log io.Writer
	// CheckOnly reports what is missing without installing anything.
	CheckOnly bool
	// Smoke, when set, is called last to run a one-cell notebook through the kernel; its error fails
	// the "kernel smoke test" step. The caller supplies it so this package does not depend on the
	// notebook runner.
	Smoke func(ctx context.Context, env []string) error
}

// Run checks every requirement in order, installs what is missing (unless CheckOnly), verifies it,
// and returns the summary. It stops installing after the first failure that later steps depend on.
func Run(ctx context.Context, opt Options) *Report {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	r := &Report{last: time.Now()}

	jupyterOK := aptStep(ctx, opt, r)

	goEnv, err := ReadGoEnv(ctx)
	if err != nil {
		r.add("go", Failed, "%v (install Go 1.26 from https://go.dev/dl and put its bin/ on PATH)", err)
		for _, t := range Tools {
			r.add(t.Name, Skipped, "needs go")
		}
		r.add("kernel registration", Skipped, "needs go")
		r.add("kernel smoke test", Skipped, "needs go")
		return r
	}
	r.add("go", Present, "%s at %s", goEnv.Version, goEnv.GoBinary())
	r.add("cell builds", Present, "%s", CellBuildNote())
	env := KernelEnvFrom(os.Environ(), goEnv)

	toolsOK := true
	for _, t := range Tools {
		if !toolStep(ctx, opt, r, goEnv, env, t) {
			toolsOK = false
		}
	}
	if !onPath(goEnv.BinDir()) {
		fmt.Fprintf(opt.Log, "note: %s is not on your PATH; `workbook jupyter` and `workbook notebooks run` add it for the kernel,\n"+
			"      but to start Jupyter yourself first run: export PATH=\"%s:$PATH\"\n", goEnv.BinDir(), goEnv.BinDir())
	}

	kernelOK := false
	switch {
	case !jupyterOK || !toolsOK:
		r.add("kernel registration", Skipped, "needs Jupyter and the Go tools")
	default:
		kernelOK = kernelStep(ctx, opt, r, goEnv, env)
	}

	switch {
	case opt.Smoke == nil:
	case !kernelOK:
		r.add("kernel smoke test", Skipped, "needs a registered kernel")
	default:
		fmt.Fprintf(opt.Log, "== running a one-cell notebook through the %s kernel\n", KernelName)
		if err := opt.Smoke(ctx, env); err != nil {
			r.add("kernel smoke test", Failed, "%v", err)
		} else {
			r.add("kernel smoke test", Passed, "a Go cell ran headless (%s, nbclient, %s kernel)", Python, KernelName)
		}
	}
	return r
}

// aptStep makes sure Debian's Jupyter packages are installed and that /usr/bin/jupyter can run
// nbconvert and import nbclient and ipykernel.
func aptStep(ctx context.Context, opt Options, r *Report) bool {
	const name = "jupyter (apt)"
	var missing []string
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		// Not Debian-like: accept a working /usr/bin/jupyter, otherwise say what is needed.
		if err := verifyJupyter(ctx); err != nil {
			r.add(name, Failed, "no dpkg-query (not Debian/Ubuntu?) and %v; install Jupyter with nbconvert, nbclient and ipykernel so that %s works", err, Jupyter)
			return false
		}
		r.add(name, Present, "%s works (not installed through apt)", Jupyter)
		return true
	}
	for _, p := range AptPackages {
		if !debInstalled(ctx, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		if err := verifyJupyter(ctx); err != nil {
			r.add(name, Failed, "packages installed but %v", err)
			return false
		}
		r.add(name, Present, "%s", strings.Join(AptPackages, ", "))
		return true
	}
	installCmd := "apt-get install -y " + strings.Join(missing, " ")
	if opt.CheckOnly {
		r.add(name, Failed, "missing %s; run: sudo apt-get update && sudo %s", strings.Join(missing, ", "), installCmd)
		return false
	}
	prefix, why := privilege(ctx)
	if prefix == nil {
		r.add(name, Failed, "missing %s and %s; run: sudo apt-get update && sudo %s, then run setup again",
			strings.Join(missing, ", "), why, installCmd)
		return false
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	fmt.Fprintf(opt.Log, "== apt-get update (missing: %s)\n", strings.Join(missing, " "))
	if err := runLogged(ctx, opt.Log, env, "", prefix, "apt-get", "update"); err != nil {
		r.add(name, Failed, "apt-get update: %v", err)
		return false
	}
	fmt.Fprintf(opt.Log, "== %s\n", installCmd)
	args := append([]string{"install", "-y"}, missing...)
	if err := runLogged(ctx, opt.Log, env, "", prefix, "apt-get", args...); err != nil {
		r.add(name, Failed, "%s: %v", installCmd, err)
		return false
	}
	for _, p := range missing {
		if !debInstalled(ctx, p) {
			r.add(name, Failed, "%s reported success but %s is still not installed", installCmd, p)
			return false
		}
	}
	if err := verifyJupyter(ctx); err != nil {
		r.add(name, Failed, "installed %s but %v", strings.Join(missing, ", "), err)
		return false
	}
	r.add(name, Installed, "%s", strings.Join(missing, ", "))
	return true
}

// debInstalled reports whether dpkg knows the package as installed ("ii").
func debInstalled(ctx context.Context, pkg string) bool {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg).Output()
	return err == nil && strings.HasPrefix(string(out), "ii")
}

// verifyJupyter checks the pieces the notebooks use, through Debian's interpreter.
func verifyJupyter(ctx context.Context) error {
	if _, err := os.Stat(Jupyter); err != nil {
		return fmt.Errorf("%s is missing", Jupyter)
	}
	// `jupyter nbconvert` dispatches to this script; checking it is cheaper than starting it.
	if _, err := os.Stat(Jupyter + "-nbconvert"); err != nil {
		return fmt.Errorf("%s-nbconvert is missing", Jupyter)
	}
	if out, err := exec.CommandContext(ctx, Python, "-c", "import nbclient, nbconvert, nbformat, ipykernel, notebook").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot import nbclient/nbconvert/nbformat/ipykernel/notebook: %v: %s", Python, err, lastLines(out, 3))
	}
	return nil
}

// privilege returns the command prefix that runs apt-get as root (empty when we are root, sudo -n
// when sudo works without a password), or nil and the reason why we cannot.
func privilege(ctx context.Context) ([]string, string) {
	if os.Geteuid() == 0 {
		return []string{}, ""
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		return nil, "this user is not root and sudo is not installed"
	}
	if err := exec.CommandContext(ctx, "sudo", "-n", "true").Run(); err != nil {
		return nil, "this user is not root and sudo needs a password"
	}
	return []string{"sudo", "-n"}, ""
}

// toolStep makes sure GOBIN holds the tool at the pinned version.
func toolStep(ctx context.Context, opt Options, r *Report, g *GoEnv, env []string, t Tool) bool {
	bin := filepath.Join(g.BinDir(), t.Name)
	have, err := BinaryModuleVersion(bin, t.Module)
	if err == nil && have == t.Version {
		r.add(t.Name, Present, "%s %s at %s", t.Module, t.Version, bin)
		return true
	}
	state := "missing"
	if err == nil {
		state = "at " + have
	} else if !errors.Is(err, os.ErrNotExist) {
		state = err.Error()
	}
	if opt.CheckOnly {
		r.add(t.Name, Failed, "%s (%s); want %s", bin, state, t.Version)
		return false
	}
	fmt.Fprintf(opt.Log, "== installing %s@%s into %s (%s)\n", t.Package, t.Version, g.BinDir(), state)
	if err := installTool(ctx, opt.Log, env, t); err != nil {
		r.add(t.Name, Failed, "%v", err)
		return false
	}
	have, err = BinaryModuleVersion(bin, t.Module)
	if err != nil || have != t.Version {
		r.add(t.Name, Failed, "installed, but %s reports %q (%v), want %s", bin, have, err, t.Version)
		return false
	}
	r.add(t.Name, Installed, "%s %s at %s", t.Module, t.Version, bin)
	return true
}

// installTool builds the tool from a scratch module that requires it at the pinned version.
//
// `go install pkg@version` first asks the proxy for the module's version list (to check for
// retractions and deprecations); a proxy that refuses that list (403) makes it fail even though the
// version itself is served. `go get pkg@version` inside a module fetches the version directly, and
// `go install pkg` from there builds exactly that version. Each tool gets its own scratch module so
// that one tool's requirements cannot move another's version.
func installTool(ctx context.Context, log io.Writer, env []string, t Tool) error {
	dir, err := os.MkdirTemp("", "workbook-tool-*")
	if err != nil {
		return fmt.Errorf("setup: scratch module for %s: %w", t.Name, err)
	}
	defer os.RemoveAll(dir)
	// GOWORK=off: a go.work the user set up elsewhere must not leak into the scratch module.
	env = append(env, "GOWORK=off")
	steps := [][]string{
		{"mod", "init", "workbook.local/tools"},
		{"get", t.Package + "@" + t.Version},
		{"install", t.Package},
	}
	for _, args := range steps {
		if err := runLogged(ctx, log, env, dir, nil, "go", args...); err != nil {
			return fmt.Errorf("`go %s` for %s: %w", strings.Join(args, " "), t.Name, err)
		}
	}
	return nil
}

// BinaryModuleVersion returns the version of module mod that the Go binary at path was built with
// (the main module or a dependency, so it works for `go install pkg@v` and for builds from a
// scratch module alike).
func BinaryModuleVersion(path, mod string) (string, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", err
	}
	if bi.Main.Path == mod {
		return bi.Main.Version, nil
	}
	for _, d := range bi.Deps {
		if d.Path == mod {
			if d.Replace != nil {
				return d.Replace.Version, nil
			}
			return d.Version, nil
		}
	}
	return "", fmt.Errorf("setup: %s was not built with module %s", path, mod)
}

// kernelStep registers GoNB for /usr/bin/jupyter unless a registration already points at our
// binary, then verifies it through FindKernelSpec.
func kernelStep(ctx context.Context, opt Options, r *Report, g *GoEnv, env []string) bool {
	const name = "kernel registration"
	gonb := filepath.Join(g.BinDir(), "gonb")
	spec, err := FindKernelSpec(ctx, env)
	if err == nil && spec.runs(gonb) {
		r.add(name, Present, "%q in %s runs %s", KernelName, spec.ResourceDir, spec.Argv[0])
		return true
	}
	why := "not registered"
	if err == nil {
		why = fmt.Sprintf("registered in %s but runs %q", spec.ResourceDir, spec.Argv[0])
	} else if !errors.Is(err, errNoKernel) {
		why = err.Error()
	}
	if opt.CheckOnly {
		r.add(name, Failed, "%s; run: %s --install", why, gonb)
		return false
	}
	fmt.Fprintf(opt.Log, "== %s --install (%s)\n", gonb, why)
	// -logtostderr: GoNB logs through klog; without it the install message goes to a temp log file.
	if err := runLogged(ctx, opt.Log, env, "", nil, gonb, "--install", "--logtostderr"); err != nil {
		r.add(name, Failed, "%s --install: %v", gonb, err)
		return false
	}
	spec, err = FindKernelSpec(ctx, env)
	if err != nil {
		r.add(name, Failed, "after %s --install, %s does not see it: %v (is JUPYTER_DATA_DIR or JUPYTER_PATH set differently for the two?)", gonb, Jupyter, err)
		return false
	}
	if !spec.runs(gonb) {
		r.add(name, Failed, "after %s --install, the %q kernel in %s runs %q", gonb, KernelName, spec.ResourceDir, spec.Argv[0])
		return false
	}
	r.add(name, Installed, "%q in %s runs %s", KernelName, spec.ResourceDir, spec.Argv[0])
	return true
}

var errNoKernel = errors.New("setup: no gonb kernel registered")

// CellGoFlags is what the kernel's environment adds to GOFLAGS (KernelEnvFrom, the grader's
// sandbox, the classroom's student servers) for the programs GoNB builds: one per cell run, each
// linking all of GoMLX. go-xla uses cgo, so by default the go command hands the link to the
// system's C linker, with DWARF: 3.8 s a cell on two cores. Go's own linker without DWARF takes
// 1.8 s and gives a program that is still dynamically linked to libc, so XLA's PJRT plugins load
// with dlopen as before; panics keep their file:line stack traces (those come from the symbol
// table, not DWARF). The quotes keep the -ldflags value one GOFLAGS entry. It is added to the
// environment rather than to the kernelspec, whose env would replace the GOFLAGS a launcher sets
// (the classroom's -trimpath, a pod's -mod=mod).
const CellGoFlags = "'-ldflags=-linkmode=internal -w'"

// noXLAFlag builds cells without GoMLX's XLA backend (see CellsUseXLA).
const noXLAFlag = "-tags=noxla"

// WithCellGoFlags is goflags with CellGoFlags added (once), and noXLAFlag where cells do not use
// XLA (CellsUseXLA) and goflags sets no build tags of its own.
func WithCellGoFlags(goflags string) string {
	out := goflags
	if !strings.Contains(out, CellGoFlags) {
		out += " " + CellGoFlags
	}
	if !strings.Contains(out, "-tags") && !CellsUseXLA() {
		out += " " + noXLAFlag
	}
	return strings.TrimSpace(out)
}

// CellsUseXLA reports whether notebook cells are built with GoMLX's XLA backend: only where a
// cell's program would choose it — a PJRT plugin is installed, or GOMLX_BACKEND names XLA
// (backend.PlanFromEnvironment, the rule every cell follows when it creates its backend).
// Elsewhere each cell would link the XLA backend and its cgo runtime for nothing and search for
// plugins at every start: without them a graded notebook runs in 27 s instead of 35 s. The
// decision is taken when the kernel's environment is made, so a plugin installed later is used
// after the kernel (the classroom, the grader) is started again.
func CellsUseXLA() bool {
	plan, err := backend.PlanFromEnvironment()
	return err != nil || plan.Kind != backend.KindGo
}

// CellBuildNote says how cells are built here, for the set-up summary.
func CellBuildNote() string {
	if CellsUseXLA() {
		return "cells link GoMLX's XLA backend (a PJRT plugin is installed or GOMLX_BACKEND names XLA)"
	}
	return "cells are built without GoMLX's XLA backend (" + noXLAFlag + "): no PJRT plugin is installed, so they " +
		"run on the pure-Go backend and the engine; install a plugin and restart Jupyter to use XLA"
}

// KernelSpec is the part of a Jupyter kernel registration we check.
type KernelSpec struct {
	ResourceDir string
	Argv        []string
}

func (k *KernelSpec) runs(bin string) bool {
	if len(k.Argv) == 0 {
		return false
	}
	a, err1 := os.Stat(k.Argv[0])
	b, err2 := os.Stat(bin)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// FindKernelSpec asks Debian's jupyter_client (the library nbclient and the notebook server use to
// start kernels, run by /usr/bin/python3 rather than the python first on PATH) which gonb kernel it
// would start. Debian's `jupyter kernelspec` command lives in another package (jupyter-client), so we
// ask the library directly.
func FindKernelSpec(ctx context.Context, env []string) (*KernelSpec, error) {
	const script = `import json
from jupyter_client.kernelspec import KernelSpecManager
print(json.dumps(KernelSpecManager().get_all_specs()))`
	cmd := exec.CommandContext(ctx, Python, "-c", script)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("setup: listing kernels with %s jupyter_client: %v: %s", Python, err, lastLines(stderr.Bytes(), 3))
	}
	var specs map[string]struct {
		ResourceDir string `json:"resource_dir"`
		Spec        struct {
			Argv []string `json:"argv"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out, &specs); err != nil {
		return nil, fmt.Errorf("setup: kernel list from %s jupyter_client: %v", Python, err)
	}
	k, ok := specs[KernelName]
	if !ok {
		return nil, errNoKernel
	}
	return &KernelSpec{ResourceDir: k.ResourceDir, Argv: k.Spec.Argv}, nil
}

// runLogged runs a command with its output streamed, indented, to log; on failure the error carries
// the last lines of that output.
func runLogged(ctx context.Context, log io.Writer, env []string, dir string, prefix []string, name string, args ...string) error {
	if len(prefix) > 0 {
		args = append(append(prefix[1:], name), args...)
		name = prefix[0]
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = dir
	var tail bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fmt.Fprintf(log, "   | %s\n", sc.Text())
			tail.WriteString(sc.Text() + "\n")
			if tail.Len() > 64*1024 {
				tail.Next(tail.Len() - 32*1024)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLines(tail.Bytes(), 5))
	}
	return nil
}

// lastLines returns the last n non-empty lines of out, joined by " / ", for one-line error messages.
func lastLines(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func onPath(dir string) bool {
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.Clean(p) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}
