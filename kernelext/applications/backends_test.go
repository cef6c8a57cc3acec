package applications

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// TestBackendsAgree runs both models with the same seeded random weights on the workbook's
// backend (XLA where a plugin is installed) and on the pure-Go backend, whose results the
// reference tests tie to PyTorch, and compares them. It is for machines with XLA (set
// WORKBOOK_CROSSCHECK_BACKENDS=1); where the workbook's backend is the pure-Go one it is
// skipped, and the skip is reported (testenv.NeedFeature).
func TestBackendsAgree(t *testing.T) {
	testenv.NeedFeature(t, "xla", os.Getenv("WORKBOOK_CROSSCHECK_BACKENDS") != "",
		"both models on XLA against the pure-Go backend (set WORKBOOK_CROSSCHECK_BACKENDS=1 where an XLA plugin is installed)")
	main, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backend under test: %s", backend.Describe(main))
	testenv.NeedFeature(t, "xla", main.String() != simplego.BackendName,
		"both models on XLA against the pure-Go backend (no XLA plugin here: the workbook's backend is the pure-Go one)")
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

// TestBackendsAgreeTop5 is TestBackendsAgree's check on the classifiers (include_top): the
// workbook's backend (XLA where a plugin is installed) against the pure-Go backend — where
// Predict runs on the workbook's engine — on the same seeded random weights: probabilities
// within 1e-4 and the same top-5 classes (ranks closer than 1e-6 may swap). Set
// WORKBOOK_CROSSCHECK_BACKENDS=1; cmd/workbook/testdata/gpu_check.sh runs it on a CUDA machine.
func TestBackendsAgreeTop5(t *testing.T) {
	testenv.NeedFeature(t, "xla", os.Getenv("WORKBOOK_CROSSCHECK_BACKENDS") != "",
		"both classifiers on XLA against the pure-Go backend (set WORKBOOK_CROSSCHECK_BACKENDS=1 where an XLA plugin is installed)")
	main, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backend under test: %s", backend.Describe(main))
	testenv.NeedFeature(t, "xla", !backend.IsPureGo(main),
		"both classifiers on XLA against the pure-Go backend (no XLA plugin here: the workbook's backend is the pure-Go one)")
	goBackend, err := backends.NewWithConfig("go:" + backend.GoOptions)
	if err != nil {
		t.Fatal(err)
	}
	x := randomImages(4, 224, 224, 12)
	for _, model := range []string{"vgg16", "resnet50"} {
		run := func(b backends.Backend) *kernelext.Array {
			m, err := New(model, WithWeights(""), WithSeed(13), WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			y, err := m.Predict(x)
			if err != nil {
				t.Fatal(err)
			}
			return y
		}
		got, want := run(main), run(goBackend)
		d := maxAbsDiff(got.Data, want.Data)
		t.Logf("%s: max |p_xla − p_engine| = %.3g", model, d)
		if !(d <= 1e-4) {
			t.Errorf("%s: probabilities differ by %.3g > 1e-4", model, d)
		}
		for i := range x.Shape[0] {
			g, w := got.Data[i*1000:(i+1)*1000], want.Data[i*1000:(i+1)*1000]
			tg, tw := top5(g), top5(w)
			t.Logf("%s image %d: top-5 %v (engine %v)", model, i, tg, tw)
			for r := range 5 {
				if tg[r] != tw[r] && math.Abs(float64(w[tg[r]]-w[tw[r]])) > 1e-6 {
					t.Errorf("%s image %d: rank %d is class %d on XLA, %d on the engine", model, i, r+1, tg[r], tw[r])
				}
			}
		}
	}
}
