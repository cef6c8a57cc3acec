package setup

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is this repository's Go module; RepoRoot looks for it.
const ModulePath = "github.com/transfer-learning-go/workbook"

// GoEnv is what `go env` says about the toolchain that builds notebook cells.
type GoEnv struct {
	Version string `json:"GOVERSION"`
	GOROOT  string `json:"GOROOT"`
	GOBIN   string `json:"GOBIN"`
	GOPATH  string `json:"GOPATH"`
}

// ReadGoEnv runs `go env` from PATH.
func ReadGoEnv(ctx context.Context) (*GoEnv, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("setup: no go on PATH")
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "-json", "GOVERSION", "GOROOT", "GOBIN", "GOPATH").Output()
	if err != nil {
		return nil, fmt.Errorf("setup: %s env: %v", goBin, err)
	}
	var g GoEnv
	if err := json.Unmarshal(out, &g); err != nil {
		return nil, fmt.Errorf("setup: %s env -json: %v", goBin, err)
	}
	return &g, nil
}

// BinDir is where `go install` puts programs: GOBIN, or the first GOPATH entry's bin.
func (g *GoEnv) BinDir() string {
	if g.GOBIN != "" {
		return g.GOBIN
	}
	return filepath.Join(filepath.SplitList(g.GOPATH)[0], "bin")
}

// GoBinary is the go command of this toolchain.
func (g *GoEnv) GoBinary() string { return filepath.Join(g.GOROOT, "bin", "go") }

// KernelEnv returns the environment to start Jupyter (and so the GoNB kernel) with: the current one
// with GOROOT/bin and the go install directory put first on PATH, and CellGoFlags added to GOFLAGS. GoNB looks up go, goimports and
// gopls on PATH when it runs a cell; a Jupyter started from a desktop launcher or a service usually
// lacks ~/go/bin there, and then every cell fails.
func KernelEnv(ctx context.Context) ([]string, error) {
	g, err := ReadGoEnv(ctx)
	if err != nil {
		return nil, err
	}
	return KernelEnvFrom(os.Environ(), g), nil
}

// KernelEnvFrom is KernelEnv for a given base environment and toolchain.
func KernelEnvFrom(base []string, g *GoEnv) []string {
	first := []string{filepath.Join(g.GOROOT, "bin"), g.BinDir()}
	var path, goflags string
	out := make([]string, 0, len(base)+2)
	for _, kv := range base {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			goflags = v
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "GOFLAGS="+WithCellGoFlags(goflags))
	parts := append([]string(nil), first...)
	for _, p := range filepath.SplitList(path) {
		if p != first[0] && p != first[1] {
			parts = append(parts, p)
		}
	}
	return append(out, "PATH="+strings.Join(parts, string(filepath.ListSeparator)))
}

// RepoRoot walks up from dir to the directory whose go.mod declares this workbook's module.
func RepoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("setup: %v", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if mod, err := modulePath(filepath.Join(d, "go.mod")); err == nil && mod == ModulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("setup: %s is not inside a checkout of %s (no go.mod declaring it above)", abs, ModulePath)
		}
	}
}

// modulePath reads the module line of a go.mod.
func modulePath(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("setup: %s has no module line", goMod)
}

// NotebookCommand returns the command that opens Debian's Jupyter on root/notebooks with the kernel
// environment (see KernelEnv); args (e.g. --no-browser, --ip=0.0.0.0, --port=8888) are passed through.
func NotebookCommand(ctx context.Context, root string, args []string) (*exec.Cmd, error) {
	env, err := KernelEnv(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(Jupyter); err != nil {
		return nil, fmt.Errorf("setup: %s is missing; run `workbook setup` first", Jupyter)
	}
	dir := filepath.Join(root, "notebooks")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("setup: no notebooks folder at %s", dir)
	}
	cmd := exec.CommandContext(ctx, Jupyter, append([]string{"notebook", "--notebook-dir=" + dir}, args...)...)
	cmd.Env = env
	cmd.Dir = dir
	return cmd, nil
}
