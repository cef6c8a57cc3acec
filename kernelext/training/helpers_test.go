package training

import (
	"encoding/json"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// testBackend is the workbook's backend (GOMLX_BACKEND=go selects the pure-Go one).
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden is testdata/golden.json, written by testdata/keras_oracle.py (NumPy, from Keras 2.3.1's
// formulas).
type golden struct {
	Optimizers []struct {
		Name       string         `json:"name"`
		Kind       string         `json:"kind"`
		Args       map[string]any `json:"args"`
		P0         []float32      `json:"p0"`
		C          []float32      `json:"c"`
		Steps      int            `json:"steps"`
		Trajectory [][]float32    `json:"trajectory"`
	} `json:"optimizers"`
	Losses struct {
		Z                 []float32 `json:"z"`
		Y                 []float32 `json:"y"`
		P                 []float32 `json:"p"`
		PY                []float32 `json:"py"`
		BCELogits         []float32 `json:"bce_logits"`
		BCEClippedSigmoid []float32 `json:"bce_clipped_sigmoid"`
		BCEClippedP       []float32 `json:"bce_clipped_p"`
		AccuracyP         []float32 `json:"accuracy_p"`
		RoundIn           []float32 `json:"round_in"`
		RoundOut          []float32 `json:"round_out"`
	} `json:"losses"`
	Logs []struct {
		Name      string   `json:"name"`
		Epochs    int      `json:"epochs"`
		Steps     int      `json:"steps"`
		Verbose   int      `json:"verbose"`
		Dynamic   bool     `json:"dynamic"`
		ClockStep float64  `json:"clock_step"`
		Metrics   []string `json:"metrics"`
		Batches   [][]struct {
			Size int       `json:"size"`
			Loss float32   `json:"loss"`
			Sums []float32 `json:"sums"`
		} `json:"batches"`
		Val     [][]float64          `json:"val"`
		Text    string               `json:"text"`
		History map[string][]float64 `json:"history"`
	} `json:"logs"`
}

var (
	goldenOnce sync.Once
	goldenData golden
	goldenErr  error
)

func loadGolden(t testing.TB) *golden {
	t.Helper()
	goldenOnce.Do(func() {
		b, err := os.ReadFile("testdata/golden.json")
		if err != nil {
			goldenErr = err
			return
		}
		goldenErr = json.Unmarshal(b, &goldenData)
	})
	if goldenErr != nil {
		t.Fatalf("golden data (regenerate with /usr/bin/python3 testdata/keras_oracle.py > testdata/golden.json): %v", goldenErr)
	}
	return &goldenData
}

// values returns a copy of a variable's float32 values.
func values(t testing.TB, ctx *context.Context, scope, name string) []float32 {
	t.Helper()
	v := ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		t.Fatalf("variable %s/%s missing", scope, name)
	}
	out, err := tensors.CopyFlatData[float32](v.MustValue())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// ulpDiff is the distance between two float32 values in units in the last place.
func ulpDiff(a, b float32) int64 {
	ia, ib := int64(int32(math.Float32bits(a))), int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}
