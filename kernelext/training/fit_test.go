package training

import (
	"bytes"
	"errors"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// fixedBatches yields the given batches in a loop.
type fixedBatches struct {
	x, y []*kernelext.Array
	i    int
}

func (f *fixedBatches) Next() (*kernelext.Array, *kernelext.Array, error) {
	k := f.i % len(f.x)
	f.i++
	return f.x[k], f.y[k], nil
}

func (f *fixedBatches) Len() int { return len(f.x) }

func split(x *kernelext.Array, y []float32, sizes ...int) *fixedBatches {
	f := &fixedBatches{}
	dim := x.Size() / x.Shape[0]
	start := 0
	for _, n := range sizes {
		f.x = append(f.x, &kernelext.Array{Shape: []int{n, dim}, Data: x.Data[start*dim : (start+n)*dim]})
		f.y = append(f.y, &kernelext.Array{Shape: []int{n}, Data: y[start : start+n]})
		start += n
	}
	return f
}

// TestFitLogAndValidation runs Fit end to end: the log has Keras' lines, val_loss is the last
// validation batch's loss by default (Keras 2.3) or the weighted mean with ValLossMean, and
// val_accuracy counts every validation sample.
func TestFitLogAndValidation(t *testing.T) {
	b := testBackend(t)
	x, y := separable(96, 8, 31)
	for _, mode := range []ValLossMode{ValLossLastBatch, ValLossMean} {
		ctx := context.New()
		ctx.SetParam(context.ParamInitialSeed, int64(2))
		m := MustNewModel(b, ctx, "sequential_1", Dense("dense_1", 1, "sigmoid"))
		m.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
		train := split(x, y, 32, 32)
		valX := &kernelext.Array{Shape: []int{32, 8}, Data: x.Data[64*8:]}
		val := split(valX, y[64:], 20, 12)
		var out bytes.Buffer
		hist, err := m.Fit(train, FitOptions{Epochs: 2, ValidationData: val, ValLoss: mode, Out: &out, Display: DisplayLines})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out.String(), "\n")
		re := regexp.MustCompile(`^2/2 \[==============================\] - \d+s \d+(us|ms|s)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}$`)
		if lines[0] != "Epoch 1/2" || lines[1] != "" || !strings.HasPrefix(lines[2], "1/2 [==============>...............] - ETA: ") ||
			!re.MatchString(lines[3]) || lines[4] != "Epoch 2/2" {
			t.Errorf("log:\n%s", out.String())
		}
		// Evaluate the last validation batches directly after training.
		r0, err := m.TestOnBatch(val.x[0], val.y[0])
		if err != nil {
			t.Fatal(err)
		}
		r1, _ := m.TestOnBatch(val.x[1], val.y[1])
		wantLoss := float64(r1.Loss)
		if mode == ValLossMean {
			wantLoss = (float64(r0.Loss)*20 + float64(r1.Loss)*12) / 32
		}
		if got := hist.Last("val_loss"); math.Abs(got-wantLoss) > 1e-12 {
			t.Errorf("mode %d: val_loss %.9g, want %.9g", mode, got, wantLoss)
		}
		if got, want := hist.Last("val_accuracy"), float64((r0.MetricSums[0]+r1.MetricSums[0])/32); got != want {
			t.Errorf("val_accuracy %.9g, want %.9g", got, want)
		}
		ev, err := m.Evaluate(val, 2, mode)
		if err != nil || ev[0] != hist.Last("val_loss") || ev[1] != hist.Last("val_accuracy") {
			t.Errorf("Evaluate = %v, %v; history %v, %v", ev, err, hist.Last("val_loss"), hist.Last("val_accuracy"))
		}
	}
}

// TestFitCallbacks checks the logs callbacks see and ErrStopTraining.
func TestFitCallbacks(t *testing.T) {
	b := testBackend(t)
	m, _, _ := toyModel(t, b, 4, 8, 3)
	m.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
	x, y := separable(64, 8, 4)
	var batches, epochs int
	hist, err := m.Fit(split(x, y, 32, 32), FitOptions{Epochs: 10, Verbose: Silent, Callbacks: []Callback{{
		OnBatchEnd: func(epoch, batch int, logs map[string]float64) error {
			batches++
			if _, ok := logs["accuracy"]; !ok {
				return errors.New("no accuracy in batch logs")
			}
			return nil
		},
		OnEpochEnd: func(epoch int, logs map[string]float64) error {
			epochs++
			if epoch == 2 {
				return ErrStopTraining
			}
			return nil
		},
	}}})
	if err != nil || epochs != 3 || batches != 6 || len(hist.Epoch) != 3 {
		t.Errorf("err %v, %d epochs, %d batches, history %v", err, epochs, batches, hist.Epoch)
	}
	if _, err := m.Fit(split(x, y, 32, 32), FitOptions{Out: io.Discard, Callbacks: []Callback{{
		OnEpochEnd: func(int, map[string]float64) error { return errors.New("boom") },
	}}}); err == nil || err.Error() != "boom" {
		t.Errorf("callback error not returned: %v", err)
	}
}
