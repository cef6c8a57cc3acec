package applications

import (
	"strconv"
	"strings"
)

// SummaryRow is one layer as Keras' print_summary shows it.
type SummaryRow struct {
	Name  string
	Class string
	// OutputShape includes the batch axis; None prints as "None".
	OutputShape []int
	Params      int
	// Connections are the "Connected to" entries, e.g. "input_1[0][0]"; used only in the
	// functional layout.
	Connections []string
}

// SummaryTable is everything Keras' print_summary (Keras 2.3 keras/utils/layer_utils.py)
// prints: the model name, the rows, the layout and the parameter totals.
type SummaryTable struct {
	ModelName string
	Rows      []SummaryRow
	// SequentialLike selects the 65-column layout without "Connected to"; otherwise the
	// 98-column functional layout is used.
	SequentialLike bool
	Trainable      int
	NonTrainable   int
}

// Column ends of Keras' two layouts: int(line_length·position) for positions
// [.45, .85, 1] at 65 and [.33, .55, .67, 1] at 98.
var (
	sequentialColumns = []int{29, 55, 65}
	functionalColumns = []int{32, 53, 65, 98}
)

// SummaryTable returns the rows and totals of the architecture's summary, with its current
// trainable flags.
func (a *Architecture) SummaryTable() SummaryTable {
	t := SummaryTable{ModelName: a.Name, SequentialLike: a.Sequential || a.SequentialLike()}
	for _, l := range a.Layers {
		if a.Sequential && l.Op == OpInput {
			continue
		}
		row := SummaryRow{Name: l.Name, Class: l.Class, OutputShape: append([]int{None}, l.OutputShape...),
			Params: l.Params()}
		for _, in := range l.Inbound {
			row.Connections = append(row.Connections, in+"[0][0]")
		}
		t.Rows = append(t.Rows, row)
	}
	total, trainable, _ := a.Params()
	t.Trainable, t.NonTrainable = trainable, total-trainable
	return t
}

// Summary returns the text Keras' model.summary() prints for this architecture.
func (a *Architecture) Summary() string { return a.SummaryTable().String() }

// String formats the table exactly as Keras 2.3's print_summary, one line per print call,
// each followed by "\n". Trailing spaces of padded rows are kept, as Keras prints them.
func (t SummaryTable) String() string {
	var sb strings.Builder
	lineLength, columns := 65, sequentialColumns
	header := []string{"Layer (type)", "Output Shape", "Param #"}
	if !t.SequentialLike {
		lineLength, columns = 98, functionalColumns
		header = append(header, "Connected to")
	}
	println := func(s string) {
		sb.WriteString(s)
		sb.WriteByte('\n')
	}
	println("Model: \"" + t.ModelName + "\"")
	println(strings.Repeat("_", lineLength))
	println(SummaryLine(header, columns))
	println(strings.Repeat("=", lineLength))
	for i, r := range t.Rows {
		fields := []string{r.Name + " (" + r.Class + ")", PythonTuple(r.OutputShape), strconv.Itoa(r.Params)}
		if t.SequentialLike {
			println(SummaryLine(fields, columns))
		} else {
			first := ""
			if len(r.Connections) > 0 {
				first = r.Connections[0]
			}
			println(SummaryLine(append(fields, first), columns))
			for _, c := range r.Connections[min(1, len(r.Connections)):] {
				println(SummaryLine([]string{"", "", "", c}, columns))
			}
		}
		if i == len(t.Rows)-1 {
			println(strings.Repeat("=", lineLength))
		} else {
			println(strings.Repeat("_", lineLength))
		}
	}
	println("Total params: " + Thousands(t.Trainable+t.NonTrainable))
	println("Trainable params: " + Thousands(t.Trainable))
	println("Non-trainable params: " + Thousands(t.NonTrainable))
	println(strings.Repeat("_", lineLength))
	return sb.String()
}

// SummaryLine is print_summary's print_row: for each field, replace the last character of
// the line so far by a space (so a truncated field never touches the next), append the
// field, cut the line at the field's column end, and pad with spaces up to it.
func SummaryLine(fields []string, columnEnds []int) string {
	line := []rune{}
	for i, f := range fields {
		if i > 0 {
			line = append(line[:len(line)-1], ' ')
		}
		line = append(line, []rune(f)...)
		if len(line) > columnEnds[i] {
			line = line[:columnEnds[i]]
		}
		for len(line) < columnEnds[i] {
			line = append(line, ' ')
		}
	}
	return string(line)
}

// PythonTuple formats a shape as Python's str(tuple) does, None for open dimensions:
// "(None, 224, 224, 3)", "(None,)".
func PythonTuple(dims []int) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		if d == None {
			parts[i] = "None"
		} else {
			parts[i] = strconv.Itoa(d)
		}
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// Thousands formats n as Python's '{:,}'.format(n).
func Thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
