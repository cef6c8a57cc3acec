package training

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
)

// Verbosity is fit's verbose argument.
type Verbosity int

const (
	// ProgressBar is Keras' verbose=1 (its default): "Epoch e/E" then a progress bar per epoch.
	ProgressBar Verbosity = iota
	// OneLinePerEpoch is Keras' verbose=2: "Epoch e/E" then one " - 21s - loss: …" line.
	OneLinePerEpoch
	// Silent is Keras' verbose=0.
	Silent
)

// Display says how the progress bar is refreshed.
type Display int

const (
	// DisplayAuto redraws the bar in place when the output is a terminal or a GoNB notebook
	// cell (Jupyter honours carriage returns, as it does for Keras under ipykernel), and writes
	// one line per update otherwise.
	DisplayAuto Display = iota
	// DisplayInPlace always redraws in place with a carriage return.
	DisplayInPlace
	// DisplayLines always writes each update on a new line, as Keras does when stdout is not
	// dynamic: every update starts with a newline, so a blank line follows "Epoch e/E".
	DisplayLines
)

// progbar is keras.utils.generic_utils.Progbar of Keras 2.3.1 (width 30, interval 0.05 s),
// driven the way ProgbarLogger drives it in steps mode. Values are averaged as Keras does:
// a non-stateful value accumulates value·(current − seen_so_far) and is shown divided by the
// accumulated weight; a stateful value (the running metrics) is shown as given. NumPy 1.x
// turns numpy.float32 × int into float64, so all of this is float64 arithmetic on the float32
// values TensorFlow returns.
//
// The one departure: an in-place redraw starts with "\r" only, where Keras first writes one
// backspace per character of the previous line — terminals and Jupyter need only the "\r",
// and log files stay readable.
type progbar struct {
	w         io.Writer
	target    int
	width     int
	verbose   Verbosity
	interval  time.Duration
	dynamic   bool
	lineEvery int
	stateful  map[string]bool
	now       func() time.Time

	start      time.Time
	lastUpdate time.Time
	totalWidth int
	seenSoFar  int
	values     map[string]*pbValue
	order      []string
}

type pbValue struct {
	sum      float64
	count    int
	stateful bool // shown as is
}

// logValue is one (name, value) pair of Keras' log_values.
type logValue struct {
	name string
	v    float64
}

func newProgbar(w io.Writer, target int, verbose Verbosity, dynamic bool, lineEvery int,
	stateful []string, now func() time.Time) *progbar {
	p := &progbar{w: w, target: target, width: 30, verbose: verbose, interval: 50 * time.Millisecond,
		dynamic: dynamic, lineEvery: lineEvery, stateful: map[string]bool{}, now: now,
		values: map[string]*pbValue{}}
	for _, s := range stateful {
		p.stateful[s] = true
	}
	p.start = now()
	return p
}

