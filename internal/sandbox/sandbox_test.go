package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "the sandbox")
}

// run starts cfg through the launcher with args and returns stdout+stderr and the exit status.
// The launcher starts in a folder under the private /tmp most configs mount: where it was
// started from must not matter.
func run(t *testing.T, cfg *Config, args ...string) (string, int) {
	t.Helper()
	return runFrom(t, t.TempDir(), cfg, args...)
}

// runFrom is run with the launcher started in dir.
func runFrom(t *testing.T, dir string, cfg *Config, args ...string) (string, int) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "sandbox.json")
	if err := cfg.Write(cfgPath); err != nil {
		t.Fatal(err)
	}
	exe, err := Launcher()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	// HOME as the grader gives the launcher (internal/grade/batch): a launcher that links
	// GoMLX's XLA backend (this test binary does, through internal/testenv) logs a complaint at
	// start-up without one.
	cmd.Env = []string{ConfigEnv + "=" + cfgPath, "HOME=/"}
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

const testUID = 1234567

func shConfig(t *testing.T) (*Config, string) {
	work := t.TempDir()
	if err := os.Chown(work, testUID, testUID); err != nil {
		t.Fatal(err)
	}
	return &Config{
		Command: "/bin/sh",
		Env:     []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + work},
		UID:     testUID, GID: testUID,
		Hide:  []string{"/root"},
		Tmpfs: []TmpfsMount{{Target: "/tmp", SizeBytes: 64 << 20}},
		Binds: []Bind{{Source: work, Writable: true}},
	}, work
}

func TestIsolation(t *testing.T) {
	needRoot(t)
	cfg, work := shConfig(t)
	out, code := run(t, cfg, "-c", `
id -u; id -g
echo procs=$(ls /proc | grep -c '^[0-9]')
ls -A /root | wc -l
echo hi > `+work+`/ok && echo wrote-work
echo x > /tmp/x && echo wrote-tmp
touch /etc/sandbox-test 2>/dev/null || echo etc-denied
cat /sys/class/net/*/operstate | tr '\n' ' '; echo
ls /sys/class/net | tr '\n' ' '; echo
hostname
`)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want := []string{fmt.Sprint(testUID), fmt.Sprint(testUID), "procs=", "wrote-work", "wrote-tmp", "etc-denied", "lo", "sandbox"}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	t.Logf("\n%s", out)
}

