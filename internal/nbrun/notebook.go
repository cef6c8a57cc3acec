package nbrun

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"regexp"
	"strings"
	"time"
)

// Notebook is an executed notebook reduced to what tests and graders check: per cell, the text it
// printed, the images it displayed and the errors it raised.
type Notebook struct {
	Path       string
	KernelName string
	Cells      []Cell
}

// Cell is one cell of a notebook with its outputs sorted by kind.
type Cell struct {
	Index          int    // 1-based position among all cells (markdown included), top to bottom
	Type           string // "code", "markdown" or "raw"
	Source         string
	ExecutionCount int // the N of "In [N]"; 0 when the cell was not executed
	// Conditional cells run only when an earlier cell failed (metadata {"nbrun":
	// {"only_if_failed": I}}, see the driver) and are otherwise left unexecuted.
	Conditional bool

	Stdout string   // all stdout stream text, concatenated
	Stderr string   // all stderr stream text
	PNGs   [][]byte // decoded image/png of display_data and execute_result outputs, in order
	HTML   []string // text/html outputs that are not GoNB error reports
	Errors []Error  // "error" outputs plus GoNB's compile-error reports

	// Duration is the execution time nbclient recorded from the kernel's message timestamps (GoNB
	// stamps whole seconds, so it is accurate to about a second); 0 if not recorded.
	Duration time.Duration
	Outputs  []Output // every output, in order
}

// Error is an error a cell raised. GoNB reports a failed build as an HTML display (with the compiler
// messages) followed by an "error" output that only says `go build` failed; Text carries the
// compiler messages as plain text in that case.
type Error struct {
	Name      string   // ename
	Value     string   // evalue
	Traceback []string // as sent by the kernel (may hold ANSI colour codes)
	Text      string   // GoNB's HTML error report as plain text, when there was one
}

// Output is one raw output of a code cell.
type Output struct {
	Type string            // stream, display_data, execute_result or error
	Name string            // stdout/stderr for streams
	Text string            // stream text
	Data map[string]string // MIME type to content (strings; JSON values kept as their JSON text)
}

// rawNotebook is the on-disk nbformat 4 layout we need.
type rawNotebook struct {
	Metadata struct {
		Kernelspec struct {
			Name string `json:"name"`
		} `json:"kernelspec"`
	} `json:"metadata"`
	Cells []struct {
		CellType       string          `json:"cell_type"`
		Source         multiline       `json:"source"`
		ExecutionCount *int            `json:"execution_count"`
		Metadata       json.RawMessage `json:"metadata"`
		Outputs        []struct {
			OutputType string                     `json:"output_type"`
			Name       string                     `json:"name"`
			Text       multiline                  `json:"text"`
			Data       map[string]json.RawMessage `json:"data"`
			EName      string                     `json:"ename"`
			EValue     string                     `json:"evalue"`
			Traceback  []string                   `json:"traceback"`
		} `json:"outputs"`
	} `json:"cells"`
}

// multiline is nbformat's "string or list of strings".
type multiline string

func (m *multiline) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = multiline(s)
		return nil
	}
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("want a string or a list of strings: %v", err)
	}
	*m = multiline(strings.Join(parts, ""))
	return nil
}

// ReadNotebook parses a notebook file (executed or not).
func ReadNotebook(path string) (*Notebook, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nbrun: %v", err)
	}
	nb, err := ParseNotebook(b)
	if err != nil {
		return nil, fmt.Errorf("nbrun: read %q: %v", path, err)
	}
	nb.Path = path
	return nb, nil
}

// ParseNotebook parses notebook JSON.
func ParseNotebook(b []byte) (*Notebook, error) {
	var raw rawNotebook
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	nb := &Notebook{KernelName: raw.Metadata.Kernelspec.Name}
	for i, rc := range raw.Cells {
		c := Cell{Index: i + 1, Type: rc.CellType, Source: string(rc.Source)}
		if rc.ExecutionCount != nil {
			c.ExecutionCount = *rc.ExecutionCount
		}
		c.Duration, c.Conditional = cellMetadata(rc.Metadata)
		for _, ro := range rc.Outputs {
			o := Output{Type: ro.OutputType, Name: ro.Name, Text: string(ro.Text)}
			if len(ro.Data) > 0 {
				o.Data = make(map[string]string, len(ro.Data))
				for mime, v := range ro.Data {
					var s multiline
					if err := json.Unmarshal(v, &s); err == nil {
						o.Data[mime] = string(s)
					} else {
						o.Data[mime] = string(v) // e.g. application/json: keep the JSON text
					}
				}
			}
			c.Outputs = append(c.Outputs, o)
			switch ro.OutputType {
			case "stream":
				if ro.Name == "stderr" {
					c.Stderr += o.Text
				} else {
					c.Stdout += o.Text
				}
			case "error":
				c.Errors = append(c.Errors, Error{Name: ro.EName, Value: ro.EValue, Traceback: ro.Traceback})
			case "display_data", "execute_result":
				if p, ok := o.Data["image/png"]; ok {
					img, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(p, "\n", ""))
					if err != nil {
						return nil, fmt.Errorf("cell %d: image/png output: %v", c.Index, err)
					}
					c.PNGs = append(c.PNGs, img)
				}
				if h, ok := o.Data["text/html"]; ok {
					if isGoNBErrorReport(h) {
						c.Errors = append(c.Errors, Error{Name: "GoNB", Text: GoNBErrorText(h)})
					} else {
						c.HTML = append(c.HTML, h)
					}
				}
			}
		}
		nb.Cells = append(nb.Cells, c)
	}
	mergeBuildErrors(nb)
	return nb, nil
}

