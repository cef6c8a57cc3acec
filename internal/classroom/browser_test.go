package classroom

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/reference"
	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// The activity both students have; Ann hands in the solved notebook, Ben the one as shipped.
const (
	activityID       = "A8.01"
	activityNotebook = "02-activity-8.01-vgg16-motorcycle.ipynb"
)

// browserResult is what testdata/runall.js prints.
type browserResult struct {
	SpawnS    float64  `json:"spawn_s"`
	RunAllS   float64  `json:"run_all_s"`
	CodeCells int      `json:"code_cells"`
	Executed  int      `json:"executed"`
	Errors    []string `json:"errors"`
	Stderr    []string `json:"stderr"`
	Images    int      `json:"images"`
	Text      string   `json:"text"`
	Probe     string   `json:"probe"`
	Failure   string   `json:"failure"`
}

// requireClassTools skips (fails in CI: internal/testenv) unless this machine can host a class
// and drive a browser: root, Debian's jupyterhub and proxy, Jupyter with the GoNB kernel,
// chromium, node and puppeteer-core in .dev/puppeteer (what .ci/run installs).
func requireClassTools(t *testing.T, repo string) string {
	t.Helper()
	testenv.NeedRoot(t, "classroom: hosting a class (accounts, setuid servers)")
	testenv.Long(t, "classroom: two students run an activity through JupyterHub in Chromium (about five minutes)")
	for _, p := range []string{"jupyterhub", "configurable-http-proxy", "chromium", "node", "useradd", "chpasswd"} {
		_, err := exec.LookPath(p)
		testenv.Need(t, err == nil, "classroom: %s not installed (.ci/run installs it)", p)
	}
	mod := filepath.Join(repo, ".dev", "puppeteer", "node_modules")
	_, err := os.Stat(filepath.Join(mod, "puppeteer-core"))
	testenv.Need(t, err == nil, "classroom: puppeteer-core not in %s (npm install --prefix .dev/puppeteer puppeteer-core@24)", mod)
	testenv.Jupyter(t)
	return mod
}

// freePort finds a port p with p+1 and p+2 free too (the hub's and the proxy API's).
func freePort(t *testing.T) int {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := p+2 < 65536
		for i := 1; ok && i <= 2; i++ {
			if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i)); err != nil {
				ok = false
			} else {
				l2.Close()
			}
		}
		if ok {
			return p
		}
	}
	t.Fatal("no three consecutive free ports")
	return 0
}

