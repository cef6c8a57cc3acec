package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/transfer-learning-go/workbook/internal/classroom"
	"github.com/transfer-learning-go/workbook/internal/grade"
	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/solutions/checks"
)

func init() {
	register(&command{
		name:  "classroom",
		short: "host a workshop on this machine: a JupyterHub for a list of students, then collect and grade their notebooks",
		usage: "start --students FILE|a,b,c [--ip 127.0.0.1] [--port 8000] [--memory 6GiB] | status | stop | copy --to DIR | collect --exercise ID | grade --exercise ID [grade flags]  (all take --class DIR)",
		run:   runClassroom,
	})
}

func runClassroom(args []string) error {
	if len(args) == 0 {
		return usagef("want a sub-command: start, status, stop, collect or grade")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("classroom " + sub)
	class := fs.String("class", "/srv/workbook-class", "the class folder: accounts' passwords, hub state, collected notebooks and grades")
	switch sub {
	case "start":
		students := fs.String("students", "", "a file with one user name per line, or a comma-separated list")
		ip := fs.String("ip", classroom.DefaultIP, "address the hub listens on (0.0.0.0: every network the machine is on)")
		port := fs.Int("port", classroom.DefaultPort, "port the hub listens on (it also uses the next two on 127.0.0.1)")
		memory := fs.String("memory", "6GiB", "memory limit per student (server, kernels and compiler together); 0: none")
		cpus := fs.Float64("cpus", float64(runtime.NumCPU()), "at most this many cores' worth of CPU time per student (default: all of this machine's); students computing at once share the CPU equally either way")
		auth := fs.String("authenticator", "pam", `"pam" (students log in with the generated passwords) or "dummy" (any password; loopback only, for tests)`)
		weights := fs.String("weights", "", "the Keras weights folder students read (default WORKBOOK_WEIGHTS_DIR, else ~/.keras/models)")
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		if *students == "" {
			return usagef("--students is required")
		}
		names, err := classroom.ParseStudents(*students)
		if err != nil {
			return err
		}
		var mem int64
		if *memory != "0" {
			if mem, err = parseBytes(*memory); err != nil {
				return usagef("--memory: %v", err)
			}
		}
		cpuSet := false
		fs.Visit(func(f *flag.Flag) { cpuSet = cpuSet || f.Name == "cpus" })
		if mem == 0 && !cpuSet {
			*cpus = 0 // no cgroup without a memory limit, and nothing asked of one
		}
		repo, err := repoRoot()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		st, err := classroom.Start(ctx, classroom.Options{Dir: *class, Repo: repo, Students: names, IP: *ip, Port: *port,
			Authenticator: *auth, WeightsDir: *weights, Memory: mem, CPUs: *cpus, Log: stderr})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "hub running for %d student(s) at %s\n", len(st.Students), classroom.HubURL(st))
		if st.Auth == "pam" {
			fmt.Fprintf(stdout, "passwords: %s (hand each student theirs)\n", classroom.PasswordsFile(*class))
		}
		fmt.Fprintf(stdout, "log: %s\nstop with: workbook classroom stop --class %s\n", classroom.HubLog(*class), *class)
		return nil
	case "copy":
		// The single-user image's build (deploy/kubernetes/Containerfile) makes the student's copy
		// with this, the same tree 'start' gives each student.
		to := fs.String("to", "", "folder to create with a student's copy of the workbook")
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		if *to == "" {
			return usagef("--to is required")
		}
		repo, err := repoRoot()
		if err != nil {
			return err
		}
		return classroom.CopyWorkbook(repo, *to, os.Getuid(), os.Getgid())
	case "status":
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		cs, err := classroom.Status(*class)
		if err != nil {
			return err
		}
		switch {
		case cs.HubPID == 0:
			fmt.Fprintf(stdout, "hub: stopped\n")
		case cs.Answers:
			fmt.Fprintf(stdout, "hub: running (pid %d) at %s\n", cs.HubPID, classroom.HubURL(cs.State))
		default:
			fmt.Fprintf(stdout, "hub: running (pid %d) but not answering at %s; see %s\n", cs.HubPID, classroom.HubURL(cs.State), classroom.HubLog(*class))
		}
		for _, s := range cs.Students {
			fmt.Fprintf(stdout, "%-20s %3d process(es) %8.0f MiB\n", s.Name, s.Processes, float64(s.RSS)/(1<<20))
		}
		return nil
	case "stop":
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		if err := classroom.Stop(*class, stderr); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "stopped: hub, proxy and every student's server and kernels")
		return nil
	case "collect", "grade":
		exercise := fs.String("exercise", "", "exercise or activity: 8.01, A8.01, 8.02, 8.03, 8.04, A8.02")
		if sub == "collect" {
			if _, err := parseFlags(fs, args); err != nil {
				return err
			}
		} else {
			// Everything after --exercise ID goes to 'workbook grade' unchanged.
			var rest []string
			for i := 0; i < len(args); i++ {
				switch args[i] {
				case "--class", "-class":
					if i+1 < len(args) {
						*class = args[i+1]
						i++
					}
				case "--exercise", "-exercise":
					if i+1 < len(args) {
						*exercise = args[i+1]
						i++
					}
				default:
					rest = append(rest, args[i])
				}
			}
			args = rest
		}
		if *exercise == "" {
			return usagef("--exercise is required")
		}
		specs, err := checks.Load()
		if err != nil {
			return err
		}
		spec, err := grade.FindSpec(specs, *exercise)
		if err != nil {
			return err
		}
		if spec.Solution == "" {
			return fmt.Errorf("classroom: exercise %s has no notebook", spec.ID)
		}
		files, missing, err := classroom.Collect(*class, filepath.Base(spec.Solution), spec.ID, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "collected %d notebook(s) for %s into %s (%d missing)\n", len(files), spec.ID, classroom.CollectedDir(*class, spec.ID), len(missing))
		if sub == "collect" || len(files) == 0 {
			return nil
		}
		out := classroom.GradesDir(*class, spec.ID)
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			return err
		}
		gradeArgs := append([]string{"--exercise", spec.ID, "--out", out}, args...)
		if err := runGrade(append(gradeArgs, classroom.CollectedDir(*class, spec.ID))); err != nil {
			return err
		}
		n, err := classroom.ReturnFeedback(*class, spec.ID, filepath.Join(out, "feedback"), stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "feedback returned to %d student(s) as notebooks/feedback-%s.md\n", n, spec.ID)
		return nil
	default:
		return usagef("unknown sub-command %q: want start, status, stop, collect or grade", sub)
	}
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return setup.RepoRoot(wd)
}
