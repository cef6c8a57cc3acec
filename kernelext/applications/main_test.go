package applications

import (
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// testBackend is the workbook's backend: the pure-Go one unless GOMLX_BACKEND or an installed
// XLA plugin says otherwise.
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
