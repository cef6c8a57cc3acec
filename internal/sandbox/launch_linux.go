//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// startPipe is, in stage 2, the pipe to stage 1 that reportStart writes to once.
var startPipe *os.File

func reportStart(msg string) {
	if startPipe != nil {
		startPipe.WriteString(msg)
		startPipe.Close()
		startPipe = nil
	}
}

// forwarded are the signals the launcher passes on: SIGUSR1 is nbrun's "stop and still write
// what ran" request to its driver.
var forwarded = []os.Signal{syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// stage1 runs in the caller's namespaces.
func stage1(cfg *Config, cfgPath string) (int, error) {
	for _, procs := range cfg.CgroupProcs {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return 0, fmt.Errorf("join cgroup %s: %v", procs, err)
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	var pid int
	var err error
	started := "ok"
	if cfg.Weak {
		// Same user and namespaces; the command gets its own process group so that the kill
		// below reaches what it started.
		var conf *os.File
		if conf, err = os.Open(cfgPath); err == nil {
			pid, err = startCommand(cfg, conf, &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL})
			conf.Close()
		}
	} else {
		// Stage 2 says through a pipe (its fd 3) whether the command started.
		r, w, perr := os.Pipe()
		if perr != nil {
			return 0, perr
		}
		pid, err = syscall.ForkExec("/proc/self/exe", os.Args, &syscall.ProcAttr{
			Dir: "/",
			// HOME only quiets libraries that look for it while initialising.
			Env:   []string{ConfigEnv + "=" + cfgPath, stageEnv + "=2", "HOME=/"},
			Files: []uintptr{0, 1, 2, w.Fd()},
			Sys: &syscall.SysProcAttr{
				Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC |
					syscall.CLONE_NEWUTS | netFlag(cfg),
				Pdeathsig: syscall.SIGKILL,
			},
		})
		w.Close()
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(r, 64<<10))
			if started = string(msg); started == "" {
				started = "error: the sandbox ended before starting the command"
			}
		}
		r.Close()
	}
	if err != nil {
		started = "error: start the sandbox: " + err.Error()
	}
	if cfg.ReportFile != "" {
		if werr := os.WriteFile(cfg.ReportFile, []byte(started+"\n"), 0o644); werr != nil {
			return 0, fmt.Errorf("write report: %v", werr)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("start the sandbox: %v", err)
	}
	go func() {
		for s := range sigs {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	code, err := waitStatus(pid)
	if cfg.Weak {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	if err != nil {
		return 0, err
	}
	for _, d := range cfg.Sanitize {
		if err := sanitize(d); err != nil {
			return 0, err
		}
	}
	return code, nil
}

// execStage is the value of stageEnv in the short-lived process that becomes the command.
const execStage = "exec"

// startCommand starts the command through the exec stage, with attr (user, process group,
// parent-death signal), in cfg.Dir. It returns once the exec stage has become the command, or
// with the reason it could not: the exec stage reports through a close-on-exec pipe, so a
// closed pipe with nothing in it means the execve succeeded.
func startCommand(cfg *Config, conf *os.File, attr *syscall.SysProcAttr) (int, error) {
	who := ""
	if attr.Credential != nil {
		who = fmt.Sprintf(" as uid %d", attr.Credential.Uid)
	}
	dir := cfg.workDir()
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return 0, fmt.Errorf("start %s%s: its working directory %s is not a folder inside the sandbox (bind it, or set Config.Dir)", cfg.Command, who, dir)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	pid, err := syscall.ForkExec("/proc/self/exe", os.Args, &syscall.ProcAttr{
		Dir:   dir,
		Env:   []string{ConfigEnv + "=" + conf.Name(), stageEnv + "=" + execStage, "HOME=/"},
		Files: []uintptr{0, 1, 2, w.Fd(), conf.Fd()},
		Sys:   attr,
	})
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s%s: %v", cfg.Command, who, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	if len(msg) > 0 {
		_, _ = waitStatus(pid)
		return 0, fmt.Errorf("start %s%s: %s", cfg.Command, who, msg)
	}
	return pid, nil
}

// runExecStage is the exec stage: already the command's user, in its working directory, it
// sets the rlimits and replaces itself with the command. It never returns.
func runExecStage() {
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	report := os.NewFile(3, "exec-report")
	failed := func(err error) {
		_, _ = report.WriteString(err.Error())
		os.Exit(launcherFailure)
	}
	b, err := io.ReadAll(io.NewSectionReader(os.NewFile(4, "config"), 0, 16<<20))
	if err != nil {
		failed(fmt.Errorf("read the config: %v", err))
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		failed(fmt.Errorf("read the config: %v", err))
	}
	argv := append([]string{cfg.Command}, mapArgs(&cfg, os.Args[1:])...)
	if err := setLimits(cfg.Limits); err != nil {
		failed(err)
	}
	err = syscall.Exec(cfg.Command, argv, cfg.Env)
	if l := cfg.Limits.String(); l != "" {
		failed(fmt.Errorf("%v (under the limits %s)", err, l))
	}
	failed(err)
}

// sanitize removes from dir every entry that is not a plain file with one link.
func sanitize(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("sanitize %s: %v", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("sanitize %s: not a directory any more", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sanitize %s: %v", dir, err)
	}
	// Decide on every entry first: removing one link of a file would make its other link look
	// like a plain file.
	var remove []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		info, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("sanitize %s: %v", dir, err)
		}
		if info.Mode().IsRegular() {
			if sys, ok := info.Sys().(*syscall.Stat_t); ok && sys.Nlink == 1 {
				continue
			}
		}
		fmt.Fprintf(os.Stderr, "sandbox launcher: removed %s (%v) planted in an output folder\n", p, info.Mode().Type())
		remove = append(remove, p)
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("sanitize %s: %v", dir, err)
		}
	}
	return nil
}

