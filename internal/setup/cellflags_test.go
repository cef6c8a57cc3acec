package setup

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCellFlagsStep: the step adds GOFLAGS to the kernel.json Debian's jupyter_client finds,
// keeps everything else in it, reports a missing entry under --check without writing, and
// changes nothing the second time.
func TestCellFlagsStep(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "kernels", KernelName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "kernel.json")
	orig := `{"argv": ["/bin/true", "--kernel", "{connection_file}"], "display_name": "Go (gonb)", "language": "go", "env": {"PATH": "/x"}}`
	if err := os.WriteFile(file, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "JUPYTER_DATA_DIR="+data)
	step := func(checkOnly bool) Step {
		t.Helper()
		r := &Report{}
		var log bytes.Buffer
		cellFlagsStep(context.Background(), Options{Log: &log, CheckOnly: checkOnly}, r, env)
		if len(r.Steps) != 1 {
			t.Fatalf("%d steps reported", len(r.Steps))
		}
		return r.Steps[0]
	}
	if s := step(true); s.Outcome != Failed || !strings.Contains(s.Detail, "GOFLAGS") {
		t.Errorf("--check: %v %q; want FAILED naming GOFLAGS", s.Outcome, s.Detail)
	}
	if b, _ := os.ReadFile(file); string(b) != orig {
		t.Errorf("--check changed kernel.json:\n%s", b)
	}
	if s := step(false); s.Outcome != Installed {
		t.Errorf("first run: %v %q; want installed", s.Outcome, s.Detail)
	}
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Argv []string          `json:"argv"`
		Env  map[string]string `json:"env"`
	}
	if err := json.Unmarshal(first, &k); err != nil {
		t.Fatal(err)
	}
	if k.Env["GOFLAGS"] != CellGoFlags || k.Env["PATH"] != "/x" || len(k.Argv) != 3 || k.Argv[0] != "/bin/true" {
		t.Errorf("kernel.json after the step:\n%s", first)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("kernel.json mode: %v, %v; want 0644", fi.Mode(), err)
	}
	if s := step(false); s.Outcome != Present {
		t.Errorf("second run: %v %q; want present", s.Outcome, s.Detail)
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, first) {
		t.Error("the second run rewrote kernel.json")
	}
}

// TestCellGoFlagsReachTheLinker builds a cgo program the way the kernel's cells are built — with
// GOFLAGS as the kernel gets it — and checks that the go command
// took the quoted entry whole: Go's own linker (no external-linker note) and no DWARF.
func TestCellGoFlagsReachTheLinker(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module cell\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { C.free(C.malloc(1)) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cell")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+CellGoFlags, "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build with GOFLAGS=%q: %v\n%s", CellGoFlags, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s := f.Section(".debug_info"); s != nil {
		t.Error("the cell program has DWARF: -ldflags=-w did not reach the linker")
	}
	if f.Section(".interp") == nil {
		t.Error("the cell program is not dynamically linked: cgo's libc (and dlopen of PJRT plugins) would be gone")
	}
	// The external linker leaves GCC's .comment section; Go's own linker does not.
	if s := f.Section(".comment"); s != nil {
		b, _ := s.Data()
		if bytes.Contains(b, []byte("GCC")) {
			t.Errorf("linked by the C linker (.comment %q): -linkmode=internal did not reach the linker", b)
		}
	}
}
