package hdf5

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzOpen feeds mutated h5py files to the reader: whatever the bytes, opening and walking the
// file must end in a result or an "hdf5: <file>: ..." error, never a panic, hang or huge
// allocation. Run it with (short minimization keeps the run fuzzing rather than shrinking):
// go test -run '^$' -fuzz FuzzOpen -fuzztime 30s -fuzzminimizetime 2s ./weights/internal/hdf5/
func FuzzOpen(f *testing.F) {
	// Each fuzz worker process runs this, so write only the two small seed files (fast).
	if err := exec.Command(python, "-c", "import h5py, numpy").Run(); err != nil {
		f.Skip("h5py not available: " + err.Error())
	}
	// Not f.TempDir: fuzz workers are killed at the end of a run, before cleanups run, so the
	// directory is removed as soon as the seeds are in memory.
	dir, err := os.MkdirTemp("", "hdf5-fuzz-seeds-")
	if err != nil {
		f.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/make_files.py", dir, "--fuzz-seeds").CombinedOutput()
	var seeds [][]byte
	for _, name := range []string{"tiny.h5", "tiny_latest.h5"} {
		if err != nil {
			break
		}
		var b []byte
		b, err = os.ReadFile(filepath.Join(dir, name))
		seeds = append(seeds, b)
	}
	os.RemoveAll(dir)
	if err != nil {
		f.Fatalf("make_files.py: %v\n%s", err, out)
	}
	for _, b := range seeds {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(signature)
	f.Fuzz(func(t *testing.T, data []byte) {
		err := walkAll(data, "fuzz.h5")
		if err != nil && !strings.HasPrefix(err.Error(), "hdf5: fuzz.h5: ") {
			t.Fatalf("error without the 'hdf5: fuzz.h5: ' prefix: %v", err)
		}
	})
}
