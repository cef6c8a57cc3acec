package classroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/internal/setup"
)

// hubConfig is jupyterhub_config.py. Everything variable comes from settings.json next to it, so
// the Python holds no quoting of our values.
//
// LocalProcessSpawner passes only a few variables through (env_keep) and only records
// mem_limit in MEM_LIMIT without enforcing it, so: the environment is given in full, and the
// spawner puts each single-user server into the student's cgroup before dropping to the
// student's uid (its preexec function runs as root in the new process).
const hubConfig = `# Written by 'workbook classroom start'; edits are overwritten at the next start.
import json, os
from jupyterhub.spawner import LocalProcessSpawner

here = os.path.dirname(os.path.abspath(__file__))
S = json.load(open(os.path.join(here, "settings.json")))
c = get_config()

c.JupyterHub.ip = S["ip"]
c.JupyterHub.port = S["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = S["port"] + 1
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % (S["port"] + 2)
c.ConfigurableHTTPProxy.pid_file = os.path.join(here, "proxy.pid")
c.JupyterHub.pid_file = os.path.join(here, "hub.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(here, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(here, "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.authenticator_class = S["authenticator"]
c.Authenticator.allowed_users = set(S["students"])
c.PAMAuthenticator.open_sessions = False

c.Spawner.cmd = ["/usr/bin/jupyterhub-singleuser"]
c.Spawner.notebook_dir = "~/workbook/notebooks"
c.Spawner.default_url = "/tree"
c.Spawner.env_keep = []
c.Spawner.environment = S["environment"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

CGROUPS = S.get("cgroups", {})

class ClassSpawner(LocalProcessSpawner):
    def make_preexec_fn(self, name):
        inner = super().make_preexec_fn(name)
        procs = CGROUPS.get(name, [])
        def preexec():
            for p in procs:
                with open(p, "w") as f:
                    f.write(str(os.getpid()))
            inner()
        return preexec

c.JupyterHub.spawner_class = ClassSpawner
`

// Start prepares the class folder, the students' accounts and copies, and starts the hub in the
// background (it keeps running after the command returns). Re-running it on a class folder whose
// hub is stopped starts the same class again: accounts, passwords, copies and the hub's database
// are reused.
func Start(ctx context.Context, opt Options) (*State, error) {
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("classroom: start needs root (it creates accounts and starts servers as the students)")
	}
	for _, p := range []string{"jupyterhub", "configurable-http-proxy", "/usr/bin/jupyterhub-singleuser"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("classroom: %s not found (apt-get install jupyterhub node-configurable-http-proxy)", p)
		}
	}
	if opt.CPUs < 0 || (opt.CPUs > 0 && opt.Memory <= 0) {
		return nil, fmt.Errorf("classroom: a CPU limit (%v) needs a positive memory limit: one cgroup per student holds both", opt.CPUs)
	}
	if opt.IP == "" {
		opt.IP = DefaultIP
	}
	if opt.Port == 0 {
		opt.Port = DefaultPort
	}
	if opt.Authenticator == "" {
		opt.Authenticator = "pam"
	}
	loopback := net.ParseIP(opt.IP) != nil && net.ParseIP(opt.IP).IsLoopback()
	switch opt.Authenticator {
	case "pam":
	case "dummy":
		if !loopback {
			return nil, fmt.Errorf("classroom: the dummy authenticator accepts any password; it is refused on %s (loopback only)", opt.IP)
		}
	default:
		return nil, fmt.Errorf("classroom: authenticator %q: want pam or dummy", opt.Authenticator)
	}
	if len(opt.Students) == 0 {
		return nil, errors.New("classroom: no students")
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, err
	}
	if running, _ := hubPID(dir); running > 0 {
		return nil, fmt.Errorf("classroom: the hub of %s is already running (pid %d); 'workbook classroom stop' first", dir, running)
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o711}, {hubDir(dir), 0o700}, {sharedDir(dir), 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("classroom: %v", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("classroom: %v", err)
		}
	}
	if err := checkTraversable(dir); err != nil {
		return nil, err
	}
	// Students' kernels run shell commands: the instructor's solved notebooks and hidden checks
	// must be closed to them, wherever the checkout is.
	gid, err := ensureGroup()
	if err != nil {
		return nil, err
	}
	if err := denyGroup(filepath.Join(opt.Repo, "solutions"), gid); err != nil {
		return nil, err
	}
	weights := opt.WeightsDir
	if weights == "" {
		weights = os.Getenv("WORKBOOK_WEIGHTS_DIR")
	}
	if weights == "" {
		if home, err := os.UserHomeDir(); err == nil {
			weights = filepath.Join(home, ".keras", "models")
		}
	}
	if st, err := os.Stat(weights); err != nil || !st.IsDir() {
		fmt.Fprintf(log, "classroom: no weights folder at %q: students' models will find no weights\n", weights)
		weights = ""
	}
	fmt.Fprintf(log, "classroom: preparing %s (tools, kernel, module proxy, weights)\n", sharedDir(dir))
	if err := prepareShared(ctx, dir, weights); err != nil {
		return nil, err
	}
	tmpl := opt.GoCacheTemplate
	if tmpl == "" {
		if tmpl, err = buildTemplate(ctx, dir, opt.Repo, log); err != nil {
			return nil, err
		}
	}
	old, _ := ReadState(dir)
	if old != nil {
		removeCgroups(old.Cgroups)
	}
	st := &State{Students: opt.Students, IP: opt.IP, Port: opt.Port, Auth: opt.Authenticator, Cgroups: map[string][]string{}}
	for _, s := range opt.Students {
		a, created, err := ensureAccount(s)
		if err != nil {
			return nil, err
		}
		if err := joinGroup(s); err != nil {
			return nil, err
		}
		if err := copyWorkbook(opt.Repo, a); err != nil {
			return nil, err
		}
		if err := seedStudentGoCache(tmpl, a, log); err != nil {
			return nil, err
		}
		if opt.Memory > 0 {
			cg, err := sandbox.NewCgroup("class-"+s, opt.Memory, 4096)
			if err != nil {
				return nil, fmt.Errorf("classroom: memory limit for %s: %v", s, err)
			}
			if opt.CPUs > 0 {
				if err := cg.LimitCPU(opt.CPUs); err != nil {
					cg.Remove()
					return nil, fmt.Errorf("classroom: CPU limit for %s: %v", s, err)
				}
			}
			st.Cgroups[s] = cg.ProcsFiles()
		}
		verb := "reused"
		if created {
			verb = "created"
		}
		fmt.Fprintf(log, "classroom: %s: account %s, workbook in %s\n", s, verb, StudentWorkbook(a.Home))
	}
	if opt.Authenticator == "pam" {
		if err := ensurePasswords(dir, opt.Students); err != nil {
			return nil, err
		}
	}
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	if err := writeHubConfig(dir, st, weights != ""); err != nil {
		return nil, err
	}
	if err := startHub(ctx, dir, st); err != nil {
		return nil, err
	}
	if !loopback {
		fmt.Fprintf(log, "\n*** classroom: the hub listens on %s:%d: anyone who can reach this address can try to log in. ***\n*** Use it only on the class's own network, behind HTTPS if the network is not yours.        ***\n\n", opt.IP, opt.Port)
	}
	return st, nil
}

