// Package batch grades a class's notebooks for one exercise: it runs each submission headless in
// its own sandbox (package sandbox) with hidden cells appended that record the notebook's
// variables, compares them with a reference computed in this process (package grade), and writes
// a gradebook (CSV), a full JSON report and one feedback file per student.
//
// A submission's failures — it does not compile, panics, exits, loops, exhausts its memory,
// floods its output, tampers with files — cost it the affected checks, with the reason; they
// never stop the batch. Grade returns an error only when grading itself could not be done
// (no kernel, no reference, the grader's own warm-up notebook failed, interrupted).
package batch

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/kernelext"
)

// Isolation is how submissions are separated from the grader and from each other.
type Isolation string

const (
	// Sandbox (the default; needs root): fresh UID per submission, PID/mount/network
	// namespaces, cgroup memory and task limits, private /tmp, read-only view of the toolchain.
	Sandbox Isolation = "sandbox"
	// Weak runs submissions as the grader's own user with only rlimits (address space, file
	// size), a process group and the timeout. For a grader that cannot be root; a hostile
	// submission can then read and write whatever the grader can.
	Weak Isolation = "weak"
)

// Options configure Grade.
type Options struct {
	Spec      *grade.Spec
	Reference *grade.Reference
	// Repo is the workbook checkout whose packages the notebooks use.
	Repo string
	// Jobs is how many submissions run at once (default 1).
	Jobs int
	// Timeout bounds one submission's whole run (default 10 minutes). CellTimeout bounds each
	// of its cells (default: Timeout): a cell that loops forever is then stopped after the
	// time one cell may take instead of holding a job for the whole notebook's.
	Timeout     time.Duration
	CellTimeout time.Duration
	// Memory bounds one submission's process tree in bytes: driver, kernel, compiler and program
	// together (default DefaultMemory).
	Memory int64
	// Isolation defaults to Sandbox.
	Isolation Isolation
	// WorkDir holds the sandboxes while they run (default: a new folder under the system's
	// temporary folder, removed at the end). GoCacheTemplate is the grader's read-only build
	// cache that seeds each submission's (default: DefaultGoCacheTemplate()).
	WorkDir         string
	GoCacheTemplate string
	// KeepWork keeps each sandbox folder after grading, for debugging.
	KeepWork bool
	// ExecutedDir, if set, receives each submission's executed notebook as STUDENT.ipynb.
	ExecutedDir string
	// HideDirs are folders the sandboxes must not see (the submissions' and the reports'
	// folders), on top of the grader's home folder.
	HideDirs []string
	// NoWarmup skips the grader's own warm-up notebook, which otherwise runs first to prove that
	// the kernel and the sandbox work and to add what it compiles to the build cache template.
	// For a run right after another one on an unchanged checkout (tests grading several
	// exercises in a row).
	NoWarmup bool
	// Log receives one progress line per submission (nil: discarded).
	Log io.Writer

	// FileSize is the largest file a submission may write (default DefaultFileSize, raised to
	// the spec's limits).
	FileSize int64
	// Env is added to every submission's environment (a fine-tuning exercise's schedule and
	// data folder: Schedule.Env). DataDirs are folders the submissions may read (bound
	// read-only), such as a data set outside the checkout.
	Env      []string
	DataDirs []string
}

// Defaults.
const (
	DefaultTimeout = 10 * time.Minute
	DefaultMemory  = 4 << 30
	// MaxOutputBytes is how much of a submission's printed output is kept for output checks.
	MaxOutputBytes = 1 << 20
	// maxNotebookBytes bounds a submitted notebook file.
	maxNotebookBytes = 32 << 20
	// DefaultFileSize is RLIMIT_FSIZE in the sandbox: the largest file a submission's processes
	// may write. It bounds the executed notebook the grader parses (a notebook that floods its
	// output would otherwise hand the grader gigabytes of JSON); the largest legitimate files of
	// the prediction exercises, a compiled cell program and a build cache entry, are about
	// 25 MB. Exercise 8.03 saves 0.5 GB checkpoints: its checks file raises the limit.
	DefaultFileSize = 128 << 20
	pidsLimit       = 4096
)

