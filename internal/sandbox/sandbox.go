// Package sandbox runs one untrusted command tree — a student's notebook with its Jupyter driver,
// kernel, compiler and program — under an unprivileged user ID in fresh Linux namespaces, with
// resource limits, and kills all of it when the command ends.
//
// The grader cannot fork into new namespaces itself: a Go program cannot unshare its own PID
// namespace, and nbrun starts "python" with exec. So the grader's own binary is re-executed as
// the launcher: nbrun's Python is set to that binary, and an environment variable carries the
// path of a JSON Config. Init, called first thing from an init function or TestMain, recognises
// that situation, runs the launcher and exits; otherwise it returns and the program runs as
// usual. The launcher has two stages:
//
//  1. in the grader's namespaces: join the cgroups that limit memory and processes (so every
//     descendant is accounted), then start stage 2 in new mount, PID, network, IPC and UTS
//     namespaces and forward SIGUSR1/SIGTERM/SIGINT to it;
//  2. as PID 1 of the new namespace, still root: hide directories (an empty tmpfs over the
//     grader's home), bind the paths the command needs (read-only unless marked writable),
//     mount private /tmp-like tmpfs, a fresh /proc and bring up loopback only; set
//     no_new_privs; start the command under the configured UID/GID with no supplementary groups;
//     forward signals to it, reap orphans, and exit with the command's status. When PID 1 exits,
//     the kernel kills every process left in the namespace, so nothing the student started (a
//     daemonised loop, a stray compiler) outlives the run.
//
// The rlimits apply to the command only, never to the launcher: a launcher that kept running
// Go code under the command's address-space limit could itself die of it. So the command is
// started through a third, short-lived stage — this binary again, already the command's user,
// in the command's working directory — which sets the rlimits and replaces itself with the
// command (execve). If that exec fails, under the limits or for any other reason, the stage says
// why through a close-on-exec pipe, and the launcher reports it as its own failure.
//
// Everything here needs root (CAP_SYS_ADMIN for namespaces and mounts, CAP_SETUID to drop to the
// sandbox user). With Config.Weak the launcher only sets rlimits and runs the command in place:
// same user, same namespaces — for machines where the grader cannot run as root.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables the launcher reads. They are set only in the environment of the launcher
// process (nbrun's "python"), never passed on to the sandboxed command.
const (
	ConfigEnv = "WORKBOOK_SANDBOX_CONFIG" // path of the JSON Config
	stageEnv  = "WORKBOOK_SANDBOX_STAGE"  // "2" in the second stage
)

// Config describes one sandboxed run. Paths are absolute and the same inside and outside the
// sandbox (binds keep their path unless Target says otherwise), so the caller can read what the
// command wrote at the paths it chose.
type Config struct {
	// Command is the program to run inside (absolute path); the launcher's own arguments
	// (os.Args[1:]) follow it, after PathMap rewriting.
	Command string `json:"command"`
	// Env is the command's complete environment.
	Env []string `json:"env"`
	// PathMap rewrites arguments: an argument equal to From or starting with From+"/" has that
	// prefix replaced by To (longest From first).
	PathMap []PathMapping `json:"path_map,omitempty"`
	// Dir is the command's working directory, a path as the command sees it; "" means "/".
	// The launcher's own working directory never matters: it may be hidden, or under a
	// private tmpfs, inside the sandbox.
	Dir string `json:"dir,omitempty"`

	// UID and GID the command runs as (no supplementary groups). Must not be 0.
	UID int `json:"uid"`
	GID int `json:"gid"`

	// Hide lists directories covered by an empty, read-only tmpfs (e.g. the grader's home).
	Hide []string `json:"hide,omitempty"`
	// Tmpfs lists private, writable tmpfs mounts (mode 1777), e.g. /tmp, /var/tmp, /dev/shm.
	Tmpfs []TmpfsMount `json:"tmpfs,omitempty"`
	// Binds expose host paths inside; mounted after Hide and Tmpfs, parents before children, so
	// a bind can reappear inside a hidden directory or a private tmpfs.
	Binds []Bind `json:"binds,omitempty"`
	// Network keeps the host's network; by default the command gets a network namespace with
	// only a loopback interface (Jupyter's driver and kernel talk over it).
	Network bool `json:"network,omitempty"`
	// Hostname inside the UTS namespace ("sandbox" if empty).
	Hostname string `json:"hostname,omitempty"`

	// Limits are applied as rlimits to the command (inherited by its children).
	Limits Limits `json:"limits"`
	// CgroupProcs are cgroup.procs files the launcher adds itself to before anything else starts
	// (see Cgroup.ProcsFiles).
	CgroupProcs []string `json:"cgroup_procs,omitempty"`

	// Sanitize lists directories the command writes results into, which the caller reads after
	// the command ends. Once every sandboxed process is gone, the launcher removes from them
	// anything but plain files with a single link — symlinks, FIFOs, devices, sockets,
	// directories — so the caller never follows a planted link (to /dev/zero, a FIFO, a file
	// of someone else) or blocks on a FIFO. These directories' parents must not be writable by
	// the sandbox user, or the directory itself could be swapped for a link.
	Sanitize []string `json:"sanitize,omitempty"`

	// ReportFile, if set, is where the launcher (outside the sandbox, as the caller's user)
	// writes "ok" once the command has started, or "error: ..." when the sandbox could not be
	// set up. The caller can trust it — unlike the command's output, which the sandboxed code
	// controls — to tell its own failures from the command's. Put it where the sandbox user
	// cannot write.
	ReportFile string `json:"report_file,omitempty"`

	// Weak skips namespaces, mounts and the user switch: the command runs as the caller with
	// only the rlimits (for a grader that is not root).
	Weak bool `json:"weak,omitempty"`
}

