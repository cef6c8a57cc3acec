package kernelext

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// runPython runs script under the oracle Python (NumPy, Pillow and the real Keras image
// libraries; tests call testenv.Python first) with args and returns its standard output.
func runPython(t testing.TB, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.PythonPath, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle python failed: %v\n%s", err, stderr.String())
	}
	return string(out)
}
