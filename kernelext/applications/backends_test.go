package applications

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// TestBackendsAgree runs both models with the same seeded random weights on the workbook's
// backend (XLA where a plugin is installed) and on the pure-Go backend, whose results the
// reference tests tie to PyTorch, and compares them. It is for machines with XLA (set
// WORKBOOK_CROSSCHECK_BACKENDS=1); where the workbook's backend is the pure-Go one it is
// skipped.
func TestBackendsAgree(t *testing.T) {
	if os.Getenv("WORKBOOK_CROSSCHECK_BACKENDS") == "" {
		t.Skip("set WORKBOOK_CROSSCHECK_BACKENDS=1 on a machine with an XLA plugin")
	}
	main, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backend under test: %s", backend.Describe(main))
	if main.String() == simplego.BackendName {
		t.Skip("no XLA plugin here: the workbook's backend is the pure-Go one")
	}
	goBackend, err := backends.NewWithConfig("go:" + backend.GoOptions)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	x := kernelext.NewArray(n, 224, 224, 3)
	for i := range x.Data {
		x.Data[i] = float32((i*7919)%255) - 120
	}
	for _, model := range []string{"vgg16", "resnet50"} {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			run := func(b backends.Backend) (*kernelext.Array, time.Duration) {
				m, err := New(model, WithWeights(""), WithSeed(11), IncludeTop(false), WithBackend(b), WithDType(dt))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.Predict(x); err != nil { // compile
					t.Fatal(err)
				}
				start := time.Now()
				y, err := m.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				return y, time.Since(start)
			}
			got, tMain := run(main)
			want, tGo := run(goBackend)
			scale := 0.0
			for _, v := range want.Data {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
			rel := maxAbsDiff(got.Data, want.Data) / scale
			t.Logf("%s %s notop features, %d images: max rel diff %.3g; %.3fs vs pure-Go %.3fs",
				model, dt, n, rel, tMain.Seconds(), tGo.Seconds())
			tol := 1e-4
			if dt == dtypes.Float64 {
				tol = 1e-10
			}
			if !(rel <= tol) {
				t.Errorf("%s %s: backends differ by %.3g (relative) > %g", model, dt, rel, tol)
			}
		}
	}
}
