package backend_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// An external test: internal/testenv reaches this package through internal/setup (which
// decides how notebook cells are built from backend.PlanFromEnvironment).

// TestCreateBrokenPluginFails: a plugin file XLA cannot load is an error that names the file
// and the way out, never a silent switch to another backend (and never a download).
func TestCreateBrokenPluginFails(t *testing.T) {
	testenv.NeedFeature(t, "cgo", backend.XLALinked, "a broken XLA plugin file is an error naming it (XLA is linked only with cgo)")
	path := filepath.Join(t.TempDir(), "pjrt_c_api_cpu_plugin.so")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := backend.Create(backend.Plan{Kind: backend.KindXLACPU, Config: "xla:" + path + ",shared_buffers", Plugin: path})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), backend.EnvBackend+"=go") {
		t.Errorf("got err=%v, want an error naming %s and %s=go", err, path, backend.EnvBackend)
	}
}
