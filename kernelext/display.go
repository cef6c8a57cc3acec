package kernelext

import (
	"fmt"
	"html"
	"image"
	"strings"

	"github.com/janpfeifer/gonb/gonbui"
)

// DisplayImage shows img in the notebook cell's output, as Jupyter shows a Pillow image
// returned by a cell (e.g. new_image after load_img). Outside a GoNB notebook it does
// nothing, so the same code runs in tests and command-line tools.
func DisplayImage(img image.Image) {
	if !gonbui.IsNotebook || img == nil {
		return
	}
	if im, ok := img.(*Image); ok && (im == nil || im.RGBA == nil) {
		return
	}
	if err := gonbui.DisplayImage(img); err != nil {
		gonbui.DisplayHTML("<pre>" + html.EscapeString(fmt.Sprintf("kernelext: display image: %v", err)) + "</pre>")
	}
	// A cell's program may exit right after this call: wait until GoNB has the output, or a
	// busy machine can lose it.
	gonbui.Sync()
}

// DisplayPredictions shows DecodePredictions' result as a small HTML table per sample
// (rank, label, WordNet ID, score as a percentage). Outside a GoNB notebook it does nothing.
func DisplayPredictions(preds [][]Prediction) {
	if !gonbui.IsNotebook {
		return
	}
	gonbui.DisplayHTML(PredictionsHTML(preds))
	gonbui.Sync()
}

// PredictionsHTML renders the table DisplayPredictions shows.
func PredictionsHTML(preds [][]Prediction) string {
	var b strings.Builder
	for s, sample := range preds {
		if len(preds) > 1 {
			fmt.Fprintf(&b, "<p><b>Sample %d</b></p>\n", s)
		}
		b.WriteString("<table>\n<tr><th>#</th><th>Label</th><th>WordNet ID</th><th>Score</th></tr>\n")
		for i, p := range sample {
			fmt.Fprintf(&b, "<tr><td>%d</td><td>%s</td><td><code>%s</code></td><td>%.2f%%</td></tr>\n",
				i+1, html.EscapeString(p.Label), html.EscapeString(p.WNID), float64(p.Score)*100)
		}
		b.WriteString("</table>\n")
	}
	return b.String()
}
