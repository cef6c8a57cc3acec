package training

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"strings"
	"testing"
	"time"
)

// fakeClock returns base, base+step, base+2·step, … on successive calls, as the oracle's clock.
func fakeClock(step float64) func() time.Time {
	base := time.Unix(1_000_000_000, 0)
	calls := 0
	return func() time.Time {
		t := base.Add(time.Duration(float64(calls) * step * float64(time.Second)))
		calls++
		return t
	}
}

// TestLogMatchesKerasProgbar replays fixed batch results through the epoch logger and compares
// the printed text and the History values with a Python replica of Keras 2.3.1's Progbar,
// ProgbarLogger and BaseLogger run on the same results and clock (testdata/keras_oracle.py).
// Keras' in-place redraw writes backspaces before "\r"; the oracle strips them, since this
// package writes only the "\r".
func TestLogMatchesKerasProgbar(t *testing.T) {
	for _, sc := range loadGolden(t).Logs {
		t.Run(sc.Name, func(t *testing.T) {
			var out bytes.Buffer
			now := fakeClock(sc.ClockStep)
			verbose := ProgressBar
			if sc.Verbose == 2 {
				verbose = OneLinePerEpoch
			}
			names := append([]string{"loss"}, sc.Metrics...)
			hist := &History{}
			logNames := append([]string(nil), names...)
			if sc.Val[0] != nil {
				for _, n := range names {
					logNames = append(logNames, "val_"+n)
				}
			}
			for epoch := 0; epoch < sc.Epochs; epoch++ {
				lg := newEpochLogger(&out, epoch, sc.Epochs, sc.Steps, names, verbose, sc.Dynamic, 0, now)
				for _, b := range sc.Batches[epoch] {
					lg.batchEnd(StepResult{Size: b.Size, Loss: b.Loss, MetricSums: b.Sums})
				}
				hist.append(epoch, logNames, lg.epochEnd(sc.Val[epoch]))
			}
			if got := out.String(); got != sc.Text {
				gl, wl := strings.Split(got, "\n"), strings.Split(sc.Text, "\n")
				for i := 0; i < min(len(gl), len(wl)); i++ {
					if gl[i] != wl[i] {
						t.Fatalf("line %d differs:\n got %q\nwant %q", i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("output differs in length:\n got %q\nwant %q", got, sc.Text)
			}
			for name, want := range sc.History {
				got := hist.Get(name)
				for i := range want {
					if i >= len(got) || got[i] != want[i] {
						t.Errorf("history[%q] = %v, Keras gives %v", name, got, want)
						break
					}
				}
			}
		})
	}
}

// TestLineEvery checks the non-TTY throttle: intermediate lines only every N steps, the final
// line always, and the exact Keras line for the book's run shape (100 steps).
func TestLineEvery(t *testing.T) {
	var out bytes.Buffer
	now := fakeClock(21)
	lg := newEpochLogger(&out, 0, 10, 100, []string{"loss", "accuracy"}, ProgressBar, false, 25, now)
	for i := 0; i < 100; i++ {
		lg.batchEnd(StepResult{Size: 32, Loss: 0.5, MetricSums: []float32{24}})
	}
	lg.epochEnd([]float64{0.3352, 0.8539})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	// "Epoch 1/10", then for each update a newline and the bar: the blank line Keras prints.
	if len(lines) != 1+1+3+1 || lines[0] != "Epoch 1/10" || lines[1] != "" {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	for i, step := range []string{" 25/100", " 50/100", " 75/100"} {
		if !strings.HasPrefix(lines[2+i], step+" [") {
			t.Errorf("line %d = %q, want step %s", 3+i, lines[2+i], step)
		}
	}
	want := "100/100 [==============================] - 2100s 21s/step - loss: 0.5000 - accuracy: 0.7500 - val_loss: 0.3352 - val_accuracy: 0.8539"
	if lines[5] != want {
		t.Errorf("final line\n got %q\nwant %q", lines[5], want)
	}
}

func TestHistoryJSONAndPlot(t *testing.T) {
	h := &History{}
	h.append(0, []string{"loss", "accuracy", "val_loss", "val_accuracy"},
		map[string]float64{"loss": 0.55, "accuracy": 0.71, "val_loss": 0.33, "val_accuracy": 0.85})
	h.append(1, []string{"loss", "accuracy", "val_loss", "val_accuracy"},
		map[string]float64{"loss": math.NaN(), "accuracy": 0.75, "val_loss": math.Inf(1), "val_accuracy": 0.86})
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back History
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(back.Get("loss")[1]) || !math.IsInf(back.Get("val_loss")[1], 1) || back.Get("accuracy")[0] != 0.71 ||
		strings.Join(back.Names, ",") != "loss,accuracy,val_loss,val_accuracy" || len(back.Epoch) != 2 {
		t.Errorf("JSON round trip lost values: %s → %+v", b, back)
	}
	svg := h.PlotSVG("Loss & <accuracy>", "loss", "val_loss", "accuracy")
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Errorf("PlotSVG is not well-formed XML: %v\n%s", err, svg)
	}
	if !strings.Contains(svg, "&lt;accuracy&gt;") || strings.Count(svg, "<polyline") != 1 {
		t.Errorf("unexpected SVG (title escaped, one polyline for the series with two finite points):\n%s", svg)
	}
}
