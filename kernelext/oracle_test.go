package kernelext

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// pythonOracle is the system Python that carries the reference implementations (NumPy, Pillow and
// the real Keras image libraries).
const pythonOracle = "/usr/bin/python3"

// requirePython skips the test unless the oracle Python can import the given modules.
func requirePython(t testing.TB, modules ...string) {
	t.Helper()
	if _, err := os.Stat(pythonOracle); err != nil {
		testenv.SkipMissing(t, "oracle %s not installed", pythonOracle)
	}
	for _, m := range modules {
		if err := exec.Command(pythonOracle, "-c", "import "+m).Run(); err != nil {
			testenv.SkipMissing(t, "oracle module %s not importable by %s (Debian: python3-numpy, python3-pil, "+
				"python3-keras-applications, python3-keras-preprocessing, python3-ipython)", m, pythonOracle)
		}
	}
}

// runPython runs script under the oracle Python with args and returns its standard output.
func runPython(t testing.TB, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(pythonOracle, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle python failed: %v\n%s", err, stderr.String())
	}
	return string(out)
}