// TestClassroomInBrowser hosts a two-student class on loopback, logs in as one student with her
// generated password in Chromium, runs an activity notebook with Cell > Run All, checks its
// outputs and that she cannot read the other student's work or the solutions, grades both, and
// stops everything.
func TestClassroomInBrowser(t *testing.T) {
	wd, _ := os.Getwd()
	repo, err := setup.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	nodeModules := requireClassTools(t, repo)
	weights := reference.Dir(t)

	// One class folder across runs: its shared module cache and build cache template (minutes to
	// compile) are kept, everything a class of new students must not inherit is removed.
	dir := filepath.Join(os.TempDir(), "workbook-classroom-test")
	students := []string{"wbtest-ann", "wbtest-ben"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	reset := func() {
		for _, s := range students { // accounts, homes included
			exec.Command("userdel", "--remove", s).Run()
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != "shared" && e.Name() != "gocache" {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
	t.Cleanup(func() {
		if _, err := ReadState(dir); err == nil {
			if err := Stop(dir, nil); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		reset()
	})
	if _, err := ReadState(dir); err == nil {
		Stop(dir, nil) // a previous run that was killed
	}
	reset()

	t0 := time.Now()
	st, err := Start(ctx, Options{Dir: dir, Repo: repo, Students: students, Port: freePort(t),
		WeightsDir: weights, Memory: 6 << 30, CPUs: 1.5, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hub started in %s at %s", time.Since(t0).Round(time.Millisecond), HubURL(st))
	if fi, err := os.Stat(PasswordsFile(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("passwords file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	// Ann hands in the solved activity: her copy of the notebook becomes the solution.
	ann, ben := students[0], students[1]
	annNB := filepath.Join("/home", ann, "workbook", "notebooks", activityNotebook)
	b, err := os.ReadFile(filepath.Join(repo, "solutions", activityNotebook))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(annNB, b, 0o644); err != nil {
		t.Fatal(err)
	}
	uid, _ := lookupUID(ann)
	os.Chown(annNB, uid, uid)

	pw, err := Password(dir, ann)
	if err != nil {
		t.Fatal(err)
	}
	benNB := filepath.Join("/home", ben, "workbook", "notebooks", activityNotebook)
	solution := filepath.Join(repo, "solutions", "checks", "activity-8.01.json")
	probe := fmt.Sprintf("import (\"fmt\"; \"os\")\n%%%%\n_, e1 := os.ReadFile(%q)\n_, e2 := os.ReadFile(%q)\n_, e3 := os.ReadFile(%q)\nfmt.Println(\"probe1:\", e1)\nfmt.Println(\"probe2:\", e2)\nfmt.Println(\"probe3:\", e3)\n",
		benNB, solution, PasswordsFile(dir))
	shot := filepath.Join(dir, "ann.png")
	cmd := exec.CommandContext(ctx, "node", filepath.Join(wd, "testdata", "runall.js"), HubURL(st), ann, pw, activityNotebook, shot, "420", probe)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	cmd.Stderr = testLog{t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("browser: %v\n%s\nhub log:\n%s", err, out, tail(HubLog(dir), 30))
	}
	var r browserResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	t.Logf("browser: login to server %.1f s, Run All %.1f s, %d/%d cells, %d image(s)", r.SpawnS, r.RunAllS, r.Executed, r.CodeCells, r.Images)
	if r.Failure != "" {
		t.Fatalf("browser: %s\noutputs so far:\n%s\nhub log:\n%s", r.Failure, r.Text, tail(HubLog(dir), 30))
	}
	for _, e := range r.Stderr {
		t.Logf("Run All: on stderr: %s", strings.TrimSpace(e))
	}
	if r.CodeCells == 0 || r.Executed != r.CodeCells || len(r.Errors) > 0 {
		t.Errorf("Run All: %d of %d code cells ran; errors: %q", r.Executed, r.CodeCells, r.Errors)
	}
	if r.Images < 1 {
		t.Errorf("Run All: no inline image in the outputs")
	}
	if !strings.Contains(r.Text, "motor") && !strings.Contains(r.Text, "stand-in") {
		t.Logf("outputs:\n%s", r.Text)
	}
	for i := 1; i <= 3; i++ {
		if want := fmt.Sprintf("probe%d: open", i); !strings.Contains(r.Probe, want) || !strings.Contains(r.Probe, "permission denied") {
			t.Errorf("a student could read another's notebook, the solutions or the passwords: probe output %q", r.Probe)
			break
		}
	}

	// Ann's server and kernel run in her cgroup, under its CPU cap.
	checkCPUCap(t, uid, 1.5)

	// Collect and grade through the command, as the instructor does.
	bin := filepath.Join(dir, "workbook")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/workbook")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g := exec.CommandContext(ctx, bin, "classroom", "grade", "--class", dir, "--exercise", activityID, "--jobs", "2")
	g.Dir = repo
	g.Env = append(os.Environ(), "WORKBOOK_WEIGHTS_DIR="+weights)
	g.Stderr = testLog{t}
	gout, err := g.Output()
	if err != nil {
		t.Fatalf("classroom grade: %v\n%s", err, gout)
	}
	t.Logf("classroom grade:\n%s", gout)
	f, err := os.Open(filepath.Join(GradesDir(dir, activityID), "gradebook.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 {
		t.Fatalf("gradebook: %v, %d rows; want a header and two students", err, len(rows))
	}
	score := map[string][2]string{}
	for _, row := range rows[1:] {
		score[row[0]] = [2]string{row[len(row)-3], row[len(row)-2]}
	}
	if s := score[ann]; s[0] != s[1] || s[0] == "" {
		t.Errorf("gradebook: %s (solved notebook) scored %s of %s; want full marks", ann, s[0], s[1])
	}
	if s := score[ben]; s[0] == s[1] {
		t.Errorf("gradebook: %s (notebook as shipped) scored %s of %s; want less than full marks", ben, s[0], s[1])
	}
	for _, s := range students {
		fb := filepath.Join("/home", s, "workbook", "notebooks", "feedback-"+activityID+".md")
		uid, _ := lookupUID(s)
		fi, err := os.Stat(fb)
		if err != nil {
			t.Errorf("feedback for %s: %v", s, err)
			continue
		}
		if got := fileUID(fi); got != uid {
			t.Errorf("feedback for %s is owned by uid %d, want %d", s, got, uid)
		}
	}

	if err := Stop(dir, testLog{t}); err != nil {
		t.Fatal(err)
	}
	for _, s := range students {
		uid, _ := lookupUID(s)
		if p := processesOf(uid); len(p) > 0 {
			t.Errorf("after stop, %s still runs %d process(es)", s, len(p))
		}
	}
	if out, _ := exec.Command("pgrep", "-f", filepath.Join(dir, "hub")).Output(); len(out) > 0 {
		t.Errorf("after stop, hub processes remain: %s", out)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// checkCPUCap checks that the processes of user uid still running (the single-user server and
// its kernels) are all in a cgroup whose CPU quota is cpus cores, as the kernel reports it.
func checkCPUCap(t *testing.T, uid int, cpus float64) {
	t.Helper()
	want := strconv.Itoa(int(cpus * 100000))
	n := 0
	for _, p := range processesOf(uid) {
		pid := strconv.Itoa(p.pid)
		groups, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
		if err != nil {
			continue
		}
		quota := ""
		for _, l := range strings.Split(strings.TrimSpace(string(groups)), "\n") {
			f := strings.SplitN(l, ":", 3)
			if len(f) != 3 {
				continue
			}
			switch {
			case f[0] == "0" && f[1] == "": // v2: "quota period"
				if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", f[2], "cpu.max")); err == nil {
					quota = strings.Fields(string(b))[0]
				}
			case slices.Contains(strings.Split(f[1], ","), "cpu"):
				if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", f[2], "cpu.cfs_quota_us")); err == nil {
					quota = strings.TrimSpace(string(b))
				}
			}
		}
		if quota != want {
			t.Errorf("process %s of uid %d: CPU quota %q µs per 100 ms, want %s (cgroups:\n%s)", pid, uid, quota, want, groups)
		}
		n++
	}
	if n == 0 {
		t.Errorf("no process of uid %d is running", uid)
	}
}
