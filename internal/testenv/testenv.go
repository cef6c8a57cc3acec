// Package testenv decides what a test does when something it needs is not there: an external
// oracle (Debian's Python with Pillow, NumPy, h5py, PyTorch or the Keras image libraries; the
// book's images next to the checkout), a tool, Jupyter with GoNB, root, a memory cgroup, the time
// a -short run saves. On a developer's machine the test skips with the reason; in CI it fails —
// a green CI run must mean every comparison really ran.
//
// Two kinds of absence are told apart:
//
//   - SkipMissing (and Need, NeedRoot, Python, Jupyter, Long): what a CI machine must provide.
//     Under WORKBOOK_REQUIRE_ORACLES (set by .ci/run) the test fails with the reason.
//   - NeedFeature: hardware or a plugin a CI machine may lack (an AVX2 CPU, an XLA PJRT plugin).
//     The test skips, and the skip is written to $WORKBOOK_SKIP_LOG, which .ci/run prints at
//     the end, so "not tested on this machine" is said in CI's output, not only under -v. A
//     feature named in WORKBOOK_REQUIRE_FEATURES (.ci/run names those /proc/cpuinfo shows) fails
//     instead: then the machine has it and the code did not see it.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/setup"
)

// RequireEnv, when set to a non-empty value other than "0", turns missing oracles, tools,
// root, cgroups and -short into failures. .ci/run sets it.
const RequireEnv = "WORKBOOK_REQUIRE_ORACLES"

// RequireJupyterEnv, when "1", turns a missing Jupyter/GoNB into a failure even without
// RequireEnv (the older, narrower switch; .ci/run sets both).
const RequireJupyterEnv = "WORKBOOK_REQUIRE_JUPYTER"

// RequireFeaturesEnv lists, comma-separated, the NeedFeature features this machine has and
// whose tests must therefore run (e.g. "avx2,cgo").
const RequireFeaturesEnv = "WORKBOOK_REQUIRE_FEATURES"

// SkipLogEnv names a file NeedFeature appends one line to per test it skips.
const SkipLogEnv = "WORKBOOK_SKIP_LOG"

// PythonPath is Debian's interpreter, which carries the oracles (python3-numpy, python3-pil,
// python3-h5py, python3-torch, python3-keras-preprocessing, ...); a python3 earlier on PATH may not.
const PythonPath = "/usr/bin/python3"

// Required reports whether missing oracles must fail the test run.
func Required() bool {
	v := os.Getenv(RequireEnv)
	return v != "" && v != "0"
}

// SkipMissing skips tb because something it needs is missing, or fails it when RequireEnv is set.
func SkipMissing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (required because %s is set)", msg, RequireEnv)
		return
	}
	tb.Skip(msg)
}

// Need calls SkipMissing with the message unless ok.
func Need(tb testing.TB, ok bool, format string, args ...any) {
	tb.Helper()
	if !ok {
		SkipMissing(tb, format, args...)
	}
}

// NeedRoot needs the test process to run as root; why says what for.
func NeedRoot(tb testing.TB, why string) {
	tb.Helper()
	Need(tb, os.Geteuid() == 0, "%s needs root (running as uid %d)", why, os.Geteuid())
}

// Long skips a test that takes long under go test -short. CI runs everything: there -short
// is refused.
func Long(tb testing.TB, why string) {
	tb.Helper()
	if testing.Short() {
		SkipMissing(tb, "-short: %s", why)
	}
}

var pythonImports sync.Map // module list → error from importing it

// Python needs PythonPath to import the given modules and returns the path.
func Python(tb testing.TB, modules ...string) string {
	tb.Helper()
	key := strings.Join(modules, ",")
	v, ok := pythonImports.Load(key)
	if !ok {
		var err error
		if _, err = os.Stat(PythonPath); err == nil && len(modules) > 0 {
			var out []byte
			if out, err = exec.Command(PythonPath, "-c", "import "+key).CombinedOutput(); err != nil {
				err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
			}
		}
		v, _ = pythonImports.LoadOrStore(key, err)
	}
	if err, _ := v.(error); err != nil {
		SkipMissing(tb, "oracle %s cannot import %s (Debian packages python3-<module>): %v", PythonPath, key, err)
	}
	return PythonPath
}

var jupyter = sync.OnceValues(func() ([]string, error) {
	if out, err := exec.Command(PythonPath, "-c", "import nbclient, nbconvert, nbformat").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s cannot import nbclient/nbconvert: %v %s", PythonPath, err, strings.TrimSpace(string(out)))
	}
	ctx := context.Background()
	env, err := setup.KernelEnv(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := setup.FindKernelSpec(ctx, env); err != nil {
		return nil, err
	}
	return env, nil
})

// Jupyter needs Debian's Jupyter with the GoNB kernel registered and returns the environment
// to run the kernel with. Missing, it fails under RequireEnv or RequireJupyterEnv=1.
func Jupyter(tb testing.TB) []string {
	tb.Helper()
	env, err := jupyter()
	if err != nil {
		msg := "Jupyter with the GoNB kernel is not set up (" + err.Error() + "); run `go run ./cmd/workbook setup`"
		if os.Getenv(RequireJupyterEnv) == "1" && !Required() {
			tb.Fatalf("%s (required because %s=1)", msg, RequireJupyterEnv)
			return nil
		}
		SkipMissing(tb, "%s", msg)
	}
	return slices.Clip(env)
}

// NeedFeature skips tb unless ok, for hardware or a plugin this machine may legitimately lack
// (feature is a short name such as "avx2", "cgo" or "xla"; what says what goes untested). The
// skip is appended to $WORKBOOK_SKIP_LOG; a feature listed in RequireFeaturesEnv fails instead.
func NeedFeature(tb testing.TB, feature string, ok bool, what string) {
	tb.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf("not tested on this machine: %s (needs %s)", what, feature)
	if slices.Contains(strings.Split(os.Getenv(RequireFeaturesEnv), ","), feature) {
		tb.Fatalf("%s, but %s lists %s: the machine has it and the code does not see it", msg, RequireFeaturesEnv, feature)
		return
	}
	if path := os.Getenv(SkipLogEnv); path != "" {
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s: %s\n", packageDir(), tb.Name(), msg)
			f.Close()
		} else {
			tb.Errorf("testenv: %s: %v", SkipLogEnv, err)
		}
	}
	tb.Skip(msg)
}

// packageDir is the test's package folder relative to the module root (go test runs a test
// binary in its package's folder).
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return "./" + filepath.ToSlash(rel)
			}
			return wd
		}
		if filepath.Dir(dir) == dir {
			return wd
		}
	}
}