func netFlag(cfg *Config) uintptr {
	if cfg.Network {
		return 0
	}
	return syscall.CLONE_NEWNET
}

// waitStatus waits for pid and turns its end into an exit status (128+signal when killed).
func waitStatus(pid int) (int, error) {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait: %v", err)
		}
		return exitCode(ws), nil
	}
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// stage2 is PID 1 of the new PID namespace, root in fresh mount, network, IPC and UTS
// namespaces.
func stage2(cfg *Config, cfgPath string) (int, error) {
	syscall.CloseOnExec(3) // the report pipe: never passed to the command
	startPipe = os.NewFile(3, "report")
	// The exec stage reads the config through this descriptor: the mounts below may hide its
	// path.
	conf, err := os.Open(cfgPath)
	if err != nil {
		return 0, err
	}
	defer conf.Close()
	if err := setupMounts(cfg); err != nil {
		return 0, err
	}
	if !cfg.Network {
		if err := loopbackUp(); err != nil {
			return 0, fmt.Errorf("bring up loopback: %v", err)
		}
	}
	host := cfg.Hostname
	if host == "" {
		host = "sandbox"
	}
	if err := unix.Sethostname([]byte(host)); err != nil {
		return 0, fmt.Errorf("set hostname: %v", err)
	}
	// No setuid binary (su, sudo, ...) can give the sandbox user privileges back.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("no_new_privs: %v", err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	pid, err := startCommand(cfg, conf, &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	})
	if err != nil {
		return 0, err
	}
	reportStart("ok")
	go func() {
		for s := range sigs {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	// As PID 1, every orphan in the namespace becomes our child: reap them all until the
	// command itself ends; returning then makes the kernel kill whatever is left.
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait: %v", err)
		}
		if got == pid {
			return exitCode(ws), nil
		}
	}
}

func mapArgs(cfg *Config, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = cfg.mapPath(a)
	}
	return out
}