func (p *progbar) update(current int, values []logValue) {
	for _, lv := range values {
		val, ok := p.values[lv.name]
		if !ok {
			p.order = append(p.order, lv.name)
		}
		if p.stateful[lv.name] {
			p.values[lv.name] = &pbValue{sum: lv.v, count: 1, stateful: true}
			continue
		}
		weight := current - p.seenSoFar
		if !ok || val.stateful {
			val = &pbValue{}
			p.values[lv.name] = val
		}
		val.sum += lv.v * float64(weight)
		val.count += weight
	}
	p.seenSoFar = current

	now := p.now()
	elapsed := now.Sub(p.start).Seconds()
	info := " - " + pyFormat("%.0f", elapsed) + "s"
	switch p.verbose {
	case ProgressBar:
		if now.Sub(p.lastUpdate) < p.interval && current < p.target {
			return
		}
		if !p.dynamic && p.lineEvery > 1 && current < p.target && current%p.lineEvery != 0 {
			return
		}
		prevTotalWidth := p.totalWidth
		var b strings.Builder
		if p.dynamic {
			b.WriteString("\r")
		} else {
			b.WriteString("\n")
		}
		digits := len(strconv.Itoa(p.target))
		bar := fmt.Sprintf("%*d/%d [", digits, current, p.target)
		progWidth := int(float64(p.width) * (float64(current) / float64(p.target)))
		if progWidth > 0 {
			bar += strings.Repeat("=", progWidth-1)
			if current < p.target {
				bar += ">"
			} else {
				bar += "="
			}
		}
		bar += strings.Repeat(".", max(0, p.width-progWidth)) + "]"
		p.totalWidth = len(bar)
		b.WriteString(bar)

		timePerUnit := 0.0
		if current > 0 {
			timePerUnit = elapsed / float64(current)
		}
		if current < p.target {
			info = " - ETA: " + etaString(timePerUnit*float64(p.target-current))
		} else {
			switch {
			case timePerUnit >= 1:
				info += " " + pyFormat("%.0f", timePerUnit) + "s/step"
			case timePerUnit >= 1e-3:
				info += " " + pyFormat("%.0f", timePerUnit*1e3) + "ms/step"
			default:
				info += " " + pyFormat("%.0f", timePerUnit*1e6) + "us/step"
			}
		}
		for _, k := range p.order {
			avg := p.values[k].average()
			info += " - " + k + ":"
			if math.Abs(avg) > 1e-3 {
				info += " " + pyFormat("%.4f", avg)
			} else {
				info += " " + pyFormat("%.4e", avg)
			}
		}
		p.totalWidth += len(info)
		if prevTotalWidth > p.totalWidth {
			info += strings.Repeat(" ", prevTotalWidth-p.totalWidth)
		}
		if current >= p.target {
			info += "\n"
		}
		b.WriteString(info)
		_, _ = io.WriteString(p.w, b.String())
	case OneLinePerEpoch:
		if current >= p.target {
			for _, k := range p.order {
				avg := p.values[k].average()
				info += " - " + k + ":"
				// Keras' verbose=2 branch tests avg > 1e-3, without abs.
				if avg > 1e-3 {
					info += " " + pyFormat("%.4f", avg)
				} else {
					info += " " + pyFormat("%.4e", avg)
				}
			}
			_, _ = io.WriteString(p.w, info+"\n")
		}
	}
	p.lastUpdate = now
}

// average is np.mean(sum / max(1, count)).
func (v *pbValue) average() float64 {
	if v.stateful {
		return v.sum
	}
	return v.sum / float64(max(1, v.count))
}

// etaString is Progbar's ETA: "%d:%02d:%02d" above an hour, "%d:%02d" above a minute, else
// "%ds" — Python's %d truncates the float seconds.
func etaString(eta float64) string {
	switch {
	case eta > 3600:
		return fmt.Sprintf("%d:%02d:%02d", int64(math.Floor(eta/3600)), int64(math.Floor(math.Mod(eta, 3600)/60)), int64(math.Mod(eta, 60)))
	case eta > 60:
		return fmt.Sprintf("%d:%02d", int64(math.Floor(eta/60)), int64(math.Mod(eta, 60)))
	default:
		return fmt.Sprintf("%ds", int64(eta))
	}
}

// pyFormat formats one float as Python's %-operator does for "%.0f", "%.4f" and "%.4e":
// Go's fmt rounds the same way (correctly, ties to even on the exact binary value) and writes
// exponents with at least two digits, like C; only NaN and infinities are spelled differently.
func pyFormat(verb string, v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return fmt.Sprintf(verb, v)
}

// isDynamic decides DisplayAuto: a terminal, or a GoNB notebook cell.
func isDynamic(d Display, w io.Writer) bool {
	switch d {
	case DisplayInPlace:
		return true
	case DisplayLines:
		return false
	}
	if gonbui.IsNotebook && (w == os.Stdout || w == os.Stderr) {
		return true
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return true
		}
	}
	return false
}
