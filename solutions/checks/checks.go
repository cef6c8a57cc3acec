// Package checks holds the grading checks of the Chapter 8 exercises and activities, one JSON
// file per exercise (see solutions/README.md for the format), and embeds them so that the grader
// and the notebooks' self-checks read the same definitions from any working directory.
package checks

import (
	"embed"
	"io/fs"

	"github.com/transfer-learning-go/workbook/internal/grade"
)

//go:embed *.json
var files embed.FS

// FS returns the embedded checks files.
func FS() fs.FS { return files }

// Load parses and validates every embedded checks file.
func Load() ([]*grade.Spec, error) { return grade.LoadSpecs(files) }

// Find returns the checks of the exercise called name: its ID ("8.01", "A8.01") or an alias
// ("exercise-8.01", "activity-8.01").
func Find(name string) (*grade.Spec, error) {
	specs, err := Load()
	if err != nil {
		return nil, err
	}
	return grade.FindSpec(specs, name)
}