// PathMapping is a prefix rewrite from host paths to sandbox paths.
type PathMapping struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Bind exposes Source at Target (Target "" means the same path).
type Bind struct {
	Source   string `json:"source"`
	Target   string `json:"target,omitempty"`
	Writable bool   `json:"writable,omitempty"`
}

// TmpfsMount is a private tmpfs of at most SizeBytes (0: the kernel's default, half of RAM).
type TmpfsMount struct {
	Target    string `json:"target"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
}

// Limits are per-process rlimits; zero leaves a limit as inherited.
type Limits struct {
	// AddressSpace is RLIMIT_AS in bytes: per process, counts virtual memory. Only for machines
	// without a usable memory cgroup; it is much cruder than one (see the package README).
	AddressSpace int64 `json:"address_space,omitempty"`
	// FileSize is RLIMIT_FSIZE in bytes: the largest file the command can write.
	FileSize int64 `json:"file_size,omitempty"`
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles int64 `json:"open_files,omitempty"`
	// Processes is RLIMIT_NPROC: processes and threads of the sandbox UID, system-wide (a fresh
	// UID per run makes it a per-run limit).
	Processes int64 `json:"processes,omitempty"`
}

// workDir is the command's working directory as the command sees it.
func (c *Config) workDir() string {
	if c.Dir == "" {
		return "/"
	}
	return c.Dir
}

// String lists the limits that are set, for messages.
func (l Limits) String() string {
	var parts []string
	for _, f := range []struct {
		name string
		v    int64
	}{{"address space", l.AddressSpace}, {"file size", l.FileSize}, {"open files", l.OpenFiles}, {"processes", l.Processes}} {
		if f.v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f.name, f.v))
		}
	}
	return strings.Join(parts, ", ")
}

// Write stores the config as JSON at path (temporary file and rename).
func (c *Config) Write(path string) error {
	if err := c.validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("sandbox: %v", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("sandbox: write config %s: %v", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sandbox: write config %s: %v", path, err)
	}
	return nil
}

func (c *Config) validate() error {
	if !filepath.IsAbs(c.Command) {
		return fmt.Errorf("sandbox: Command %q is not an absolute path", c.Command)
	}
	if c.Dir != "" && (!filepath.IsAbs(c.Dir) || filepath.Clean(c.Dir) != c.Dir) {
		return fmt.Errorf("sandbox: Dir %q must be a clean absolute path", c.Dir)
	}
	if c.Weak {
		return nil
	}
	if c.UID <= 0 || c.GID <= 0 {
		return fmt.Errorf("sandbox: refusing to run as uid %d gid %d (must be non-root)", c.UID, c.GID)
	}
	check := func(what, p string) error {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("sandbox: %s %q must be a clean absolute path", what, p)
		}
		if p == "/" {
			return fmt.Errorf("sandbox: %s cannot be /", what)
		}
		return nil
	}
	for _, h := range c.Hide {
		if err := check("hidden directory", h); err != nil {
			return err
		}
	}
	for _, t := range c.Tmpfs {
		if err := check("tmpfs", t.Target); err != nil {
			return err
		}
	}
	for _, b := range c.Binds {
		if err := check("bind source", b.Source); err != nil {
			return err
		}
		if b.Target != "" {
			if err := check("bind target", b.Target); err != nil {
				return err
			}
		}
	}
	return nil
}

func readConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: read config: %v", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("sandbox: config %s: %v", path, err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// mapPath applies the config's PathMap to one argument.
func (c *Config) mapPath(s string) string {
	best := -1
	for i, m := range c.PathMap {
		if s == m.From || strings.HasPrefix(s, m.From+"/") {
			if best < 0 || len(m.From) > len(c.PathMap[best].From) {
				best = i
			}
		}
	}
	if best < 0 {
		return s
	}
	return c.PathMap[best].To + s[len(c.PathMap[best].From):]
}

// Init runs the launcher and exits when this process was started as one (ConfigEnv set);
// otherwise it returns at once. Call it before anything else — from an init function of the
// main package, or from TestMain in tests that start sandboxes.
func Init() {
	cfgPath := os.Getenv(ConfigEnv)
	if cfgPath == "" {
		return
	}
	if os.Getenv(stageEnv) == execStage {
		runExecStage()
	}
	cfg, err := readConfig(cfgPath)
	if err != nil {
		fail(err)
	}
	var code int
	if os.Getenv(stageEnv) == "2" {
		code, err = stage2(cfg, cfgPath)
		if err != nil {
			reportStart("error: " + err.Error())
		}
	} else {
		code, err = stage1(cfg, cfgPath)
	}
	if err != nil {
		fail(err)
	}
	os.Exit(code)
}

// launcherFailure is the exit status of a launcher that could not start the command; the
// message on stderr names the step that failed.
const launcherFailure = 125

func fail(err error) {
	fmt.Fprintf(os.Stderr, "sandbox launcher: %v\n", err)
	os.Exit(launcherFailure)
}

// ErrNotRoot says why the full sandbox is unavailable to a process that is not root.
// root.
var ErrNotRoot = errors.New("sandbox: needs root (namespaces, mounts and switching to the sandbox user)")

// Launcher returns the program to start (with ConfigEnv set in its environment) to run a
// Config: this very executable, whose Init takes over. The caller passes the command's
// arguments as the launcher's arguments.
func Launcher() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("sandbox: locate this executable: %v", err)
	}
	return exe, nil
}

// ReadReport reads a run's ReportFile: nil if the command started, otherwise why the sandbox
// failed (or that the launcher never reported, e.g. it could not be started at all).
func ReadReport(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sandbox: the launcher left no report (%v)", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "ok" {
		return nil
	}
	return fmt.Errorf("sandbox: %s", strings.TrimPrefix(s, "error: "))
}
