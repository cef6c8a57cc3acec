package datasets

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// whiteListFormats are the suffixes Keras accepts, compared against the lowercased file name
// without requiring a dot (keras-preprocessing 1.1.0 `fname.lower().endswith(formats)`), so
// "photo.JPG" counts and so would a file named "notajpg".
var whiteListFormats = []string{"png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff"}

func isImageName(name string) bool {
	l := strings.ToLower(name)
	for _, ext := range whiteListFormats {
		if strings.HasSuffix(l, ext) {
			return true
		}
	}
	return false
}

// isDirFollow reports whether path is a directory, following symbolic links as Python's
// os.path.isdir and DirEntry.is_dir do (a broken link is not a directory).
func isDirFollow(path string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// discoverClasses lists the class folders of dir as Keras does: every entry of
// sorted(os.listdir(dir)) that is a directory (links followed), hidden ones such as
// .ipynb_checkpoints included. Sorting is by code point, so "Zebra" comes before "apple".
func discoverClasses(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("datasets: list classes in %q: %w", dir, err)
	}
	var classes []string
	for _, e := range entries {
		if isDirFollow(filepath.Join(dir, e.Name()), e) {
			classes = append(classes, e.Name())
		}
	}
	slices.Sort(classes) // os.ReadDir sorts already; Keras sorts; keep the intent explicit.
	return classes, nil
}

// listClassFiles returns the image files of one class folder, relative to it, in Keras' order:
// os.walk(classDir) with the (root, files) tuples sorted by root path string, files sorted by
// name inside each root. Symbolic links to directories are not descended unless followLinks
// (os.walk's followlinks); links to files count as files.
//
// Keras' os.walk silently skips folders it cannot read; here that is an error, because
// skipping them would silently shrink the data set.
func listClassFiles(classDir string, followLinks bool) ([]string, error) {
	type rootFiles struct {
		root  string // path as os.walk builds it: os.path.join(top, name, ...)
		rel   string // the same relative to classDir ("" for classDir itself)
		files []string
	}
	var roots []rootFiles
	var walk func(root, rel string, depth int) error
	walk = func(root, rel string, depth int) error {
		if depth > 256 {
			return fmt.Errorf("datasets: list images under %q: folders nested deeper than 256 levels (a link cycle?)", classDir)
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			return fmt.Errorf("datasets: list images in %q: %w", root, err)
		}
		rf := rootFiles{root: root, rel: rel}
		var subdirs []fs.DirEntry
		for _, e := range entries {
			p := root + string(filepath.Separator) + e.Name()
			if isDirFollow(p, e) {
				subdirs = append(subdirs, e)
			} else {
				rf.files = append(rf.files, e.Name())
			}
		}
		roots = append(roots, rf)
		for _, d := range subdirs {
			if d.Type()&fs.ModeSymlink != 0 && !followLinks {
				continue
			}
			sub := root + string(filepath.Separator) + d.Name()
			subRel := d.Name()
			if rel != "" {
				subRel = rel + string(filepath.Separator) + d.Name()
			}
			if err := walk(sub, subRel, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(classDir, "", 0); err != nil {
		return nil, err
	}
	// Sorting the full root strings (not a depth-first order): "c/a b" sorts before "c/a/x"
	// because ' ' < '/'.
	slices.SortStableFunc(roots, func(a, b rootFiles) int { return strings.Compare(a.root, b.root) })
	var out []string
	for _, r := range roots {
		slices.Sort(r.files)
		for _, f := range r.files {
			if !isImageName(f) {
				continue
			}
			if r.rel == "" {
				out = append(out, f)
			} else {
				out = append(out, r.rel+string(filepath.Separator)+f)
			}
		}
	}
	return out, nil
}

// CheckSameClasses returns an error naming the differences when two iterators (typically the
// training and the validation folder) do not map the same class names to the same indices —
// e.g. a stray .ipynb_checkpoints folder in one of them, which Keras silently counts as a
// class and which would shift every label after it.
func CheckSameClasses(train, val *DirectoryIterator) error {
	a, b := train.ClassNames(), val.ClassNames()
	if slices.Equal(a, b) {
		return nil
	}
	inA := map[string]bool{}
	for _, c := range a {
		inA[c] = true
	}
	inB := map[string]bool{}
	for _, c := range b {
		inB[c] = true
	}
	var onlyA, onlyB []string
	for _, c := range a {
		if !inB[c] {
			onlyA = append(onlyA, c)
		}
	}
	for _, c := range b {
		if !inA[c] {
			onlyB = append(onlyB, c)
		}
	}
	msg := fmt.Sprintf("datasets: classes differ between %q %v and %q %v", train.Directory(), a, val.Directory(), b)
	if len(onlyA) > 0 {
		msg += fmt.Sprintf("; only in the first: %q", onlyA)
	}
	if len(onlyB) > 0 {
		msg += fmt.Sprintf("; only in the second: %q", onlyB)
	}
	if len(onlyA) == 0 && len(onlyB) == 0 {
		msg += "; same names, different indices"
	}
	return fmt.Errorf("%s", msg)
}
