package batch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/reference"
)

// SetupCell (the warm-up notebook's first cell) is the one documented in notebooks/README.md
// and used by the course's notebooks.
func TestSetupCellIsTheNotebooks(t *testing.T) {
	repo, err := reference.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "notebooks", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```\n"+SetupCell+"\n```") {
		t.Error("notebooks/README.md does not show SetupCell as the setup cell")
	}
	nbs, _ := filepath.Glob(filepath.Join(repo, "solutions", "*.ipynb"))
	for _, p := range nbs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var nb struct {
			Cells []struct {
				CellType string          `json:"cell_type"`
				Source   json.RawMessage `json:"source"`
			} `json:"cells"`
		}
		if err := json.Unmarshal(b, &nb); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, c := range nb.Cells {
			if c.CellType != "code" {
				continue
			}
			var s string
			var lines []string
			if json.Unmarshal(c.Source, &s) != nil {
				if err := json.Unmarshal(c.Source, &lines); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				s = strings.Join(lines, "")
			}
			if s != SetupCell {
				t.Errorf("%s: the first code cell is not the setup cell", filepath.Base(p))
			}
			break
		}
	}
}