// mergeBuildErrors folds GoNB's HTML report into the "error" output that follows it in the same
// cell, so a failed build is one Error carrying both the kernel's summary and the compiler text.
func mergeBuildErrors(nb *Notebook) {
	for ci := range nb.Cells {
		c := &nb.Cells[ci]
		var merged []Error
		pending := ""
		for _, e := range c.Errors {
			if e.Name == "GoNB" && e.Value == "" {
				pending = strings.TrimSpace(pending + "\n" + e.Text)
				continue
			}
			if pending != "" {
				e.Text = strings.TrimSpace(e.Text + "\n" + pending)
				pending = ""
			}
			merged = append(merged, e)
		}
		if pending != "" {
			merged = append(merged, Error{Name: "GoNB", Text: pending})
		}
		c.Errors = merged
	}
}

// cellMetadata reads a cell's metadata: nbclient's timing (record_timing), from the request
// being sent to the reply arriving (0 if not recorded), and whether the cell runs only after a
// failure (nbrun's only_if_failed, see the driver).
func cellMetadata(meta json.RawMessage) (time.Duration, bool) {
	var m struct {
		Execution map[string]string `json:"execution"`
		NBRun     struct {
			OnlyIfFailed *int `json:"only_if_failed"`
		} `json:"nbrun"`
	}
	if len(meta) == 0 || json.Unmarshal(meta, &m) != nil {
		return 0, false
	}
	conditional := m.NBRun.OnlyIfFailed != nil
	start, err1 := time.Parse(time.RFC3339Nano, m.Execution["iopub.execute_input"])
	end, err2 := time.Parse(time.RFC3339Nano, m.Execution["shell.execute_reply"])
	if err1 != nil || err2 != nil {
		return 0, conditional
	}
	return end.Sub(start), conditional
}

// isGoNBErrorReport recognises the HTML GoNB displays for build, goimports and `go get` errors.
func isGoNBErrorReport(h string) bool {
	return strings.Contains(h, "gonb-err-") && strings.Contains(h, `data-mime-type="application/vnd.jupyter.stderr"`)
}

var (
	reStyle = regexp.MustCompile(`(?s)<style>.*?</style>`)
	reTag   = regexp.MustCompile(`<[^>]*>`)
	reANSI  = regexp.MustCompile("\x1b\\[[0-9;]*m")

	reBuildHeader = regexp.MustCompile(`^# gonb_[0-9a-f]+$`)
)

// GoNBErrorText turns GoNB's HTML error report into the plain text a terminal shows: one line per
// message ("Cell[2]: Line 2 ./main.go:11:6: undefined: x"), without the hidden pop-up that repeats
// the surrounding code.
func GoNBErrorText(h string) string {
	h = reStyle.ReplaceAllString(h, "")
	var b strings.Builder
	skipDepth := 0 // >0 inside <div class="gonb-err-context">, counting nested divs
	last := 0
	for _, loc := range reTag.FindAllStringIndex(h, -1) {
		if skipDepth == 0 {
			b.WriteString(h[last:loc[0]])
		}
		last = loc[1]
		tag := h[loc[0]:loc[1]]
		switch {
		case strings.HasPrefix(tag, "<div"):
			if skipDepth > 0 || strings.Contains(tag, "gonb-err-context") {
				skipDepth++
			}
		case tag == "</div>":
			if skipDepth > 0 {
				skipDepth--
			} else {
				b.WriteString("\n")
			}
		}
	}
	if skipDepth == 0 {
		b.WriteString(h[last:])
	}
	var lines []string
	for _, l := range strings.Split(html.UnescapeString(b.String()), "\n") {
		// "# gonb_1a2b3c4d" is `go build`'s package header for the kernel's temporary module.
		if l = strings.TrimSpace(l); l != "" && !reBuildHeader.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// StripANSI removes terminal colour codes (GoNB marks cell lines in stack traces with them).
func StripANSI(s string) string { return reANSI.ReplaceAllString(s, "") }

// FirstError returns the first cell, top to bottom, that raised an error, as a *CellError; nil if
// none did.
func (nb *Notebook) FirstError() *CellError {
	for i := range nb.Cells {
		if len(nb.Cells[i].Errors) > 0 {
			return newCellError(nb, &nb.Cells[i], "error", "")
		}
	}
	return nil
}

// CodeCells returns only the code cells, in order.
func (nb *Notebook) CodeCells() []*Cell {
	var out []*Cell
	for i := range nb.Cells {
		if nb.Cells[i].Type == "code" {
			out = append(out, &nb.Cells[i])
		}
	}
	return out
}
