package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/setup"
)

func init() {
	register(&command{
		name:  "notebooks",
		short: "run the notebooks headless (run) or open them in Jupyter (open)",
		usage: "run [--out DIR] [--timeout D] [--notebook-timeout D] [--keep-going] [--no-html] [NOTEBOOK|DIR...] | open [JUPYTER FLAGS...]",
		run:   runNotebooks,
	})
	register(&command{
		name:  "jupyter",
		short: "open Jupyter on notebooks/ (same as `notebooks open`)",
		usage: "[JUPYTER FLAGS...]   e.g. --no-browser --ip=0.0.0.0 --port=8888",
		run:   runJupyter,
	})
}

func runNotebooks(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stderr, "Subcommands:")
		fmt.Fprintln(stderr, "  run   execute notebooks with the GoNB kernel; writes executed .ipynb, .html and .log files")
		fmt.Fprintln(stderr, "  open  open Jupyter on notebooks/ (flags go to `jupyter notebook`)")
		fmt.Fprintln(stderr, "\nFlags of run:")
		fs, _ := notebooksRunFlags()
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		if len(args) == 0 {
			return usagef("missing subcommand (run or open)")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "run":
		return runNotebooksRun(args[1:])
	case "open":
		return runJupyter(args[1:])
	}
	return usagef("unknown subcommand %q (want run or open)", args[0])
}

type notebooksRunOptions struct {
	out             *string
	timeout         *time.Duration
	notebookTimeout *time.Duration
	keepGoing       *bool
	noHTML          *bool
}

func notebooksRunFlags() (*flag.FlagSet, *notebooksRunOptions) {
	fs := newFlagSet("notebooks run")
	o := &notebooksRunOptions{
		out:             fs.String("out", "", "folder for the executed notebooks, HTML and logs (default <checkout>/out/notebooks)"),
		timeout:         fs.Duration("timeout", nbrun.DefaultCellTimeout, "limit for each cell (nbconvert's ExecutePreprocessor.timeout); 0 or less: none"),
		notebookTimeout: fs.Duration("notebook-timeout", 0, "limit for each whole notebook; 0: none"),
		keepGoing:       fs.Bool("keep-going", false, "run the remaining cells after a failing one (nbconvert --allow-errors)"),
		noHTML:          fs.Bool("no-html", false, "do not write the HTML export"),
	}
	return fs, o
}

// runNotebooksRun executes notebooks (default: every notebook in <checkout>/notebooks, sorted) one
// after another, each in a fresh kernel started in the notebook's folder, and fails naming the
// notebook, cell and error text if any cell fails.
func runNotebooksRun(args []string) error {
	fs, o := notebooksRunFlags()
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, rootErr := setup.RepoRoot(".")
	if len(paths) == 0 {
		if rootErr != nil {
			return fmt.Errorf("no notebooks named and %v", rootErr)
		}
		paths = []string{filepath.Join(root, "notebooks")}
	}
	var notebooks []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			notebooks = append(notebooks, p)
			continue
		}
		found, err := nbrun.Discover(p)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("no notebooks in %s", p)
		}
		notebooks = append(notebooks, found...)
	}
	outDir := *o.out
	if outDir == "" {
		if rootErr != nil {
			return usagef("--out is required outside the checkout (%v)", rootErr)
		}
		outDir = filepath.Join(root, "out", "notebooks")
	}
	env, err := setup.KernelEnv(ctx)
	if err != nil {
		return err
	}
	cellTimeout := *o.timeout
	if cellTimeout <= 0 {
		cellTimeout = -1
	}
	opt := nbrun.Options{
		OutDir: outDir, CellTimeout: cellTimeout, Timeout: *o.notebookTimeout,
		KeepGoing: *o.keepGoing, NoHTML: *o.noHTML, Env: env,
	}
	fmt.Fprintf(stdout, "running %d notebook(s) with the %s kernel; output in %s\n", len(notebooks), nbrun.DefaultKernel, outDir)
	failed := 0
	_, err = nbrun.RunAll(ctx, notebooks, opt, func(res *nbrun.Result, err error) {
		name := filepath.Base(res.Notebook)
		if err == nil {
			fmt.Fprintf(stdout, "ok    %-40s %6.1fs\n", name, res.Duration.Seconds())
			return
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %-40s %6.1fs\n", name, res.Duration.Seconds())
		if len(res.Errors) == 0 {
			fmt.Fprintf(stderr, "%v\n", err) // the run itself failed (*nbrun.RunError)
		}
		for _, ce := range res.Errors {
			fmt.Fprintf(stderr, "%v\n", ce)
		}
		if res.Log != "" {
			fmt.Fprintf(stderr, "    kernel log: %s\n", res.Log)
		}
	})
	if err != nil {
		if failed > 0 {
			return fmt.Errorf("%d of %d notebooks failed", failed, len(notebooks))
		}
		return err
	}
	return nil
}

// runJupyter replaces this process with Debian's `jupyter notebook` on <checkout>/notebooks, with
// go, goimports and gopls put on the kernel's PATH. Arguments go to Jupyter unchanged.
func runJupyter(args []string) error {
	if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
		fmt.Fprintln(stderr, "Flags: any `jupyter notebook` flag, passed through (see `/usr/bin/jupyter notebook --help`).")
		return flag.ErrHelp
	}
	root, err := setup.RepoRoot(".")
	if err != nil {
		return err
	}
	if os.Geteuid() == 0 && !slices.Contains(args, "--allow-root") {
		// Jupyter refuses to start as root without it (containers, classroom VMs).
		fmt.Fprintln(stderr, "workbook jupyter: running as root, adding --allow-root")
		args = append(args, "--allow-root")
	}
	cmd, err := setup.NotebookCommand(context.Background(), root, args)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "workbook jupyter: %s\n", cmd.String())
	// Exec rather than a child process: Ctrl-C and Jupyter's "shut down?" prompt then behave
	// exactly as when Jupyter is started by hand.
	if err := os.Chdir(cmd.Dir); err != nil {
		return err
	}
	path, err := exec.LookPath(cmd.Path)
	if err != nil {
		return err
	}
	return syscall.Exec(path, cmd.Args, cmd.Env)
}
