package batch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/sandbox"
	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/weights"
)

// sandboxDirs is one run's folders on the host. root and everything in it belongs to the
// sandbox user; out and export sit next to root, in the grader's work folder, so the sandbox
// user cannot swap them for links (the launcher also sanitizes their contents).
type sandboxDirs struct {
	root                                   string
	home, gocache, nbcache, bin, weightDir string
	jupyter                                string // JUPYTER_PATH: holds kernels/gonb/kernel.json
	notebookDir, notebook                  string // the copy the kernel runs (host path)
	out, export                            string
	// solutionsCover is an empty folder (the grader's, read-only inside) mounted over the
	// checkout's solutions/, with a mount point for each of solutionPackages.
	solutionsCover string
	// emptyCover is an empty folder mounted over the checkout's .git folder.
	emptyCover string
	weak       bool
}

// solutionPackages are the folders of solutions/ that a notebook may import.
var solutionPackages = []string{"check", "checks"}

func (d *sandboxDirs) create(uid int, weak bool, repo string) error {
	d.weak = weak
	d.home = filepath.Join(d.root, "home")
	d.gocache = filepath.Join(d.root, "gocache")
	d.nbcache = filepath.Join(d.root, "nbcache")
	d.bin = filepath.Join(d.root, "bin")
	d.weightDir = filepath.Join(d.root, "weights")
	d.jupyter = filepath.Join(d.root, "jupyter")
	d.notebookDir = filepath.Join(d.root, "work")
	if weak {
		// Without a mount namespace the notebook must sit inside the checkout for the setup cell
		// to find go.mod.
		d.notebookDir = filepath.Join(repo, "notebooks", ".grade-"+filepath.Base(d.root))
	}
	d.notebook = filepath.Join(d.notebookDir, "submission.ipynb")
	d.out = d.root + ".out"
	d.export = d.root + ".export"
	d.solutionsCover = d.root + ".solutions"
	d.emptyCover = d.root + ".empty"
	if !weak {
		covers := []string{d.emptyCover, d.solutionsCover}
		for _, p := range solutionPackages {
			covers = append(covers, filepath.Join(d.solutionsCover, p))
		}
		for _, p := range covers {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("grade: sandbox folder: %v", err)
			}
		}
	}
	// Parents before children: each is created and handed to the sandbox user in turn.
	for _, p := range []string{d.root, d.home, d.gocache, d.nbcache, d.bin, d.weightDir, d.notebookDir, d.out, d.export,
		d.jupyter, filepath.Join(d.jupyter, "kernels"), filepath.Join(d.jupyter, "kernels", "gonb"), filepath.Join(d.root, "tmp")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("grade: sandbox folder: %v", err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("grade: sandbox folder: %v", err)
		}
		if err := os.Lchown(p, uid, uid); err != nil && !weak {
			return fmt.Errorf("grade: sandbox folder: %v", err)
		}
	}
	return nil
}

func (d *sandboxDirs) remove() {
	for _, p := range []string{d.root, d.out, d.export, d.solutionsCover, d.emptyCover} {
		os.RemoveAll(p)
	}
	if d.weak {
		os.RemoveAll(d.notebookDir)
	}
	os.Remove(d.root + ".sandbox.json")
}

// weightsDir is the folder a submission finds the weights in: its sandbox's own, where the files
// are bind-mounted, or with weak isolation their folder on the host.
func (g *grader) weightsDir(d *sandboxDirs) string {
	if g.opt.Isolation == Weak {
		return filepath.Dir(g.host.weightFiles[0])
	}
	return d.weightDir
}

// seedWeightDigests starts the submission's notebook cache with the weights' digests, as it
// would be after the first model cell: every submission would hash the same 528 MB again
// otherwise. A cache that cannot be seeded only costs time, and the batch log says so once.
func (g *grader) seedWeightDigests(d *sandboxDirs, uid, gid int) {
	for _, w := range g.host.weightFiles {
		entries, err := weights.SeedCache(d.nbcache, filepath.Join(g.weightsDir(d), filepath.Base(w)), w, g.host.weightSums[w])
		for _, e := range entries {
			if err == nil {
				err = os.Lchown(e, uid, gid)
			}
		}
		if err != nil {
			g.seedFailed.Do(func() {
				fmt.Fprintf(g.log, "grade: the submissions' caches start without the weights' digests, so each submission hashes them itself: %v\n", err)
			})
		}
	}
}

