package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/internal/grade/batch"
	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/solutions/checks"
)

func init() {
	// The grader starts each submission through this very binary, re-executed as the sandbox
	// launcher; in that role it never reaches main.
	sandbox.Init()
	register(&command{
		name:  "grade",
		short: "grade students' notebooks for one exercise in sandboxes: gradebook, report and feedback",
		usage: "--exercise ID [--jobs N] [--timeout 10m] [--memory 4GiB] [--out DIR] [8.03: --quick | --epochs N --steps N --val-steps N --batch N] [--data DIR] SUBMISSION.ipynb|FOLDER...",
		run:   runGrade,
	})
}

func runGrade(args []string) error {
	fs := newFlagSet("grade")
	exercise := fs.String("exercise", "", `exercise or activity to grade: 8.01, A8.01, 8.02, 8.03, 8.04, A8.02 (or exercise-8.01, activity-8.01, ...)`)
	jobs := fs.Int("jobs", 1, "submissions graded at the same time (each needs up to --memory and a CPU core)")
	timeout := fs.Duration("timeout", batch.DefaultTimeout, "wall-clock limit for one submission's whole notebook")
	cellTimeout := fs.Duration("cell-timeout", 0, "wall-clock limit for one cell (default: --timeout): a cell that never ends is stopped sooner")
	memory := fs.String("memory", "4GiB", "memory limit for one submission: kernel, compiler and program together")
	out := fs.String("out", "", "folder for gradebook.csv, report.json, feedback/ and executed/ (default grades-ID)")
	isolation := fs.String("isolation", string(batch.Sandbox), `"sandbox" (needs root) or "weak" (runs students' code as you; see solutions/README.md)`)
	workDir := fs.String("work", "", "folder for the sandboxes while they run (default: a temporary folder)")
	keepWork := fs.Bool("keep-work", false, "keep the sandbox folders afterwards (for debugging)")
	cacheDir := fs.String("gocache", "", "the grader's build cache template (default ~/.cache/transfer-learning-go/grade-gocache)")
	checksDir := fs.String("checks", "", "read the checks files from this folder instead of the ones built in (solutions/checks)")
	// Exercise 8.03 only: the training run every submission and the reference make.
	data := fs.String("data", "", "8.03: folder with training_set/ and test_set/ (default: the shipped sample)")
	quick := fs.Bool("quick", false, "8.03: the notebook's WORKBOOK_QUICK=1 schedule (1 epoch of 2 steps, 1 validation step, batch 2) instead of the book's")
	epochs := fs.Int("epochs", 0, "8.03: epochs (default: the book's 10)")
	steps := fs.Int("steps", 0, "8.03: steps_per_epoch (default: the book's 100)")
	valSteps := fs.Int("val-steps", 0, "8.03: validation_steps (default: the book's 30)")
	batchSize := fs.Int("batch", 0, "8.03: batch_size (default: the book's 32)")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	mem, err := parseBytes(*memory)
	switch {
	case *exercise == "":
		return usagef("--exercise is required")
	case err != nil:
		return usagef("--memory: %v", err)
	case *jobs < 1:
		return usagef("--jobs must be at least 1")
	case *timeout <= 0:
		return usagef("--timeout must be positive")
	case len(paths) == 0:
		return usagef("no submissions given")
	}

	var specs []*grade.Spec
	if *checksDir != "" {
		specs, err = grade.LoadSpecs(os.DirFS(*checksDir))
	} else {
		specs, err = checks.Load()
	}
	if err != nil {
		return err
	}
	spec, err := grade.FindSpec(specs, *exercise)
	if err != nil {
		return err
	}
	finetune := spec.Task == grade.TaskFinetune
	schedule := grade.BookSchedule
	if *quick {
		schedule = grade.QuickSchedule
	}
	for _, k := range []struct {
		name string
		v    int
		dst  *int
	}{{"epochs", *epochs, &schedule.Epochs}, {"steps", *steps, &schedule.Steps}, {"val-steps", *valSteps, &schedule.ValSteps}, {"batch", *batchSize, &schedule.Batch}} {
		switch {
		case k.v == 0:
		case !finetune:
			return usagef("--%s is for the fine-tuning exercise (8.03), not %s", k.name, spec.ID)
		case k.v < 0:
			return usagef("--%s must be at least 1", k.name)
		default:
			*k.dst = k.v
		}
	}
	if !finetune && (*quick || *data != "") {
		return usagef("--quick and --data are for the fine-tuning exercise (8.03), not %s", spec.ID)
	}
	var dataDirs []string
	if *data != "" {
		if *data, err = filepath.Abs(*data); err != nil {
			return err
		}
		for _, sub := range []string{"training_set", "test_set"} {
			if st, err := os.Stat(filepath.Join(*data, sub)); err != nil || !st.IsDir() {
				return fmt.Errorf("grade: --data %s has no %s folder (want the data set's training_set/ and test_set/)", *data, sub)
			}
		}
		dataDirs = []string{*data}
	}
	submissions, hide, err := collectSubmissions(paths)
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repo, err := setup.RepoRoot(wd)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = "grades-" + strings.ReplaceAll(spec.ID, "/", "_")
	}
	if *out, err = filepath.Abs(*out); err != nil {
		return err
	}

	// Created first, so that every sandbox hides it.
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("grade: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var ref *grade.Reference
	var env []string
	if finetune {
		fmt.Fprintf(stderr, "grade %s: training the reference (%s; data %s); every submission trains the same run\n",
			spec.ID, schedule, orSample(*data))
		start := time.Now()
		ref, err = grade.ComputeFinetuneReference(ctx, spec, grade.FinetuneOptions{Schedule: schedule, Data: *data, Log: stderr})
		if err != nil {
			return err
		}
		took := time.Since(start)
		fmt.Fprintf(stderr, "grade %s: reference trained in %s: val_accuracy %v, result %v, %q\n", spec.ID,
			took.Round(time.Second), ref.History.Get("val_accuracy"), ref.Result.Data[0], ref.Prediction)
		if !timeoutSet(fs) && *timeout < 2*took+2*time.Minute {
			*timeout = (2*took + 2*time.Minute).Round(time.Minute)
			fmt.Fprintf(stderr, "grade %s: --timeout not given: %s per submission (twice the reference run, plus building the cells)\n", spec.ID, *timeout)
		} else if *timeout < took+time.Minute {
			fmt.Fprintf(stderr, "grade %s: warning: --timeout %s is shorter than the reference run took (%s): submissions will time out\n", spec.ID, *timeout, took.Round(time.Second))
		}
		env = schedule.Env(*data)
	} else {
		fmt.Fprintf(stderr, "grade %s: computing the reference (%s on %s)\n", spec.ID, spec.Model, spec.Image)
		if ref, err = grade.ComputeReference(ctx, spec, grade.ReferenceOptions{}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "grade %s: weights %s\ngrade %s: backend %s\n", spec.ID, ref.Weights, spec.ID, ref.Backend)
	rep, err := batch.Grade(ctx, batch.Options{
		Spec: spec, Reference: ref, Repo: repo, Jobs: *jobs, Timeout: *timeout, CellTimeout: *cellTimeout, Memory: mem,
		Isolation: batch.Isolation(*isolation), WorkDir: *workDir, KeepWork: *keepWork, GoCacheTemplate: *cacheDir,
		ExecutedDir: filepath.Join(*out, "executed"), HideDirs: append(hide, *out), Log: stderr,
		Env: env, DataDirs: dataDirs,
	}, submissions)
	if err != nil {
		return err
	}
	if err := rep.WriteFiles(*out); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(stderr, "grade %s: note: %s\n", spec.ID, n)
	}
	passed := 0
	for _, r := range rep.Results {
		if r.Score == r.MaxScore {
			passed++
		}
	}
	fmt.Fprintf(stdout, "graded %d submission(s) for %s in %s (%d with full marks)\n", len(rep.Results), spec.ID,
		rep.Duration.Round(time.Second), passed)
	fmt.Fprintf(stdout, "gradebook: %s\nreport:    %s\nfeedback:  %s\n", filepath.Join(*out, "gradebook.csv"),
		filepath.Join(*out, "report.json"), filepath.Join(*out, "feedback"))
	return nil
}

// collectSubmissions expands folders into the notebooks they hold, and returns the folders the
// sandboxes must not see (where the submissions come from).
func collectSubmissions(paths []string) (files, dirs []string, err error) {
	seenDir := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, nil, fmt.Errorf("grade: %v", err)
		}
		dir := filepath.Dir(abs)
		if st.IsDir() {
			nbs, err := nbrun.Discover(abs)
			if err != nil {
				return nil, nil, err
			}
			if len(nbs) == 0 {
				return nil, nil, fmt.Errorf("grade: no notebooks in %s", p)
			}
			files = append(files, nbs...)
			dir = abs
		} else {
			files = append(files, abs)
		}
		if !seenDir[dir] {
			seenDir[dir] = true
			dirs = append(dirs, dir)
		}
	}
	return files, dirs, nil
}

func parseBytes(s string) (int64, error) {
	v, err := grade.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if v < 64<<20 {
		return 0, fmt.Errorf("%s is too little memory for a notebook (at least 64MiB)", s)
	}
	return v, nil
}

func orSample(data string) string {
	if data == "" {
		return "the shipped sample"
	}
	return data
}

// timeoutSet reports whether --timeout was given on the command line.
func timeoutSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "timeout" })
	return set
}
