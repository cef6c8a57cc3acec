package training

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// Generator yields batches forever, as the Python generators and keras.utils.Sequence objects
// fit_generator consumes do: x (batch, …) float32 and the labels y (batch,). A generator that
// also has a Len() int method (batches per pass, Keras' len(generator)) lets Fit default
// StepsPerEpoch and ValidationSteps to it.
type Generator interface {
	Next() (x, y *kernelext.Array, err error)
}

// Lener is implemented by generators that know how many batches make one pass.
type Lener interface{ Len() int }

// ValLossMode chooses what "val_loss" reports.
type ValLossMode int

const (
	// ValLossLastBatch is Keras 2.3.0/2.3.1: evaluate_generator returns the loss of the last
	// validation batch only (it returns outs_per_batch[-1][0], a bug), while validation
	// metrics are over all validation batches. The default, for fidelity with the book's runs;
	// it makes val_loss noisy.
	ValLossLastBatch ValLossMode = iota
	// ValLossMean is the batch-size-weighted mean loss over all validation batches, as Keras
	// ≤ 2.2.5 and tf.keras report it.
	ValLossMean
)

// ErrStopTraining, returned by a callback, ends Fit after the current epoch (or batch) without
// an error — Keras' model.stop_training = True.
var ErrStopTraining = errors.New("training: stop training")

// Callback hooks into Fit, as Keras callbacks do. logs hold what Keras passes: per batch
// "loss" (the batch's) and the metrics (running over the epoch); per epoch the History values.
// Either function may be nil.
type Callback struct {
	OnBatchEnd func(epoch, batch int, logs map[string]float64) error
	OnEpochEnd func(epoch int, logs map[string]float64) error
}

// FitOptions are fit_generator's arguments plus the Go-side choices. The zero value means
// Keras' defaults where Keras has one.
type FitOptions struct {
	// Epochs is the index of the last epoch to run (Keras epochs); 0 means 1.
	Epochs int
	// InitialEpoch is the epoch to start at (Keras initial_epoch): with InitialEpoch 10 and
	// Epochs 20, epochs 11 to 20 run and print "Epoch 11/20" … "Epoch 20/20".
	InitialEpoch int
	// StepsPerEpoch is the number of training batches per epoch; 0 means the generator's Len().
	StepsPerEpoch int
	// ValidationData, if set, is evaluated after each epoch's last step.
	ValidationData Generator
	// ValidationSteps is the number of validation batches per evaluation; 0 means Len().
	// Across epochs the validation generator continues where it stopped, as Keras' enqueuer
	// does.
	ValidationSteps int
	// ValLoss chooses what val_loss reports (default: Keras 2.3's last-batch loss).
	ValLoss ValLossMode

	// Verbose is Keras' verbose (default: the progress bar).
	Verbose Verbosity
	// Display chooses in-place redraws or one line per update (default: in place on a
	// terminal or in a notebook).
	Display Display
	// LineEvery, when lines are written (not redrawn in place), writes an intermediate update
	// only every LineEvery steps; the epoch's final line is always written. 0 or 1 writes every
	// update, as Keras does — 100 lines per epoch for the book's run, hence the option.
	LineEvery int
	// Out receives the log; nil means os.Stdout.
	Out io.Writer

	// Callbacks run after the built-in logging, in order.
	Callbacks []Callback

	// Checkpoint, if set, is a file Fit saves the model, the optimizer state and the history to
	// after every epoch (see Model.Save; the write is atomic).
	Checkpoint string
	// Resume continues from Checkpoint when that file exists: weights, optimizer state (the
	// model must be compiled with the same optimizer), history and epoch counter are restored,
	// and training goes on with the epoch after the saved one. The data generators are not
	// part of the checkpoint: the resumed run draws fresh batches.
	Resume bool

	// now is the clock (tests replace it).
	now func() time.Time
}