func setLimits(l Limits) error {
	set := func(name string, res int, v int64) error {
		if v <= 0 {
			return nil
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: uint64(v), Max: uint64(v)}); err != nil {
			return fmt.Errorf("set %s to %d: %v", name, v, err)
		}
		return nil
	}
	if err := set("RLIMIT_AS", unix.RLIMIT_AS, l.AddressSpace); err != nil {
		return err
	}
	if err := set("RLIMIT_FSIZE", unix.RLIMIT_FSIZE, l.FileSize); err != nil {
		return err
	}
	if err := set("RLIMIT_NOFILE", unix.RLIMIT_NOFILE, l.OpenFiles); err != nil {
		return err
	}
	if err := set("RLIMIT_NPROC", unix.RLIMIT_NPROC, l.Processes); err != nil {
		return err
	}
	// A crashing student program must not leave multi-gigabyte core files behind.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("set RLIMIT_CORE to 0: %v", err)
	}
	return nil
}

// setupMounts builds the sandbox's view of the file system. Bind sources are opened (O_PATH)
// before anything is covered, and mounted from those descriptors, so a source may live under a
// directory that is hidden or replaced by a tmpfs afterwards.
func setupMounts(cfg *Config) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %v", err)
	}
	binds := append([]Bind(nil), cfg.Binds...)
	for i := range binds {
		if binds[i].Target == "" {
			binds[i].Target = binds[i].Source
		}
	}
	// Parents before children, so /a/b lands on top of /a.
	sort.SliceStable(binds, func(i, j int) bool {
		return strings.Count(binds[i].Target, "/") < strings.Count(binds[j].Target, "/")
	})
	fds := make([]int, len(binds))
	for i, b := range binds {
		fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open bind source %s: %v", b.Source, err)
		}
		fds[i] = fd
	}
	// A directory inside another hidden one, or inside a private tmpfs, is hidden already.
	var hide []string
	for _, h := range outermost(cfg.Hide) {
		covered := false
		for _, t := range cfg.Tmpfs {
			covered = covered || h == t.Target || strings.HasPrefix(h, t.Target+"/")
		}
		if !covered {
			hide = append(hide, h)
		}
	}
	for _, h := range hide {
		if err := unix.Mount("tmpfs", h, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
			return fmt.Errorf("hide %s: %v", h, err)
		}
	}
	for _, t := range cfg.Tmpfs {
		opts := "mode=1777"
		if t.SizeBytes > 0 {
			opts += ",size=" + strconv.FormatInt(t.SizeBytes, 10)
		}
		if err := unix.Mount("tmpfs", t.Target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("tmpfs on %s: %v", t.Target, err)
		}
	}
	for i, b := range binds {
		if err := makeTarget(b.Target, fds[i]); err != nil {
			return err
		}
		src := "/proc/self/fd/" + strconv.Itoa(fds[i])
		if err := unix.Mount(src, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %v", b.Source, b.Target, err)
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV)
		if !b.Writable {
			flags |= unix.MS_RDONLY
		}
		if err := unix.Mount("", b.Target, "", flags, ""); err != nil {
			return fmt.Errorf("remount %s (writable=%v): %v", b.Target, b.Writable, err)
		}
		unix.Close(fds[i])
	}
	// The hidden directories' tmpfs only held mount points: make them read-only now.
	for _, h := range hide {
		if err := unix.Mount("", h, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("make %s read-only: %v", h, err)
		}
	}
	// A /proc of the new PID namespace: the command sees only its own processes.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %v", err)
	}
	return nil
}

// outermost drops the directories that lie inside another one of the list (hiding the outer one
// hides them already), shortest first.
func outermost(dirs []string) []string {
	sorted := append([]string(nil), dirs...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) < len(sorted[j]) })
	var out []string
	for _, d := range sorted {
		inside := false
		for _, o := range out {
			if d == o || strings.HasPrefix(d, o+"/") {
				inside = true
			}
		}
		if !inside {
			out = append(out, d)
		}
	}
	return out
}

// makeTarget creates the mount point for a bind whose source is fd: a directory or an empty
// file, with its parents (possible where the parent is a tmpfs made above).
func makeTarget(target string, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat bind source for %s: %v", target, err)
	}
	if _, err := os.Lstat(target); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %v", target, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.Mkdir(target, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %v", target, err)
		}
		return nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point %s: %v", target, err)
	}
	return f.Close()
}

// loopbackUp sets IFF_UP on "lo" in the new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
