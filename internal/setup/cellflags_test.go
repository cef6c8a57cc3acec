package setup

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelEnvAddsCellGoFlags: the kernel's environment keeps the GOFLAGS it is given and adds
// CellGoFlags once, and -tags=noxla where cells would not use XLA (GOMLX_BACKEND=go here; with
// GOMLX_BACKEND naming XLA they link it), unless GOFLAGS already sets build tags.
func TestKernelEnvAddsCellGoFlags(t *testing.T) {
	g := &GoEnv{GOROOT: "/go", GOPATH: "/gopath"}
	for _, c := range []struct{ backend, in, want string }{
		{"xla:cpu", "", CellGoFlags},
		{"xla:cpu", "-trimpath", "-trimpath " + CellGoFlags},
		{"xla:cpu", "-mod=mod " + CellGoFlags, "-mod=mod " + CellGoFlags},
		{"go", "", CellGoFlags + " -tags=noxla"},
		{"go", "-trimpath", "-trimpath " + CellGoFlags + " -tags=noxla"},
		{"go", "-mod=mod " + CellGoFlags + " -tags=noxla", "-mod=mod " + CellGoFlags + " -tags=noxla"},
		{"go", "-tags=mine", "-tags=mine " + CellGoFlags},
	} {
		t.Setenv("GOMLX_BACKEND", c.backend)
		env := KernelEnvFrom([]string{"HOME=/h", "GOFLAGS=" + c.in}, g)
		var got []string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
				got = append(got, v)
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("GOMLX_BACKEND=%s GOFLAGS=%q: kernel env has GOFLAGS %q, want [%q]", c.backend, c.in, got, c.want)
		}
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
