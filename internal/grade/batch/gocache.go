package batch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Go build cache handling.
//
// A cold build of a GoMLX notebook cell takes minutes; with a warm cache, about a second plus
// the link. But a build cache shared by all submissions could be poisoned: go trusts an entry
// found under an action ID, so a student able to write into the shared cache could plant a
// compiled package that every later submission links. So each submission gets its own
// GOCACHE, seeded from a template cache that only the grader writes:
//
//   - the template's files belong to root and are read-only (0444); the submission's copy holds
//     hard links to them in directories the submission owns. A student can replace a link in its
//     own directory (affecting only its own builds) but cannot open the shared inode for writing,
//     nor change its mode, owner or times;
//   - new entries a student's build adds stay in its own directory and are deleted with it;
//   - the template grows only from the grader's own warm-up notebook (trusted code, see
//     warmup), whose new entries are merged back by the grader as root.
//
// Hard links need the template and the work folder on one file system; otherwise the files are
// copied (slower, same isolation) and the batch log says so.

// cacheTopFiles are the files go keeps at the top of GOCACHE and rewrites in place: each
// submission gets its own copy.
var cacheTopFiles = map[string]bool{"README": true, "trim.txt": true, "testexpire.txt": true}

// seedCache makes dst a private GOCACHE for uid:gid holding the template's entries. It returns
// whether files had to be copied instead of linked.
func seedCache(template, dst string, uid, gid int) (copied bool, err error) {
	err = filepath.WalkDir(template, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		rel, _ := filepath.Rel(template, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Lchown(target, uid, gid)
		case !d.Type().IsRegular() || strings.HasSuffix(d.Name(), mergeSuffix):
			return nil
		case rel == d.Name() && cacheTopFiles[d.Name()]:
			if err := CopyFile(p, target, 0o644); err != nil {
				return err
			}
			return os.Lchown(target, uid, gid)
		}
		if err := repairMode(p, rel, d); err != nil {
			return err
		}
		if err := os.Link(p, target); err != nil {
			if !errors.Is(err, syscall.EXDEV) {
				return err
			}
			copied = true
			// A copy owned by root and read-only behaves like the link.
			return CopyFile(p, target, cacheFileMode(rel, d))
		}
		return nil
	})
	if err != nil {
		return copied, fmt.Errorf("grade: seed build cache %s from %s: %v", dst, template, err)
	}
	return copied, nil
}

// mergeCache moves the entries of a trusted run's cache (src) that the template lacks into the
// template, owned by root and read-only, so later submissions find them.
func mergeCache(src, template string) (added int, err error) {
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(template, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() || (rel == d.Name() && cacheTopFiles[d.Name()]) {
			return nil
		}
		mode := cacheFileMode(rel, d)
		if st, err := os.Lstat(target); err == nil && st.Mode().Perm() == mode {
			return nil
		}
		// A unique temporary name: another grader may be merging the same entry right now.
		f, err := os.CreateTemp(filepath.Dir(target), ".merge-*"+mergeSuffix)
		if err != nil {
			return err
		}
		tmp := f.Name()
		f.Close()
		if err := CopyFile(p, tmp, mode); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Rename(tmp, target); err != nil {
			os.Remove(tmp)
			return err
		}
		added++
		return nil
	})
	if err != nil {
		return added, fmt.Errorf("grade: merge build cache %s into %s: %v", src, template, err)
	}
	return added, nil
}

// cacheFileMode is the mode of a template entry: read-only for everyone, and executable for the
// programs go run keeps in the cache (a notebook's setup cell runs one), which go execs from
// there. They are the files inside an entry's folder (xx/HASH-d/NAME), or any file built with
// its execute bit.
func cacheFileMode(rel string, d fs.DirEntry) os.FileMode {
	if strings.Count(rel, string(filepath.Separator)) >= 2 {
		return 0o555
	}
	if info, err := d.Info(); err == nil && info.Mode().Perm()&0o111 != 0 {
		return 0o555
	}
	return 0o444
}

// repairMode gives a template entry the mode cacheFileMode wants: a program merged read-only
// without its execute bit by an older grader could not be run by any submission.
func repairMode(p, rel string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	if want := cacheFileMode(rel, d); want == 0o555 && info.Mode().Perm() != want {
		return os.Chmod(p, want)
	}
	return nil
}

// ensureTemplate creates the template folder (root-owned, world-readable: it holds only compiled
// code of the packages the notebooks import).
func ensureTemplate(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("grade: build cache template %s: %v", dir, err)
	}
	return nil
}

// CopyFile copies src to dst with the given mode, through a temporary file renamed into place,
// so that a reader (or a program running dst) never sees a half-written file. The classroom uses
// it too.
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	// O_EXCL: never through a link someone planted under the temporary name.
	tmp := dst + ".tmp"
	os.Remove(tmp)
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// mergeSuffix marks a template entry being written by mergeCache.
const mergeSuffix = ".merging"

// SeedGoCache gives uid:gid a private GOCACHE at dst holding template's entries as read-only hard
// links (seedCache); the classroom seeds each student's cache the same way as each submission's.
func SeedGoCache(template, dst string, uid, gid int) (copied bool, err error) {
	return seedCache(template, dst, uid, gid)
}
