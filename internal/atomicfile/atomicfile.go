// Package atomicfile writes files so that a reader sees the old content or the new, never a
// part of either: the data goes to a temporary file in the target's folder, which is synced,
// closed and renamed over the target only when every write succeeded (and removed otherwise).
// It is the one way the workbook writes a file that a crash must not leave half-written:
// checkpoints, cache entries, feature entries, downloaded weights, .npy files, run settings.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is what a write function gets: the temporary file (an *os.File, unless CreateTemp was
// replaced).
type File interface {
	io.Writer
	io.WriterAt
	Sync() error
	Close() error
	Name() string
}

// CreateTemp creates the temporary file; tests replace it to simulate a full disk or a failing
// sync.
var CreateTemp = func(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }

// Write creates or replaces path with what write writes (mode 0644). The temporary file is named
// "."+base+".tmp-*" in path's folder, which must exist. An error names path.
func Write(path string, write func(f File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("write %q: %w", path, err)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // make the rename durable; not every file system supports it
		_ = d.Close()
	}
	return nil
}

// WriteFile is Write of data.
func WriteFile(path string, data []byte) error {
	return Write(path, func(f File) error {
		_, err := f.Write(data)
		return err
	})
}
