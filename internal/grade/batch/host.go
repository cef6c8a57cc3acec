package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/weights"
)

// host is what the grader learns about this machine once per batch: the toolchain and kernel
// the notebooks need, and the files a sandbox must be able to read.
type host struct {
	goroot, gomodcache, goflags, cgo string
	gonbArgv                         []string // the registered kernel's command line
	goimports                        string
	backendConfig                    string // GOMLX_BACKEND for the notebooks: the grader's own plan
	pluginDir                        string // XLA plugin folder to expose, if any
	weightFiles                      []string
	weightSums                       map[string]weights.Sums // by file, seeded into each sandbox's notebook cache
	repo                             string
}

func discoverHost(ctx context.Context, repo string, ckpt weights.Source) (*host, error) {
	env, err := setup.KernelEnv(ctx)
	if err != nil {
		return nil, err
	}
	h := &host{repo: repo}
	goBin, err := lookPath(env, "go")
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "-json", "GOROOT", "GOMODCACHE", "GOFLAGS", "CGO_ENABLED").Output()
	if err != nil {
		return nil, fmt.Errorf("grade: %s env: %v", goBin, err)
	}
	var ge struct{ GOROOT, GOMODCACHE, GOFLAGS, CGO_ENABLED string }
	if err := json.Unmarshal(out, &ge); err != nil {
		return nil, fmt.Errorf("grade: go env -json: %v", err)
	}
	h.goroot, h.gomodcache, h.goflags, h.cgo = ge.GOROOT, ge.GOMODCACHE, ge.GOFLAGS, ge.CGO_ENABLED
	spec, err := setup.FindKernelSpec(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("grade: the GoNB kernel is not registered (%v); run `go run ./cmd/workbook setup`", err)
	}
	if len(spec.Argv) == 0 || !filepath.IsAbs(spec.Argv[0]) {
		return nil, fmt.Errorf("grade: the gonb kernel's command %q is not an absolute path", spec.Argv)
	}
	h.gonbArgv = spec.Argv
	if h.goimports, err = lookPath(env, "goimports"); err != nil {
		return nil, err
	}
	plan, err := backend.PlanFromEnvironment()
	if err != nil {
		return nil, err
	}
	h.backendConfig = plan.Config
	if plan.Plugin != "" {
		h.pluginDir = filepath.Dir(plan.Plugin)
	}
	// The exercise's checkpoint, and the other official checkpoints that sit next to it (a
	// notebook that loads the wrong model should fail on its predictions, not on a missing file).
	dir := filepath.Dir(ckpt.Path)
	for _, f := range weights.Catalog() {
		p := filepath.Join(dir, f.Name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			h.weightFiles = append(h.weightFiles, p)
		}
	}
	sort.Strings(h.weightFiles)
	if len(h.weightFiles) == 0 {
		return nil, fmt.Errorf("grade: the reference's weights file %q is not a readable file", ckpt.Path)
	}
	h.weightSums = map[string]weights.Sums{}
	for _, p := range h.weightFiles {
		if h.weightSums[p], err = weights.FileSums(p); err != nil {
			return nil, fmt.Errorf("grade: %w", err)
		}
	}
	return h, nil
}

// lookPath finds name on the PATH of env.
func lookPath(env []string, name string) (string, error) {
	path := ""
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[len("PATH="):]
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("grade: %s is not on the kernel's PATH (%s); run `go run ./cmd/workbook setup`", name, path)
}

// hiddenAncestor returns the highest ancestor of p (excluding /) that other users cannot
// traverse, or "" if every ancestor is open. Such a directory must be covered inside the
// sandbox, and p bound back, for the sandbox user to reach p.
func hiddenAncestor(p string) string {
	var chain []string
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		chain = append(chain, d)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		st, err := os.Stat(chain[i])
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			return chain[i]
		}
	}
	return ""
}

// isWithin reports whether p is dir or inside it.
func isWithin(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

var errNoRoot = errors.New("grade: the sandbox needs root: run the grader as root (e.g. with sudo), or pass --isolation=weak to accept running students' code as yourself (see solutions/README.md)")
