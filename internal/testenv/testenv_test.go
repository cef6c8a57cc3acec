package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for the test a helper is given: it records the first Fatalf or Skip
// instead of stopping.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return "TestSomething" }
func (r *recorder) Fatalf(format string, args ...any) {
	if r.fatal == "" {
		r.fatal = fmt.Sprintf(format, args...)
	}
}
func (r *recorder) Skip(args ...any) {
	if r.skip == "" {
		r.skip = fmt.Sprint(args...)
	}
}

func TestSkipMissingFailsWhenRequired(t *testing.T) {
	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	SkipMissing(r, "tool %s missing", "x")
	if r.skip != "tool x missing" || r.fatal != "" {
		t.Errorf("without %s: skip %q fatal %q", RequireEnv, r.skip, r.fatal)
	}
	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	Need(r, false, "tool %s missing", "x")
	if !strings.Contains(r.fatal, "tool x missing") || !strings.Contains(r.fatal, RequireEnv) || r.skip != "" {
		t.Errorf("with %s: skip %q fatal %q", RequireEnv, r.skip, r.fatal)
	}
	r = &recorder{TB: t}
	Need(r, true, "never said")
	if r.fatal != "" || r.skip != "" {
		t.Errorf("ok: skip %q fatal %q", r.skip, r.fatal)
	}
}

func TestPythonMissingModule(t *testing.T) {
	t.Setenv(RequireEnv, "1")
	r := &recorder{TB: t}
	Python(r, "no_such_module_for_testenv")
	if !strings.Contains(r.fatal, "no_such_module_for_testenv") {
		t.Errorf("fatal %q, want one naming the module", r.fatal)
	}
}

func TestNeedFeatureLogsOrFails(t *testing.T) {
	log := filepath.Join(t.TempDir(), "not-tested.txt")
	t.Setenv(SkipLogEnv, log)
	t.Setenv(RequireFeaturesEnv, "cgo")
	r := &recorder{TB: t}
	NeedFeature(r, "avx2", false, "the AVX2 kernel")
	if r.fatal != "" || !strings.Contains(r.skip, "not tested on this machine: the AVX2 kernel (needs avx2)") {
		t.Errorf("skip %q fatal %q", r.skip, r.fatal)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if want := "./internal/testenv TestSomething: not tested on this machine: the AVX2 kernel (needs avx2)\n"; string(b) != want {
		t.Errorf("log %q, want %q", b, want)
	}
	t.Setenv(RequireFeaturesEnv, "cgo,avx2")
	r = &recorder{TB: t}
	NeedFeature(r, "avx2", false, "the AVX2 kernel")
	if !strings.Contains(r.fatal, RequireFeaturesEnv) || r.skip != "" {
		t.Errorf("required: skip %q fatal %q", r.skip, r.fatal)
	}
	r = &recorder{TB: t}
	NeedFeature(r, "avx2", true, "the AVX2 kernel")
	if r.fatal != "" || r.skip != "" {
		t.Errorf("present: skip %q fatal %q", r.skip, r.fatal)
	}
}