// sandboxConfig builds the launcher configuration for one run.
func (g *grader) sandboxConfig(d *sandboxDirs, uid int) (*sandbox.Config, error) {
	h := g.host
	weak := g.opt.Isolation == Weak
	gonb, goimports := h.gonbArgv[0], h.goimports
	weightsDir := g.weightsDir(d)
	tmp := "/tmp"
	if weak {
		tmp = filepath.Join(d.root, "tmp")
	} else {
		gonb, goimports = filepath.Join(d.bin, "gonb"), filepath.Join(d.bin, "goimports")
	}
	argv := append([]string{gonb}, h.gonbArgv[1:]...)
	kernel, err := json.Marshal(map[string]any{
		"argv": argv, "display_name": "Go (gonb)", "language": "go", "interrupt_mode": "message", "env": map[string]string{},
	})
	if err != nil {
		return nil, err
	}
	if err := writeOwned(filepath.Join(d.jupyter, "kernels", "gonb", "kernel.json"), kernel, uid); err != nil {
		return nil, err
	}
	path := filepath.Join(h.goroot, "bin") + ":" + filepath.Dir(goimports) + ":/usr/local/bin:/usr/bin:/bin"
	cfg := &sandbox.Config{
		Command: "/usr/bin/python3",
		Env: []string{
			"PATH=" + path, "HOME=" + d.home, "USER=student", "LOGNAME=student", "LANG=C.UTF-8", "TMPDIR=" + tmp,
			"GOTOOLCHAIN=local", "GOFLAGS=" + setup.WithCellGoFlags(h.goflags), "GOPROXY=off", "GOSUMDB=off", "GOENV=off",
			"GOMODCACHE=" + h.gomodcache, "GOPATH=" + filepath.Join(d.home, "go"), "GOCACHE=" + d.gocache,
			"CGO_ENABLED=" + h.cgo,
			"JUPYTER_PATH=" + d.jupyter, "PYTHONDONTWRITEBYTECODE=1",
			"GOMLX_BACKEND=" + h.backendConfig, "GOMLX_NO_AUTO_INSTALL=1",
			"WORKBOOK_WEIGHTS_DIR=" + weightsDir, "WORKBOOK_CACHE_DIR=" + d.nbcache,
			"WORKBOOK_GRADE_EXPORT=" + d.export,
		},
		Sanitize: []string{d.out, d.export},
		Limits:   sandbox.Limits{FileSize: g.opt.FileSize, OpenFiles: 8192},
	}
	cfg.Env = append(cfg.Env, g.opt.Env...)
	// The notebook's folder, as the command sees it (nbrun starts the launcher there too).
	cfg.Dir = d.notebookDir
	if weak {
		cfg.Weak = true
		cfg.Limits.AddressSpace = g.opt.Memory
		return cfg, nil
	}
	cfg.UID, cfg.GID = uid, uid
	cfg.Limits.Processes = pidsLimit
	notebooks := filepath.Join(h.repo, "notebooks")
	cfg.PathMap = []sandbox.PathMapping{{From: d.notebookDir, To: notebooks}}
	cfg.Dir = notebooks
	cfg.Tmpfs = []sandbox.TmpfsMount{{Target: "/tmp", SizeBytes: 1 << 30}, {Target: "/var/tmp", SizeBytes: 256 << 20}, {Target: "/dev/shm", SizeBytes: 256 << 20}}
	// Read-only at their own paths: the toolchain, the modules, the checkout (and the XLA
	// plugin) — reachable even where a parent folder is hidden.
	needed := append([]string{h.goroot, h.gomodcache, h.repo}, g.opt.DataDirs...)
	if h.pluginDir != "" {
		needed = append(needed, h.pluginDir)
	}
	for _, p := range needed {
		cfg.Binds = append(cfg.Binds, sandbox.Bind{Source: p})
	}
	cfg.Binds = append(cfg.Binds,
		sandbox.Bind{Source: d.root, Writable: true},
		sandbox.Bind{Source: d.out, Writable: true},
		sandbox.Bind{Source: d.export, Writable: true},
		sandbox.Bind{Source: d.notebookDir, Target: notebooks, Writable: true},
		sandbox.Bind{Source: h.gonbArgv[0], Target: gonb},
		sandbox.Bind{Source: h.goimports, Target: goimports},
	)
	for _, w := range h.weightFiles {
		cfg.Binds = append(cfg.Binds, sandbox.Bind{Source: w, Target: filepath.Join(d.weightDir, filepath.Base(w))})
	}
	// The solved notebooks and the instructor's notes are not the submission's to read: an
	// empty folder covers solutions/, and only the Go packages notebooks import (the self-check
	// and the checks it runs) come back on top of it.
	solutions := filepath.Join(h.repo, "solutions")
	cfg.Binds = append(cfg.Binds, sandbox.Bind{Source: d.solutionsCover, Target: solutions})
	for _, pkg := range solutionPackages {
		cfg.Binds = append(cfg.Binds, sandbox.Bind{Source: filepath.Join(solutions, pkg)})
	}
	// The checkout's git history holds the solved notebooks too: its .git folder is covered,
	// and a linked worktree's git folders, which lie elsewhere, are hidden.
	gitInside, gitOutside := gitDirs(h.repo)
	for _, p := range gitInside {
		cfg.Binds = append(cfg.Binds, sandbox.Bind{Source: d.emptyCover, Target: p})
	}
	// Hidden: the grader's home, folders other users cannot enter anyway, and the folders the
	// caller names (the submissions', the reports') — unless a needed path lies inside.
	hide := map[string]bool{}
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		hide[filepath.Clean(home)] = true
	}
	for _, p := range append(needed, d.root, g.work) {
		if a := hiddenAncestor(p); a != "" {
			hide[a] = true
		}
	}
	for _, p := range gitOutside {
		hide[p] = true
	}
	for _, p := range g.opt.HideDirs {
		if abs, err := filepath.Abs(p); err == nil {
			hide[abs] = true
		}
	}
	// A hidden folder may contain needed paths (they are bound back on top) but may not lie
	// inside one: the checkout is bound as a whole.
	for dir := range hide {
		keep := true
		for _, p := range needed {
			if isWithin(dir, p) {
				keep = false
			}
		}
		if st, err := os.Stat(dir); keep && err == nil && st.IsDir() {
			cfg.Hide = append(cfg.Hide, dir)
		}
	}
	sort.Strings(cfg.Hide)
	return cfg, nil
}