func TestNoNetwork(t *testing.T) {
	needRoot(t)
	cfg, _ := shConfig(t)
	cfg.Command = "/usr/bin/python3"
	out, code := run(t, cfg, "-c", `
import socket
try:
    socket.create_connection(("1.1.1.1", 80), 3)
    print("connected")
except OSError as e:
    print("refused:", e)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print("loopback ok")
`)
	if code != 0 || !strings.Contains(out, "refused: [Errno 101] Network is unreachable") || !strings.Contains(out, "loopback ok") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// A process that detaches (new session, parent gone) still dies with the sandbox.
func TestOrphansDie(t *testing.T) {
	needRoot(t)
	cfg, _ := shConfig(t)
	out, code := run(t, cfg, "-c", "setsid sh -c 'sleep 300' </dev/null >/dev/null 2>&1 & echo started")
	if code != 0 || !strings.Contains(out, "started") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if procs := uidProcesses(t, testUID); len(procs) > 0 {
		t.Errorf("processes of uid %d survive: %v", testUID, procs)
	}
}

func uidProcesses(t *testing.T, uid int) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), fmt.Sprintf("\nUid:\t%d\t", uid)) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestMemoryCgroup(t *testing.T) {
	needRoot(t)
	if _, err := CgroupSupport(); err != nil {
		testenv.SkipMissing(t, "memory cgroup: %v", err)
	}
	cg, err := NewCgroup(fmt.Sprintf("test-%d", os.Getpid()), 64<<20, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Remove()
	cfg, _ := shConfig(t)
	cfg.CgroupProcs = cg.ProcsFiles()
	cfg.Command = "/usr/bin/python3"
	out, code := run(t, cfg, "-c", "x = bytearray(256 << 20); print('allocated')")
	st, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if code != 128+9 || strings.Contains(out, "allocated") || st.OOMKills < 1 {
		t.Errorf("exit %d, stats %+v, output %q; want a kill by the memory limit", code, st, out)
	}
	if err := cg.Remove(); err != nil {
		t.Error(err)
	}
}

// A CPU cap holds a busy process back: at a tenth of a core, a half-second busy loop spans
// several scheduling periods and the kernel throttles the group in them.
func TestCPUCgroup(t *testing.T) {
	needRoot(t)
	if _, err := CgroupSupport(); err != nil {
		testenv.SkipMissing(t, "memory cgroup: %v", err)
	}
	cg, err := NewCgroup(fmt.Sprintf("test-cpu-%d", os.Getpid()), 256<<20, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Remove()
	for _, bad := range []float64{0, -1} {
		if err := cg.LimitCPU(bad); err == nil {
			t.Errorf("LimitCPU(%v) accepted", bad)
		}
	}
	if err := cg.LimitCPU(0.1); err != nil {
		t.Fatal(err)
	}
	cfg, _ := shConfig(t)
	cfg.CgroupProcs = cg.ProcsFiles()
	cfg.Command = "/usr/bin/python3"
	out, code := run(t, cfg, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\nprint('done')")
	if code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("exit %d, output %q", code, out)
	}
	n, err := cg.Throttled()
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("throttled in %d periods, want several: the CPU cap does not hold", n)
	}
	if err := cg.Remove(); err != nil {
		t.Error(err)
	}
}

// SIGUSR1 to the launcher reaches the command (nbrun's "stop and write what ran").
func TestSignalForwarded(t *testing.T) {
	needRoot(t)
	cfg, _ := shConfig(t)
	cfgPath := filepath.Join(t.TempDir(), "sandbox.json")
	if err := cfg.Write(cfgPath); err != nil {
		t.Fatal(err)
	}
	exe, _ := Launcher()
	cmd := exec.Command(exe, "-c", `trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done`)
	cmd.Env = []string{ConfigEnv + "=" + cfgPath, "HOME=/"} // as in runFrom
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("%q %v", buf, err)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(string(rest), "got-usr1") {
		t.Errorf("exit %v, output %q", err, rest)
	}
}

// Links, FIFOs and extra hard links planted in an output folder are gone when the launcher
// returns; plain files stay.
func TestSanitize(t *testing.T) {
	needRoot(t)
	cfg, work := shConfig(t)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(out, testUID, testUID)
	cfg.Binds = append(cfg.Binds, Bind{Source: out, Writable: true})
	cfg.Sanitize = []string{out}
	_, code := run(t, cfg, "-c", fmt.Sprintf(`cd %s && echo ok > plain && ln -s /etc/shadow link && mkfifo fifo && echo x > a && ln a hard && mkdir sub && echo %s`, out, work))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "plain" {
		t.Errorf("left in the output folder: %v; want only plain", names)
	}
}

func TestReport(t *testing.T) {
	needRoot(t)
	cfg, _ := shConfig(t)
	cfg.ReportFile = filepath.Join(t.TempDir(), "report")
	if _, code := run(t, cfg, "-c", "exit 3"); code != 3 {
		t.Errorf("exit %d, want the command's 3", code)
	}
	if err := ReadReport(cfg.ReportFile); err != nil {
		t.Errorf("report after a started command: %v", err)
	}
	cfg.Binds = append(cfg.Binds, Bind{Source: "/nonexistent-source"})
	out, code := run(t, cfg, "-c", "exit 0")
	if code != launcherFailure || !strings.Contains(out, "nonexistent-source") {
		t.Errorf("exit %d, output %q", code, out)
	}
	if err := ReadReport(cfg.ReportFile); err == nil || !strings.Contains(err.Error(), "nonexistent-source") {
		t.Errorf("report after a failed setup: %v", err)
	}
}

func TestWeak(t *testing.T) {
	cfg := &Config{Command: "/bin/sh", Env: []string{"PATH=/usr/bin:/bin"}, Weak: true,
		Limits: Limits{AddressSpace: 512 << 20, FileSize: 1 << 20}}
	out, code := run(t, cfg, "-c", "ulimit -v; ulimit -f; id -u")
	want := fmt.Sprintf("%d\n%d\n%d\n", 512<<10, 2048, os.Getuid())
	if code != 0 || out != want {
		t.Errorf("exit %d, output %q, want %q", code, out, want)
	}
}

// The command's working directory is Config.Dir ("/" when unset) wherever the launcher was
// started; one that is not there inside is refused by name.
func TestWorkingDirectory(t *testing.T) {
	needRoot(t)
	cfg, work := shConfig(t)
	for _, from := range []string{t.TempDir(), "/", work} {
		if out, code := runFrom(t, from, cfg, "-c", "pwd"); code != 0 || out != "/\n" {
			t.Errorf("started from %s: exit %d, output %q, want /", from, code, out)
		}
	}
	cfg.Dir = work
	if out, code := run(t, cfg, "-c", "pwd"); code != 0 || out != work+"\n" {
		t.Errorf("Dir %s: exit %d, output %q", work, code, out)
	}
	cfg.Dir = "/root/not-here"
	cfg.ReportFile = filepath.Join(t.TempDir(), "report")
	out, code := run(t, cfg, "-c", "pwd")
	if code != launcherFailure || !strings.Contains(out, "/root/not-here") {
		t.Errorf("a hidden Dir: exit %d, output %q", code, out)
	}
	if err := ReadReport(cfg.ReportFile); err == nil || !strings.Contains(err.Error(), "working directory /root/not-here") {
		t.Errorf("report: %v", err)
	}
	cfg.Dir = "relative"
	if err := cfg.Write(filepath.Join(t.TempDir(), "c.json")); err == nil {
		t.Error("a relative Dir was accepted")
	}
}

// A command that cannot be executed is the launcher's failure, reported with the reason —
// not a status the command could also have produced.
func TestExecFailureReported(t *testing.T) {
	for _, weak := range []bool{false, true} {
		t.Run(fmt.Sprint("weak=", weak), func(t *testing.T) {
			var cfg *Config
			if weak {
				cfg = &Config{Command: "/bin/sh", Weak: true}
			} else {
				needRoot(t)
				cfg, _ = shConfig(t)
			}
			cfg.Command = "/nonexistent/program"
			cfg.Limits.FileSize = 1 << 20
			cfg.ReportFile = filepath.Join(t.TempDir(), "report")
			out, code := run(t, cfg)
			if code != launcherFailure || !strings.Contains(out, "/nonexistent/program") || !strings.Contains(out, "no such file") {
				t.Errorf("exit %d, output %q", code, out)
			}
			err := ReadReport(cfg.ReportFile)
			if err == nil || !strings.Contains(err.Error(), "/nonexistent/program") || !strings.Contains(err.Error(), "file size 1048576") {
				t.Errorf("report: %v", err)
			}
		})
	}
}

// The limits bind the command, not the launcher: an address-space limit far below what a Go
// program reserves leaves the launcher working.
func TestLimitsBindOnlyTheCommand(t *testing.T) {
	needRoot(t)
	cfg, _ := shConfig(t)
	cfg.Limits = Limits{AddressSpace: 48 << 20, FileSize: 1 << 20, OpenFiles: 64}
	out, code := run(t, cfg, "-c", "ulimit -v; ulimit -f; ulimit -n")
	if want := fmt.Sprintf("%d\n%d\n64\n", 48<<10, 2048); code != 0 || out != want {
		t.Errorf("exit %d, output %q, want %q", code, out, want)
	}
	weak := &Config{Command: "/bin/sh", Env: []string{"PATH=/usr/bin:/bin"}, Weak: true, Limits: cfg.Limits}
	out, code = run(t, weak, "-c", "ulimit -v; ulimit -f; ulimit -n")
	if want := fmt.Sprintf("%d\n%d\n64\n", 48<<10, 2048); code != 0 || out != want {
		t.Errorf("weak: exit %d, output %q, want %q", code, out, want)
	}
}
