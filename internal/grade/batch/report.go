package batch

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteCSV writes the gradebook: one row per student, one column per check (the points
// earned), then the total, the maximum and the run's problem, if any.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"student"}
	for _, c := range r.Checks {
		head = append(head, c.ID)
	}
	head = append(head, "total", "max", "problem")
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, res := range r.Results {
		row := []string{res.Student}
		for _, c := range res.Checks {
			row = append(row, num(c.Score))
		}
		row = append(row, num(res.Score), num(res.MaxScore), oneLine(res.Problem))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteJSON writes the full report, hidden checks' details included (for the instructor).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Feedback is the text a student receives: every visible check with what was found and what to
// do, and for hidden checks only how many there were and how many passed.
func (r *Report) Feedback(res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nFeedback for %s\n\nScore: %s / %s\n", r.Title, res.Student, num(res.Score), num(res.MaxScore))
	if res.Problem != "" {
		fmt.Fprintf(&b, "\nYour notebook did not run to the end: %s\n", res.Problem)
	}
	b.WriteString("\n## Checks\n\n")
	hidden, hiddenPassed := 0, 0
	for _, c := range res.Checks {
		if c.Hidden {
			hidden++
			if c.Passed {
				hiddenPassed++
			}
			continue
		}
		mark := "✗"
		if c.Passed {
			mark = "✓"
		}
		fmt.Fprintf(&b, "- %s %s (%s/%s)\n", mark, c.Name, num(c.Score), num(c.Points))
		if !c.Passed {
			fmt.Fprintf(&b, "  - What we found: %s\n  - What to do: %s\n", c.Detail, c.Feedback)
		}
	}
	if hidden > 0 {
		fmt.Fprintf(&b, "\n## Hidden checks\n\n%d hidden check(s) were run: %d passed.\n", hidden, hiddenPassed)
	}
	return b.String()
}

// WriteFiles writes gradebook.csv, report.json and feedback/STUDENT.md into dir, each through a
// temporary file and a rename.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "feedback"), 0o755); err != nil {
		return fmt.Errorf("grade: %v", err)
	}
	var csvBuf, jsonBuf bytes.Buffer
	if err := r.WriteCSV(&csvBuf); err != nil {
		return fmt.Errorf("grade: gradebook: %v", err)
	}
	if err := r.WriteJSON(&jsonBuf); err != nil {
		return fmt.Errorf("grade: report: %v", err)
	}
	if err := writeAtomic(filepath.Join(dir, "gradebook.csv"), csvBuf.Bytes()); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "report.json"), jsonBuf.Bytes()); err != nil {
		return err
	}
	for _, res := range r.Results {
		if err := writeAtomic(filepath.Join(dir, "feedback", res.Student+".md"), []byte(r.Feedback(res))); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("grade: write %s: %v", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("grade: write %s: %v", path, err)
	}
	return nil
}
