package training

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/janpfeifer/gonb/gonbui"
)

// History is what Keras' fit returns in its History callback: the epoch indices (0-based, as
// Keras' history.epoch) and, per logged name ("loss", "accuracy", "val_loss", "val_accuracy"),
// one value per epoch (history.history).
//
// Values are those Keras stores: "loss" is the epoch's batch-size-weighted mean training loss;
// "accuracy" the running accuracy over all the epoch's training samples; "val_accuracy" over all
// validation samples; "val_loss" per FitOptions.ValLoss (by default the last validation batch's
// loss, as Keras 2.3 stores it).
type History struct {
	Epoch []int                `json:"epoch"`
	Names []string             `json:"names"`
	Value map[string][]float64 `json:"history"`
}

// Get returns the values logged under name (nil if none), e.g. h.Get("val_accuracy").
func (h *History) Get(name string) []float64 {
	if h == nil {
		return nil
	}
	return h.Value[name]
}

// Last returns the last value logged under name, or NaN.
func (h *History) Last(name string) float64 {
	v := h.Get(name)
	if len(v) == 0 {
		return math.NaN()
	}
	return v[len(v)-1]
}

func (h *History) append(epoch int, names []string, logs map[string]float64) {
	if h.Value == nil {
		h.Value = map[string][]float64{}
	}
	h.Epoch = append(h.Epoch, epoch)
	for _, n := range names {
		v, ok := logs[n]
		if !ok {
			continue
		}
		if _, seen := h.Value[n]; !seen {
			h.Names = append(h.Names, n)
		}
		h.Value[n] = append(h.Value[n], v)
	}
}

// extend appends other's epochs (e.g. a second fine-tuning stage) to h.
func (h *History) extend(other *History) {
	if other == nil {
		return
	}
	for i, e := range other.Epoch {
		logs := map[string]float64{}
		for _, n := range other.Names {
			if vals := other.Value[n]; i < len(vals) {
				logs[n] = vals[i]
			}
		}
		h.append(e, other.Names, logs)
	}
}

// String prints the history as a small table, one row per epoch.
func (h *History) String() string {
	var b strings.Builder
	b.WriteString("epoch")
	for _, n := range h.Names {
		fmt.Fprintf(&b, "  %12s", n)
	}
	b.WriteString("\n")
	for i, e := range h.Epoch {
		fmt.Fprintf(&b, "%5d", e+1)
		for _, n := range h.Names {
			if v := h.Value[n]; i < len(v) {
				fmt.Fprintf(&b, "  %12.4f", v[i])
			} else {
				fmt.Fprintf(&b, "  %12s", "")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// PlotSVG draws the named series (all of them when none is named) against the epoch number as
// a self-contained SVG line chart — what one plots from history.history with matplotlib.
func (h *History) PlotSVG(title string, names ...string) string {
	if len(names) == 0 {
		names = h.Names
	}
	const (
		W, H                   = 480, 300
		left, right, top, bott = 56, 120, 30, 40
	)
	pw, ph := float64(W-left-right), float64(H-top-bott)
	lo, hi := math.Inf(1), math.Inf(-1)
	n := 0
	for _, name := range names {
		for _, v := range h.Get(name) {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		n = max(n, len(h.Get(name)))
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	x := func(i int) float64 {
		if n <= 1 {
			return float64(left) + pw/2
		}
		return float64(left) + pw*float64(i)/float64(n-1)
	}
	y := func(v float64) float64 { return float64(top) + ph*(hi-v)/(hi-lo) }
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`, W, H)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13">%s</text>`, left, html.EscapeString(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%g" height="%g" fill="none" stroke="#888"/>`, left, top, pw, ph)
	for k := 0; k <= 4; k++ {
		v := lo + (hi-lo)*float64(k)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%g" y1="%.1f" y2="%.1f" stroke="#eee"/>`, left, float64(left)+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.3f</text>`, left-4, y(v)+4, v)
	}
	for i := 0; i < n; i++ {
		if n <= 10 || i%((n+9)/10) == 0 || i == n-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`, x(i), H-bott+14, i+1)
		}
	}
	fmt.Fprintf(&b, `<text x="%g" y="%d" text-anchor="middle">epoch</text>`, float64(left)+pw/2, H-8)
	for s, name := range names {
		c := colors[s%len(colors)]
		var pts []string
		for i, v := range h.Get(name) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, x(i), y(v), c)
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, c, strings.Join(pts, " "))
		}
		ly := top + 12 + 16*s
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`, W-right+10, W-right+26, ly-4, ly-4, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, W-right+30, ly, html.EscapeString(name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// Display shows the loss curves and the accuracy curves (training and validation) in the GoNB
// notebook cell. Outside a notebook it does nothing.
func (h *History) Display() {
	if !gonbui.IsNotebook || h == nil {
		return
	}
	var losses, others []string
	for _, n := range h.Names {
		if n == "loss" || n == "val_loss" {
			losses = append(losses, n)
		} else {
			others = append(others, n)
		}
	}
	out := ""
	if len(losses) > 0 {
		out += h.PlotSVG("Loss", losses...)
	}
	if len(others) > 0 {
		out += h.PlotSVG("Metrics", others...)
	}
	gonbui.DisplayHTML("<div>" + out + "</div>")
	gonbui.Sync() // flush before the cell's program exits
}

// jsonFloat writes NaN and infinities, which JSON lacks, as the strings Python's json module
// would accept ("NaN", "Infinity", "-Infinity"): a diverged run's history still saves.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = jsonFloat(math.NaN())
	case `"Infinity"`:
		*f = jsonFloat(math.Inf(1))
	case `"-Infinity"`:
		*f = jsonFloat(math.Inf(-1))
	default:
		var v float64
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = jsonFloat(v)
	}
	return nil
}

type historyJSON struct {
	Epoch []int                  `json:"epoch"`
	Names []string               `json:"names"`
	Value map[string][]jsonFloat `json:"history"`
}

// MarshalJSON implements json.Marshaler.
func (h *History) MarshalJSON() ([]byte, error) {
	out := historyJSON{Epoch: h.Epoch, Names: h.Names, Value: map[string][]jsonFloat{}}
	for k, vs := range h.Value {
		js := make([]jsonFloat, len(vs))
		for i, v := range vs {
			js[i] = jsonFloat(v)
		}
		out.Value[k] = js
	}
	return json.Marshal(out)
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *History) UnmarshalJSON(b []byte) error {
	var in historyJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	h.Epoch, h.Names, h.Value = in.Epoch, in.Names, map[string][]float64{}
	for k, js := range in.Value {
		vs := make([]float64, len(js))
		for i, v := range js {
			vs[i] = float64(v)
		}
		h.Value[k] = vs
	}
	return nil
}