// Fit is Keras 2.3's fit_generator: for each epoch, StepsPerEpoch training steps on batches
// from train, then — if ValidationData is set — ValidationSteps evaluation steps, with the log
// Keras prints and the History it returns. See FitOptions, and the package documentation for
// the exact accounting of the logged values.
func (m *Model) Fit(train Generator, opts FitOptions) (*History, error) {
	if !m.compiled {
		return nil, errors.New("training: the model must be compiled before Fit (call Compile)")
	}
	if train == nil {
		return nil, errors.New("training: Fit: nil training generator")
	}
	epochs := opts.Epochs
	if epochs == 0 {
		epochs = 1
	}
	steps, err := stepsOf("StepsPerEpoch", opts.StepsPerEpoch, train)
	if err != nil {
		return nil, err
	}
	valSteps := 0
	if opts.ValidationData != nil {
		if valSteps, err = stepsOf("ValidationSteps", opts.ValidationSteps, opts.ValidationData); err != nil {
			return nil, err
		}
	}
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	now := opts.now
	if now == nil {
		now = time.Now
	}
	if opts.Resume && opts.Checkpoint == "" {
		return nil, errors.New("training: Fit: Resume needs a Checkpoint path")
	}

	hist := &History{}
	initial := opts.InitialEpoch
	if opts.Resume {
		st, err := m.resumeFrom(opts.Checkpoint)
		if err != nil {
			return nil, err
		}
		if st != nil {
			initial = st.EpochsDone
			if st.History != nil {
				hist = st.History
			}
			if opts.Verbose != Silent {
				fmt.Fprintf(out, "Resuming from %s after epoch %d/%d.\n", opts.Checkpoint, initial, epochs)
			}
		}
	}

	names := m.MetricNames()
	logNames := append([]string(nil), names...)
	if opts.ValidationData != nil {
		for _, n := range names {
			logNames = append(logNames, "val_"+n)
		}
	}
	dynamic := isDynamic(opts.Display, out)

	for epoch := initial; epoch < epochs; epoch++ {
		lg := newEpochLogger(out, epoch, epochs, steps, names, opts.Verbose, dynamic, opts.LineEvery, now)
		stop := false
		for step := 0; step < steps && !stop; step++ {
			x, y, err := train.Next()
			if err != nil {
				return hist, fmt.Errorf("training: epoch %d, step %d: %w", epoch+1, step+1, err)
			}
			r, err := m.TrainOnBatch(x, y)
			if err != nil {
				return hist, fmt.Errorf("training: epoch %d, step %d: %w", epoch+1, step+1, err)
			}
			batchLogs := lg.batchEnd(r)
			for _, cb := range opts.Callbacks {
				if cb.OnBatchEnd == nil {
					continue
				}
				if err := cb.OnBatchEnd(epoch, step, batchLogs); errors.Is(err, ErrStopTraining) {
					stop = true
				} else if err != nil {
					return hist, err
				}
			}
		}
		if lg.seen == 0 {
			break
		}
		var val []float64
		if opts.ValidationData != nil && !stop {
			if val, err = m.evaluate(opts.ValidationData, valSteps, opts.ValLoss); err != nil {
				return hist, fmt.Errorf("training: epoch %d, validation: %w", epoch+1, err)
			}
		}
		epochLogs := lg.epochEnd(val)
		hist.append(epoch, logNames, epochLogs)
		for _, cb := range opts.Callbacks {
			if cb.OnEpochEnd == nil {
				continue
			}
			if err := cb.OnEpochEnd(epoch, epochLogs); errors.Is(err, ErrStopTraining) {
				stop = true
			} else if err != nil {
				return hist, err
			}
		}
		if opts.Checkpoint != "" {
			if err := m.save(opts.Checkpoint, &trainingState{EpochsDone: epoch + 1, History: hist}); err != nil {
				return hist, err
			}
		}
		if stop {
			break
		}
	}
	return hist, nil
}

// MustFit is Fit for notebook cells: it panics on error.
func (m *Model) MustFit(train Generator, opts FitOptions) *History {
	h, err := m.Fit(train, opts)
	if err != nil {
		panic(err)
	}
	return h
}

// Evaluate is Keras 2.3's evaluate_generator: loss and metrics over steps batches of gen
// (0 means Len()), in inference mode; the loss per mode (ValLossLastBatch is Keras 2.3's).
// The values come in MetricNames order.
func (m *Model) Evaluate(gen Generator, steps int, mode ValLossMode) ([]float64, error) {
	if !m.compiled {
		return nil, errors.New("training: the model must be compiled before Evaluate (call Compile)")
	}
	steps, err := stepsOf("steps", steps, gen)
	if err != nil {
		return nil, err
	}
	return m.evaluate(gen, steps, mode)
}

