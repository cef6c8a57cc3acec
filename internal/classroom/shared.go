package classroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/transfer-learning-go/workbook/internal/grade/batch"
	"github.com/transfer-learning-go/workbook/internal/setup"
)

// prepareShared fills CLASS/shared with what every student reads and nobody but the instructor
// writes: the Go tools and GoNB (the instructor's are under /root, mode 0700), the gonb
// kernelspec pointing at them, the instructor's module cache (one folder for all students, so
// that compiled packages are the same for all: see buildTemplate; its download cache doubles as
// the offline module proxy) and the weights.
func prepareShared(ctx context.Context, dir, weights string) error {
	sh := sharedDir(dir)
	g, err := setup.ReadGoEnv(ctx)
	if err != nil {
		return err
	}
	bin := filepath.Join(sh, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("classroom: %v", err)
	}
	for _, tool := range []string{"gonb", "goimports", "gopls"} {
		if err := batch.CopyFile(filepath.Join(g.BinDir(), tool), filepath.Join(bin, tool), 0o755); err != nil {
			return fmt.Errorf("classroom: %s (run 'workbook setup' first): %v", tool, err)
		}
	}
	spec, err := setup.FindKernelSpec(ctx, os.Environ())
	if err != nil {
		return fmt.Errorf("classroom: the gonb kernel (run 'workbook setup' first): %v", err)
	}
	kdir := filepath.Join(sh, "jupyter", "kernels", setup.KernelName)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return fmt.Errorf("classroom: %v", err)
	}
	if err := linkTree(spec.ResourceDir, kdir); err != nil {
		return err
	}
	if err := writeKernelJSON(filepath.Join(spec.ResourceDir, "kernel.json"), filepath.Join(kdir, "kernel.json"), filepath.Join(bin, "gonb")); err != nil {
		return err
	}
	modcache := filepath.Join(filepath.SplitList(g.GOPATH)[0], "pkg", "mod")
	if v := os.Getenv("GOMODCACHE"); v != "" {
		modcache = v
	}
	if err := linkTree(modcache, sharedModCache(dir)); err != nil {
		return fmt.Errorf("%v (the module cache must hold the workbook's modules: run 'go mod download' in the checkout)", err)
	}
	if weights != "" {
		if err := linkTree(weights, filepath.Join(sh, "weights")); err != nil {
			return err
		}
	}
	return nil
}

// writeKernelJSON copies a kernel.json with its program replaced by the class's copy of gonb.
func writeKernelJSON(src, dst, gonb string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("classroom: kernelspec: %v", err)
	}
	var k map[string]any
	if err := json.Unmarshal(b, &k); err != nil {
		return fmt.Errorf("classroom: kernelspec %s: %v", src, err)
	}
	argv, _ := k["argv"].([]any)
	if len(argv) == 0 {
		return fmt.Errorf("classroom: kernelspec %s has no argv", src)
	}
	argv[0] = gonb
	out, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	os.Remove(dst) // a hard link to the instructor's file, from linkTree
	return os.WriteFile(dst, out, 0o644)
}

// linkTree mirrors src into dst with folders 0755 and files hard-linked when they are already
// readable by everyone and on the same file system, copied (0644) otherwise. Files already in
// dst are kept.
func linkTree(src, dst string) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o004 != 0 {
			err := os.Link(p, target)
			if err == nil {
				return nil
			}
			if !errors.Is(err, syscall.EXDEV) {
				return err
			}
		}
		return batch.CopyFile(p, target, 0o644)
	})
	if err != nil {
		return fmt.Errorf("classroom: share %s as %s: %v", src, dst, err)
	}
	return nil
}
