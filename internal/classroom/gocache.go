package classroom

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/transfer-learning-go/workbook/internal/grade/batch"
)

// studentGoFlags are the students' GOFLAGS. Go reuses a compiled package only when every input
// of its compile is the same, and without -trimpath the package's folder is one of them: a
// package compiled from one student's copy of the workbook, or from another module cache, would
// be a miss for the next student, whose first cell would then compile GoMLX for minutes.
const studentGoFlags = "-mod=mod -trimpath"

// buildTemplate makes CLASS/gocache, the Go build cache every new student's GOCACHE is seeded
// from, and returns its path. A cgo package's compiler flags hold its folder even with
// -trimpath, so the students share one module cache folder (sharedModCache) and the template is
// compiled with exactly their settings (studentEnv): as root, a program importing every package
// of the workbook a notebook can import, in a module set up the way the notebooks' setup cell
// sets up a cell's module (requiring the workbook at v0.0.0, replaced by a checkout). The first
// start takes minutes; later ones find everything compiled. The entries are then made read-only
// (seeding hard-links them into the students' own caches: batch.SeedGoCache).
func buildTemplate(ctx context.Context, dir, repo string, log io.Writer) (string, error) {
	tmpl := filepath.Join(dir, "gocache")
	if err := os.MkdirAll(tmpl, 0o755); err != nil {
		return "", fmt.Errorf("classroom: build cache template: %v", err)
	}
	work, err := os.MkdirTemp(hubDir(dir), "template-")
	if err != nil {
		return "", fmt.Errorf("classroom: build cache template: %v", err)
	}
	defer os.RemoveAll(work)
	env := []string{"HOME=" + work, "GOPATH=" + filepath.Join(work, "go"), "GOCACHE=" + tmpl}
	for k, v := range studentEnv(dir, false) {
		env = append(env, k+"="+v)
	}
	goCmd := func(in string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env = in, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > 2000 {
				msg = "..." + msg[len(msg)-2000:]
			}
			return "", fmt.Errorf("classroom: build cache template: go %s (in %s): %v\n%s", strings.Join(args, " "), in, err, msg)
		}
		return string(out), nil
	}

	module, err := goCmd(repo, "list", "-m")
	if err != nil {
		return "", err
	}
	module = strings.TrimSpace(module)
	list, err := goCmd(repo, "list", "-f", `{{if and .GoFiles (ne .Name "main")}}{{.ImportPath}}{{end}}`, "./...")
	if err != nil {
		return "", err
	}
	var src strings.Builder
	src.WriteString("// The packages a notebook cell can import, compiled once for every student.\npackage main\n\nimport (\n")
	n := 0
	for _, p := range strings.Fields(list) {
		if strings.Contains(p+"/", "/internal/") {
			continue // not importable from a cell's module
		}
		fmt.Fprintf(&src, "\t_ %q\n", p)
		n++
	}
	src.WriteString(")\n\nfunc main() {}\n")
	if _, err := goCmd(work, "mod", "init", "workbook.template"); err != nil {
		return "", err
	}
	if _, err := goCmd(work, "mod", "edit", "-replace="+module+"="+repo, "-require="+module+"@v0.0.0"); err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		return "", fmt.Errorf("classroom: build cache template: %v", err)
	}
	if err := os.WriteFile(filepath.Join(work, "go.sum"), sum, 0o644); err != nil {
		return "", fmt.Errorf("classroom: build cache template: %v", err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.go"), []byte(src.String()), 0o644); err != nil {
		return "", fmt.Errorf("classroom: build cache template: %v", err)
	}
	fmt.Fprintf(log, "classroom: compiling the %d packages notebooks import into %s with the students' build settings (minutes the first time)\n", n, tmpl)
	t0 := time.Now()
	if _, err := goCmd(work, "build", "-o", filepath.Join(work, "template"), "."); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "classroom: build cache template ready in %s\n", time.Since(t0).Round(time.Second))
	err = filepath.WalkDir(tmpl, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil || !d.Type().IsRegular() || filepath.Dir(p) == tmpl {
			return werr // go rewrites the top-level files in place; seeding copies them
		}
		return os.Chmod(p, 0o444)
	})
	if err != nil {
		return "", fmt.Errorf("classroom: build cache template: %v", err)
	}
	return tmpl, nil
}

// seedStudentGoCache gives a student without a build cache (~/.cache/go-build) one seeded from
// the template, so that their first cell does not compile GoMLX. The home is the student's: a
// ~/.cache they replaced by a link (or a file) must not lead root to create, link or chown
// anything elsewhere, so that student's cache is left unseeded and the log says so.
func seedStudentGoCache(tmpl string, a *account, log io.Writer) error {
	cacheDir := filepath.Join(a.Home, ".cache")
	gocache := filepath.Join(cacheDir, "go-build")
	if _, err := os.Lstat(gocache); !os.IsNotExist(err) {
		return nil
	}
	if _, err := os.Stat(tmpl); err != nil {
		fmt.Fprintf(log, "classroom: no Go build cache template at %s: %s's first cell compiles GoMLX (minutes)\n", tmpl, a.Name)
		return nil
	}
	if err := os.Mkdir(cacheDir, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("classroom: %v", err)
	}
	if fi, err := os.Lstat(cacheDir); err != nil || !fi.IsDir() {
		fmt.Fprintf(log, "classroom: %s is not a folder: %s's build cache is not seeded, so their first cell compiles GoMLX (minutes)\n", cacheDir, a.Name)
		return nil
	}
	if err := os.Lchown(cacheDir, a.UID, a.GID); err != nil {
		return fmt.Errorf("classroom: %v", err)
	}
	_, err := batch.SeedGoCache(tmpl, gocache, a.UID, a.GID)
	return err
}