func (m *Model) evaluate(gen Generator, steps int, mode ValLossMode) ([]float64, error) {
	var last float32
	var weighted float64
	totals := make([]float32, len(m.metrics))
	count := 0
	for s := 0; s < steps; s++ {
		x, y, err := gen.Next()
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", s+1, err)
		}
		r, err := m.TestOnBatch(x, y)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", s+1, err)
		}
		last = r.Loss
		weighted += float64(r.Loss) * float64(r.Size)
		count += r.Size
		for i := range totals {
			totals[i] += r.MetricSums[i]
		}
	}
	out := make([]float64, 1+len(m.metrics))
	if mode == ValLossMean {
		out[0] = weighted / float64(count)
	} else {
		out[0] = float64(last)
	}
	for i := range totals {
		out[1+i] = float64(totals[i] / float32(count))
	}
	return out, nil
}

func stepsOf(what string, steps int, gen Generator) (int, error) {
	if steps < 0 {
		return 0, fmt.Errorf("training: %s %d: want > 0", what, steps)
	}
	if steps > 0 {
		return steps, nil
	}
	if l, ok := gen.(Lener); ok && l.Len() > 0 {
		return l.Len(), nil
	}
	return 0, fmt.Errorf("training: %s not set and the generator has no Len()", what)
}

// epochLogger does, for one epoch, what Keras 2.3's BaseLogger, ProgbarLogger (steps mode) and
// the stateful metrics do with each batch's results: it prints "Epoch e/E" and the progress bar
// and computes the batch and epoch logs.
//
//   - batch logs: "loss" is the batch's loss; each metric is its running value over the epoch,
//     total/count in float32 (MeanMetricWrapper).
//   - epoch logs: "loss" is Σ loss_i·size_i / Σ size_i (BaseLogger; float64, as NumPy promotes
//     float32 × int); metrics are their last running value; "val_*" come from evaluate.
//   - the bar shows, at step k < steps, the mean of the batch losses so far and the running
//     metrics; on the final line, "loss" averages the batch losses and the epoch loss, each with
//     weight 1 — (Σ loss_i + epoch loss)/(steps + 1) — because ProgbarLogger appends the epoch
//     logs to the last batch's values before its last update.
type epochLogger struct {
	names     []string
	bar       *progbar
	lossTotal float64
	seen      int
	totals    []float32
	count     int
	done      int
	logValues []logValue
	steps     int
}

func newEpochLogger(out io.Writer, epoch, epochs, steps int, names []string, verbose Verbosity, dynamic bool,
	lineEvery int, now func() time.Time) *epochLogger {
	l := &epochLogger{names: names, totals: make([]float32, len(names)-1), steps: steps}
	if verbose != Silent {
		fmt.Fprintf(out, "Epoch %d/%d\n", epoch+1, epochs)
		l.bar = newProgbar(out, steps, verbose, dynamic, lineEvery, names[1:], now)
	}
	return l
}

func (l *epochLogger) batchEnd(r StepResult) map[string]float64 {
	l.done++
	l.lossTotal += float64(r.Loss) * float64(r.Size)
	l.seen += r.Size
	l.count += r.Size
	logs := map[string]float64{"loss": float64(r.Loss)}
	l.logValues = append(l.logValues[:0], logValue{name: "loss", v: float64(r.Loss)})
	for i, name := range l.names[1:] {
		l.totals[i] += r.MetricSums[i]
		v := float64(l.totals[i] / float32(l.count))
		logs[name] = v
		l.logValues = append(l.logValues, logValue{name: name, v: v})
	}
	// ProgbarLogger skips the update of the last step; epochEnd does it.
	if l.bar != nil && l.done < l.steps {
		l.bar.update(l.done, l.logValues)
	}
	return logs
}

// epochEnd returns the epoch logs, val (loss then metrics) added as "val_*" when not nil.
func (l *epochLogger) epochEnd(val []float64) map[string]float64 {
	logs := map[string]float64{"loss": l.lossTotal / float64(l.seen)}
	order := []string{"loss"}
	for i, name := range l.names[1:] {
		logs[name] = float64(l.totals[i] / float32(l.count))
		order = append(order, name)
	}
	if val != nil {
		for i, name := range l.names {
			logs["val_"+name] = val[i]
			order = append(order, "val_"+name)
		}
	}
	if l.bar != nil {
		for _, n := range order {
			l.logValues = append(l.logValues, logValue{name: n, v: logs[n]})
		}
		l.bar.update(l.done, l.logValues)
	}
	return logs
}