// DefaultGoCacheTemplate is where the grader keeps its build cache template:
// ${XDG_CACHE_HOME:-~/.cache}/transfer-learning-go/grade-gocache.
func DefaultGoCacheTemplate() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("grade: %v", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "transfer-learning-go", "grade-gocache"), nil
}

// CheckResult is one check's outcome for one submission.
type CheckResult struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Hidden   bool    `json:"hidden"`
	Points   float64 `json:"points"`
	Score    float64 `json:"score"`
	Passed   bool    `json:"passed"`
	Detail   string  `json:"detail"`
	Feedback string  `json:"feedback,omitempty"` // the check's advice, when it failed
}

// Result is one submission's grade.
type Result struct {
	Student    string        `json:"student"` // submission file name without .ipynb
	Path       string        `json:"path"`
	Score      float64       `json:"score"`
	MaxScore   float64       `json:"max_score"`
	Checks     []CheckResult `json:"checks"`
	Problem    string        `json:"problem,omitempty"` // what went wrong with the run as a whole
	Duration   time.Duration `json:"duration_ns"`
	PeakMemory int64         `json:"peak_memory_bytes,omitempty"`
	Executed   string        `json:"executed,omitempty"` // copy of the executed notebook
}

// Report is a whole batch.
type Report struct {
	Exercise  string        `json:"exercise"`
	Title     string        `json:"title"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Jobs      int           `json:"jobs"`
	Isolation string        `json:"isolation"`
	Memory    int64         `json:"memory_limit_bytes"`
	Timeout   time.Duration `json:"timeout_ns"`
	// CellTimeout is the limit of one cell (equal to Timeout unless set lower).
	CellTimeout time.Duration `json:"cell_timeout_ns"`
	Reference   RefInfo       `json:"reference"`
	Checks      []grade.Check `json:"checks"`
	Results     []*Result     `json:"results"`
	Notes       []string      `json:"notes,omitempty"`
}

// RefInfo says what the reference was computed with.
type RefInfo struct {
	Image       string `json:"image"`
	Weights     string `json:"weights"`
	MD5Verified bool   `json:"md5_verified"`
	Backend     string `json:"backend"`
	BookChecked bool   `json:"book_expectation_checked"`
	Top         string `json:"top"`
	// Fine-tuning exercises: the reference training run.
	Schedule    string    `json:"schedule,omitempty"`
	Data        string    `json:"data,omitempty"`
	ValAccuracy []float64 `json:"val_accuracy,omitempty"`
	Result      float64   `json:"result,omitempty"`
	Prediction  string    `json:"prediction,omitempty"`
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Grade grades the submissions (notebook paths). Students are named after their file names,
// which must therefore be unique.
func Grade(ctx context.Context, opt Options, submissions []string) (*Report, error) {
	if opt.Spec == nil || opt.Reference == nil {
		return nil, errors.New("grade: Options.Spec and Options.Reference are required")
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 1
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.CellTimeout <= 0 || opt.CellTimeout > opt.Timeout {
		opt.CellTimeout = opt.Timeout
	}
	if opt.Memory <= 0 {
		opt.Memory = DefaultMemory
	}
	if opt.FileSize <= 0 {
		opt.FileSize = DefaultFileSize
	}
	// An exercise's own minimum wins over the defaults and over a smaller explicit limit: below
	// it every submission would fail alike.
	var raised []string
	if m := opt.Spec.MinMemory(); m > opt.Memory {
		raised = append(raised, fmt.Sprintf("memory limit raised from %s to %s, the least %s runs in", formatBytes(opt.Memory), formatBytes(m), opt.Spec.ID))
		opt.Memory = m
	}
	if f := opt.Spec.MinFileSize(); f > opt.FileSize {
		opt.FileSize = f
	}
	if opt.Isolation == "" {
		opt.Isolation = Sandbox
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.Isolation != Sandbox && opt.Isolation != Weak {
		return nil, fmt.Errorf("grade: unknown isolation %q (want %s or %s)", opt.Isolation, Sandbox, Weak)
	}
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("grade: grading runs notebooks in Linux sandboxes; this is %s", runtime.GOOS)
	}
	students := map[string]string{}
	for _, s := range submissions {
		name := strings.TrimSuffix(filepath.Base(s), ".ipynb")
		if other, dup := students[name]; dup {
			return nil, fmt.Errorf("grade: %s and %s would both be student %q (students are named after their files)", other, s, name)
		}
		students[name] = s
	}
	if opt.Isolation == Sandbox {
		if os.Geteuid() != 0 {
			return nil, errNoRoot
		}
		if _, err := sandbox.CgroupSupport(); err != nil {
			return nil, fmt.Errorf("%v; without a memory cgroup pass --isolation=weak (per-process address-space limit instead)", err)
		}
	}

	rep := &Report{
		Exercise: opt.Spec.ID, Title: opt.Spec.Title, Started: time.Now(), Jobs: opt.Jobs,
		Isolation: string(opt.Isolation), Memory: opt.Memory, Timeout: opt.Timeout, CellTimeout: opt.CellTimeout, Checks: opt.Spec.Checks,
		Notes: raised,
	}
	ref := opt.Reference
	rep.Reference = RefInfo{Image: ref.Image, Weights: ref.Weights.String(), MD5Verified: ref.Weights.MD5Verified, Backend: ref.Backend}
	if len(ref.Top) > 0 {
		rep.Reference.Top = kernelext.FormatPredictions(ref.Top)
	}
	if opt.Spec.Task == grade.TaskFinetune {
		if ref.History == nil || ref.Result == nil {
			return nil, errors.New("grade: a fine-tuning exercise needs the reference training run (grade.ComputeFinetuneReference)")
		}
		rep.Reference.Schedule = ref.Schedule.String()
		rep.Reference.Data = ref.Data
		rep.Reference.ValAccuracy = ref.History.Get("val_accuracy")
		rep.Reference.Result = float64(ref.Result.Data[0])
		rep.Reference.Prediction = ref.Prediction
		if ref.BookNote != "" {
			rep.Notes = append(rep.Notes, ref.BookNote)
		}
	}
	applied, err := ref.CheckBook()
	if err != nil {
		return nil, err
	}
	rep.Reference.BookChecked = applied

	h, err := discoverHost(ctx, opt.Repo, ref.Weights)
	if err != nil {
		return nil, err
	}
	g := &grader{opt: opt, host: h, log: opt.Log}
	if err := g.prepare(); err != nil {
		return nil, err
	}
	defer g.cleanup()
	if g.copiedCache {
		rep.Notes = append(rep.Notes, "build cache copied, not hard-linked: the template and the work folder are on different file systems")
	}
	if !opt.NoWarmup {
		fmt.Fprintf(g.log, "grade %s: warming the build cache with the grader's own notebook\n", opt.Spec.ID)
		if err := g.warmup(ctx); err != nil {
			return nil, err
		}
	}

	// Sorted by student, so the gradebook's row order does not depend on timing.
	names := make([]string, 0, len(students))
	for n := range students {
		names = append(names, n)
	}
	sort.Strings(names)
	rep.Results = make([]*Result, len(names))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var fatalOnce sync.Once
	var fatal error
	jobs := make(chan int)
	for w := 0; w < opt.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				res, err := g.gradeOne(ctx, names[i], students[names[i]])
				if err != nil {
					fatalOnce.Do(func() { fatal = err; cancel() })
					continue
				}
				rep.Results[i] = res
				status := "ok"
				if res.Problem != "" {
					status = res.Problem
				}
				peak := "-" // weak isolation measures no memory
				if res.PeakMemory > 0 {
					peak = formatBytes(res.PeakMemory)
				}
				fmt.Fprintf(g.log, "grade %s: %-24s %5.1f/%-5.1f %6.1fs %9s  %s\n", opt.Spec.ID, res.Student, res.Score, res.MaxScore,
					res.Duration.Seconds(), peak, firstLine(status))
			}
		}()
	}
	for i := range names {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if fatal != nil {
		return nil, fatal
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("grade: interrupted: %w", ctx.Err())
	}
	rep.Duration = time.Since(rep.Started)
	return rep, nil
}

// randomUID picks a fresh unprivileged UID for one sandbox: far above ordinary users and
// different for every submission, so no two submissions (even of two concurrent graders) share
// file ownership or process limits.
func randomUID() int {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return 1_800_000_000 + int(binary.LittleEndian.Uint32(b[:])%200_000_000)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