// gitDirs finds the checkout's git folders, whose history holds every solved notebook: inside,
// the .git folder of a plain checkout; outside, for a linked worktree (whose .git is a file),
// the folder that file names and the repository's common folder, each listed once (not one
// inside another).
func gitDirs(repo string) (inside, outside []string) {
	dotGit := filepath.Join(repo, ".git")
	st, err := os.Stat(dotGit)
	if err != nil {
		return nil, nil
	}
	if st.IsDir() {
		return []string{dotGit}, nil
	}
	b, err := os.ReadFile(dotGit)
	if err != nil {
		return nil, nil
	}
	var dirs []string
	resolve := func(base, p string) string {
		if p = strings.TrimSpace(p); !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		return filepath.Clean(p)
	}
	gitDir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
	if !ok {
		return nil, nil
	}
	gitDir = resolve(repo, gitDir)
	dirs = append(dirs, gitDir)
	if c, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		dirs = append(dirs, resolve(gitDir, string(c)))
	}
	for i, p := range dirs {
		nested := false
		for j, q := range dirs {
			nested = nested || i != j && p != q && isWithin(p, q)
		}
		switch {
		case nested:
		case isWithin(p, repo):
			inside = append(inside, p)
		default:
			outside = append(outside, p)
		}
	}
	return inside, outside
}