// checkTraversable fails when a folder above the class folder keeps students out (such as /root,
// mode 0700): they must reach CLASS/shared.
func checkTraversable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("classroom: %v", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("classroom: students cannot pass through %s (mode %v) to reach %s; put the class folder elsewhere, e.g. /srv/workbook-class", d, st.Mode().Perm(), dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// studentEnv is every single-user server's environment: the class's tools first on PATH, Go
// modules from the shared read-only module cache (its download cache as the proxy, no checksum
// database: no internet), builds with -trimpath (see buildTemplate), the shared weights.
func studentEnv(dir string, weights bool) map[string]string {
	sh := sharedDir(dir)
	env := map[string]string{
		"PATH":          filepath.Join(sh, "bin") + ":/usr/local/go/bin:/usr/bin:/bin",
		"JUPYTER_PATH":  filepath.Join(sh, "jupyter"),
		"GOMODCACHE":    sharedModCache(dir),
		"GOPROXY":       "file://" + filepath.Join(sharedModCache(dir), "cache", "download"),
		"GOSUMDB":       "off",
		"GOFLAGS":       setup.WithCellGoFlags(studentGoFlags),
		"GOTOOLCHAIN":   "local",
		"GOMLX_BACKEND": "go",
		"LANG":          "C.UTF-8",
	}
	if g, err := exec.LookPath("go"); err == nil {
		if r, err := filepath.EvalSymlinks(g); err == nil {
			env["PATH"] = filepath.Join(sh, "bin") + ":" + filepath.Dir(r) + ":/usr/bin:/bin"
		}
	}
	if weights {
		env["WORKBOOK_WEIGHTS_DIR"] = filepath.Join(sh, "weights")
	}
	return env
}

func writeHubConfig(dir string, st *State, weights bool) error {
	settings := map[string]any{
		"ip": st.IP, "port": st.Port, "students": st.Students,
		"authenticator": st.Auth, "environment": studentEnv(dir, weights), "cgroups": st.Cgroups,
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(hubDir(dir), "settings.json"), b, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(hubDir(dir), "jupyterhub_config.py"), []byte(hubConfig), 0o600)
}

// startHub starts jupyterhub in its own session with its output in hub.log, and waits until the
// proxy answers for the hub.
func startHub(ctx context.Context, dir string, st *State) error {
	logf, err := os.OpenFile(HubLog(dir), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("classroom: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command("jupyterhub", "-f", filepath.Join(hubDir(dir), "jupyterhub_config.py"))
	cmd.Dir = hubDir(dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Debian's proxy finds its modules only through NODE_PATH when another node is first on PATH.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + hubDir(dir),
		"LANG=C.UTF-8", "NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("classroom: start jupyterhub: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	url := HubURL(st) + "hub/api"
	deadline := time.After(90 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("classroom: jupyterhub exited: %v; see %s:\n%s", err, HubLog(dir), tail(HubLog(dir), 15))
		case <-deadline:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			return fmt.Errorf("classroom: the hub did not answer at %s within 90 s; see %s:\n%s", url, HubLog(dir), tail(HubLog(dir), 15))
		case <-ctx.Done():
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
}

// HubURL is the address students open.
func HubURL(st *State) string {
	host := st.IP
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(st.Port)) + "/"
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// hubPID returns the hub's pid when it is running.
func hubPID(dir string) (int, error) {
	return livePID(filepath.Join(hubDir(dir), "hub.pid"))
}

func livePID(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("classroom: %s: bad pid %q", pidFile, b)
	}
	if !alive(pid) {
		return 0, nil
	}
	return pid, nil
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(st), ") Z ")
}

// StudentStatus is one student's line in Status.
type StudentStatus struct {
	Name      string
	Processes int   // processes running as the student (server, kernels, compiler, programs)
	RSS       int64 // their resident memory, bytes
}

// ClassStatus is what Status reports.
type ClassStatus struct {
	State    *State
	HubPID   int  // 0: not running
	Answers  bool // the hub answered through the proxy
	Students []StudentStatus
}

// Status reports whether the hub runs and answers, and what each student runs.
func Status(dir string) (*ClassStatus, error) {
	st, err := ReadState(dir)
	if err != nil {
		return nil, err
	}
	cs := &ClassStatus{State: st}
	cs.HubPID, _ = hubPID(dir)
	if cs.HubPID > 0 {
		c := http.Client{Timeout: 5 * time.Second}
		if resp, err := c.Get(HubURL(st) + "hub/api"); err == nil {
			resp.Body.Close()
			cs.Answers = resp.StatusCode == 200
		}
	}
	for _, s := range st.Students {
		ss := StudentStatus{Name: s}
		if a, err := lookupUID(s); err == nil {
			for _, p := range processesOf(a) {
				ss.Processes++
				ss.RSS += p.rss
			}
		}
		cs.Students = append(cs.Students, ss)
	}
	return cs, nil
}

// Stop stops the hub (which stops the single-user servers and the proxy it started), then ends
// whatever still runs as a student (kernels, compilers, programs) and removes the memory groups.
// It returns an error naming anything still alive afterwards.
func Stop(dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	hubLeft := 0
	if pid, _ := hubPID(dir); pid > 0 {
		fmt.Fprintf(log, "classroom: stopping the hub (pid %d)\n", pid)
		// The hub removes its pid file as it begins to shut down: wait for the process itself.
		syscall.Kill(pid, syscall.SIGTERM)
		waitGone(func() bool { return !alive(pid) }, 30*time.Second)
		if alive(pid) {
			fmt.Fprintf(log, "classroom: the hub did not stop in 30 s: killing it\n")
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		hubLeft = pid
	}
	if pid, _ := livePID(filepath.Join(hubDir(dir), "proxy.pid")); pid > 0 && isProgram(pid, "configurable-http-proxy", "node") {
		fmt.Fprintf(log, "classroom: stopping the proxy (pid %d)\n", pid)
		syscall.Kill(pid, syscall.SIGTERM)
		waitGone(func() bool { return !alive(pid) }, 10*time.Second)
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var left []string
	for _, s := range st.Students {
		uid, err := lookupUID(s)
		if err != nil {
			continue
		}
		for sig, round := syscall.SIGTERM, 0; round < 3; round++ {
			procs := processesOf(uid)
			if len(procs) == 0 {
				break
			}
			for _, p := range procs {
				syscall.Kill(p.pid, sig)
			}
			waitGone(func() bool { return len(processesOf(uid)) == 0 }, 5*time.Second)
			sig = syscall.SIGKILL
		}
		for _, p := range processesOf(uid) {
			left = append(left, fmt.Sprintf("%s: pid %d", s, p.pid))
		}
	}
	removeCgroups(st.Cgroups)
	if hubLeft > 0 && alive(hubLeft) {
		left = append(left, fmt.Sprintf("hub: pid %d", hubLeft))
	}
	if len(left) > 0 {
		return fmt.Errorf("classroom: still running after stop: %s", strings.Join(left, ", "))
	}
	return nil
}

func waitGone(done func() bool, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end) && !done(); {
		time.Sleep(100 * time.Millisecond)
	}
}

func isProgram(pid int, names ...string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, n := range names {
		if strings.Contains(string(b), n) {
			return true
		}
	}
	return false
}

func removeCgroups(groups map[string][]string) {
	for _, procs := range groups {
		for _, p := range procs {
			os.Remove(filepath.Dir(p)) // rmdir; fails (harmlessly) while a process is still in it
		}
	}
}
