package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKernelEnvPutsGoToolsFirstOnce(t *testing.T) {
	g := &GoEnv{GOROOT: "/opt/go", GOPATH: "/home/u/go:/other"}
	base := []string{"HOME=/home/u", "PATH=/usr/bin:/home/u/go/bin:/bin", "GOFLAGS=-buildvcs=false"}
	env := KernelEnvFrom(base, g)
	var path string
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv
			n++
		}
	}
	if n != 1 || path != "PATH=/opt/go/bin:/home/u/go/bin:/usr/bin:/bin" {
		t.Errorf("%d PATH entries, PATH = %q", n, path)
	}
	if len(env) != len(base) || env[0] != "HOME=/home/u" || env[1] != "GOFLAGS="+WithCellGoFlags("-buildvcs=false") {
		t.Errorf("other variables changed: %q", env)
	}
	if got := (&GoEnv{GOBIN: "/b", GOPATH: "/p"}).BinDir(); got != "/b" {
		t.Errorf("BinDir with GOBIN = %q", got)
	}
}

func TestRepoRoot(t *testing.T) {
	wd, _ := os.Getwd()
	root, err := RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if wd != filepath.Join(root, "internal", "setup") {
		t.Errorf("RepoRoot(%s) = %s", wd, root)
	}
	// A go.mod of another module on the way up is skipped; none of ours above is an error.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(other, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if r, err := RepoRoot(sub); err == nil {
		t.Errorf("RepoRoot outside the checkout = %s, want an error", r)
	}
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("// c\nmodule \""+ModulePath+"\"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := RepoRoot(sub); err != nil || r != other {
		t.Errorf("RepoRoot with a quoted module line = %q, %v", r, err)
	}
}

func TestBinaryModuleVersion(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := BinaryModuleVersion(exe, ModulePath); err != nil || v != "(devel)" {
		t.Errorf("test binary: version %q, %v; want (devel)", v, err)
	}
	if _, err := BinaryModuleVersion(exe, "example.com/absent"); err == nil {
		t.Error("absent module reported a version")
	}
	if _, err := BinaryModuleVersion(filepath.Join(t.TempDir(), "none"), ModulePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing binary: err = %v, want not-exist", err)
	}
}

// TestCheckOnlyInstallsNothing points GOBIN at an empty folder: every Go tool must be reported
// missing with its wanted version, the kernel step skipped, and nothing written.
func TestCheckOnlyInstallsNothing(t *testing.T) {
	if _, err := ReadGoEnv(context.Background()); err != nil {
		t.Fatal(err) // go test runs the go command: it is there
	}
	bin := t.TempDir()
	t.Setenv("GOBIN", bin)
	var log bytes.Buffer
	smoked := false
	r := Run(context.Background(), Options{Log: &log, CheckOnly: true,
		Smoke: func(context.Context, []string) error { smoked = true; return nil }})
	if r.OK() {
		t.Fatal("report OK with no Go tools installed")
	}
	byName := map[string]Step{}
	for _, s := range r.Steps {
		byName[s.Name] = s
	}
	for _, tool := range Tools {
		s := byName[tool.Name]
		if s.Outcome != Failed || !strings.Contains(s.Detail, "missing") || !strings.Contains(s.Detail, tool.Version) {
			t.Errorf("%s: %v %q; want FAILED, missing, %s", tool.Name, s.Outcome, s.Detail, tool.Version)
		}
	}
	if s := byName["kernel registration"]; s.Outcome != Skipped {
		t.Errorf("kernel registration: %v %q, want skipped", s.Outcome, s.Detail)
	}
	if smoked {
		t.Error("smoke test ran although the kernel step was skipped")
	}
	if entries, _ := os.ReadDir(bin); len(entries) != 0 {
		t.Errorf("--check wrote %d files into GOBIN", len(entries))
	}
	var summary bytes.Buffer
	r.WriteSummary(&summary)
	if !strings.Contains(summary.String(), "FAILED") || !strings.Contains(summary.String(), "gonb") {
		t.Errorf("summary:\n%s", summary.String())
	}
}

// TestInstalledToolsArePinned checks this machine's setup when it has been done (CI runs
// `workbook setup` first): the binaries carry the pinned versions and Debian's Jupyter sees a gonb
// kernel that runs our binary.
func TestInstalledToolsArePinned(t *testing.T) {
	ctx := context.Background()
	g, err := ReadGoEnv(ctx)
	if err != nil {
		t.Fatal(err) // go test runs the go command: it is there
	}
	if _, err := os.Stat(filepath.Join(g.BinDir(), "gonb")); err != nil {
		// internal/testenv's rule, written out: testenv imports this package, so this package's
		// own tests cannot import testenv.
		msg := fmt.Sprintf("`workbook setup` has not been run here: %v", err)
		if v := os.Getenv("WORKBOOK_REQUIRE_ORACLES"); (v != "" && v != "0") || os.Getenv("WORKBOOK_REQUIRE_JUPYTER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, tool := range Tools {
		v, err := BinaryModuleVersion(filepath.Join(g.BinDir(), tool.Name), tool.Module)
		if err != nil || v != tool.Version {
			t.Errorf("%s: %q, %v; want %s", tool.Name, v, err, tool.Version)
		}
	}
	spec, err := FindKernelSpec(ctx, KernelEnvFrom(os.Environ(), g))
	if err != nil {
		t.Fatal(err)
	}
	if !spec.runs(filepath.Join(g.BinDir(), "gonb")) {
		t.Errorf("kernel in %s runs %q", spec.ResourceDir, spec.Argv)
	}
}
