// Package grade holds what grading a Chapter 8 notebook means, independent of how the notebook
// is run: the declarative checks of each exercise (solutions/checks/*.json), the reference
// values they compare against — computed on this machine, with these weights, through the
// workbook's own packages, never stored — and the comparisons themselves.
//
// The batch grader (package grade/batch, `workbook grade`) and the students' inline
// self-checks (package solutions/check) share it, so a check means the same thing in both.
package grade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Check kinds.
const (
	KindShapeEqual     = "shape-equal"     // the variable's shape equals Check.Shape
	KindArrayEqual     = "array-equal"     // every value equals the reference, bit for bit (NaN never equals)
	KindAllClose       = "allclose"        // numpy.allclose: |a-b| <= atol + rtol*|b| everywhere, same shape
	KindTopEqual       = "top5-equal"      // decoded predictions: same rows, same classes in order, scores allclose
	KindOutputContains = "output-contains" // the students' printed output matches a regular expression

	// Fine-tuning exercises (task "finetune"):
	KindHistoryKeys = "history-keys" // a History records every key in Check.Keys, for as many epochs as the reference run
	KindSignificant = "significant"  // a History value agrees with the reference run's to Check.Digits significant digits
	KindTextEqual   = "text-equal"   // a string equals the reference's
	KindTextOneOf   = "text-one-of"  // a string is one of Check.Values
)

// Tasks: what an exercise's notebook does, and so how its reference is computed.
const (
	TaskPredict  = "predict"  // classify one image with a pretrained model (ComputeReference)
	TaskFinetune = "finetune" // train a new head on the cars/flowers folders, then classify one image (ComputeFinetuneReference)
)

// References a check can compare against (Check.Reference).
const (
	RefPreprocessed  = "preprocessed"  // the (1, 224, 224, 3) batch after preprocess_input
	RefProbabilities = "probabilities" // the model's (1, 1000) output
	RefTop           = "top"           // decode_predictions(probabilities, top=Spec.Top)

	// Fine-tuning exercises: computed by training the reference model on the same schedule and
	// data as the submissions (so the self-checks, which do not train, leave them to the grader).
	RefHistory    = "history"    // the reference run's History
	RefResult     = "result"     // the fine-tuned model's (1, 1) output for Image, as the book computes it
	RefPrediction = "prediction" // the book's decision from result: "It is a flower" only when it is exactly 1
)

// NeedsTraining reports whether the check compares with a value only a reference training run
// gives.
func (c *Check) NeedsTraining() bool {
	switch c.Reference {
	case RefHistory, RefResult, RefPrediction:
		return true
	}
	return false
}

// Spec is one exercise's checks file.
type Spec struct {
	// ID is the exercise's canonical ID ("8.01", "A8.01"); Aliases are other names the command
	// line accepts ("exercise-8.01", "activity-8.01").
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Title   string   `json:"title"`
	// Task is TaskPredict (the default) or TaskFinetune.
	Task string `json:"task,omitempty"`
	// Solution is the solved notebook, relative to the repository root ("" until it exists).
	Solution string `json:"solution,omitempty"`

	// What the reference computes: Keras' load_img(Image, target_size=TargetSize) →
	// img_to_array → expand_dims → preprocess_input → Model.predict → decode_predictions(top=Top).
	// Image is a file name in datasets/prediction. For TaskFinetune, Model is the pretrained
	// base, Image the photo the trained classifier predicts, and Top is not used.
	Model      string `json:"model"`
	Image      string `json:"image"`
	TargetSize [2]int `json:"target_size"`
	Top        int    `json:"top"`

	Checks []Check `json:"checks"`

	// Limits, if set, are what one submission needs at least (the grader raises its defaults to
	// them): fine-tuning holds VGG16 and a batch of activations in memory and saves 0.5 GB
	// checkpoints.
	Limits *Limits `json:"limits,omitempty"`

	// BookExpectation is what the book prints with the published ImageNet weights. It is
	// asserted against the reference only when those weights are in use (md5 verified): then a
	// mismatch means the reference pipeline, not the student, is wrong.
	BookExpectation *BookExpectation `json:"book_expectation,omitempty"`
}

// Check is one graded item.
type Check struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Points float64 `json:"points"`
	Kind   string  `json:"kind"`
	// Variable is the notebook's top-level variable the check reads (not for output-contains).
	Variable string `json:"variable,omitempty"`
	// Reference names the reference value compared against (array-equal, allclose, top5-equal).
	Reference string `json:"reference,omitempty"`
	// Shape is the expected shape (shape-equal).
	Shape []int `json:"shape,omitempty"`
	// RTol and ATol are numpy.allclose's tolerances (allclose; scores in top5-equal).
	RTol float64 `json:"rtol,omitempty"`
	ATol float64 `json:"atol,omitempty"`
	// Pattern is a Go text/template producing a regular expression (output-contains); see
	// OutputPattern for the functions it may call. Example, expanded the same way, is a sample
	// line shown in the feedback of a visible output check.
	Pattern string `json:"pattern,omitempty"`
	Example string `json:"example,omitempty"`
	// Keys are the History keys a history-keys check requires ("loss", "val_accuracy").
	Keys []string `json:"keys,omitempty"`
	// Metric and Epoch (1-based) pick the History value a significant check compares; Digits
	// is how many significant digits must agree: |got - want| <= half a unit in the
	// Digits-th significant digit of want (0.8646 to 1 digit: within ±0.05).
	Metric string `json:"metric,omitempty"`
	Epoch  int    `json:"epoch,omitempty"`
	Digits int    `json:"digits,omitempty"`
	// Values are the strings a text-one-of check accepts.
	Values []string `json:"values,omitempty"`
	// Hidden checks are graded but never described to students: feedback and self-checks give
	// only their number and how many passed.
	Hidden bool `json:"hidden,omitempty"`
	// Feedback is shown to the student when a visible check fails.
	Feedback string `json:"feedback"`
}

// Limits are a submission's minimum resources, as sizes ("12GiB", "2GiB").
type Limits struct {
	// Memory is the least memory limit (the whole process tree) the exercise runs in.
	Memory string `json:"memory,omitempty"`
	// FileSize is the least per-file size limit: the largest file the notebook writes.
	FileSize string `json:"file_size,omitempty"`
}

// BookExpectation records the book's printed output for the published weights.
type BookExpectation struct {
	// Source says where in the book the numbers are printed.
	Source string `json:"source"`
	// Top lists the expected decoded predictions, best first (a prefix of the reference's top).
	Top []ExpectedPrediction `json:"top,omitempty"`
	// For TaskFinetune: the book's val_accuracy after each listed epoch, and its printed
	// prediction. They are compared with the reference run (as a note, not an error: the
	// book's run is not reproducible to the digit, even in Keras) only when it uses the
	// published weights, the full data set and the book's schedule.
	ValAccuracy []ExpectedValue `json:"val_accuracy,omitempty"`
	Prediction  string          `json:"prediction,omitempty"`
}

// ExpectedValue is a number the book prints after an epoch (1-based), and how far a faithful
// run may land from it.
type ExpectedValue struct {
	Epoch int     `json:"epoch"`
	Value float64 `json:"value"`
	ATol  float64 `json:"atol"`
}

// ExpectedPrediction is one class with the score the book prints. The reference's score must
// lie within ATol of Score, or be at least MinScore when the book only says "close to 100%".
type ExpectedPrediction struct {
	WNID     string  `json:"wnid"`
	Label    string  `json:"label"`
	Score    float64 `json:"score,omitempty"`
	ATol     float64 `json:"atol,omitempty"`
	MinScore float64 `json:"min_score,omitempty"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Variables lists the distinct variables the checks read, in first-use order.
func (s *Spec) Variables() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range s.Checks {
		if c.Variable != "" && !seen[c.Variable] {
			seen[c.Variable] = true
			out = append(out, c.Variable)
		}
	}
	return out
}

// TotalPoints is the sum of all checks' points.
func (s *Spec) TotalPoints() float64 {
	t := 0.0
	for _, c := range s.Checks {
		t += c.Points
	}
	return t
}

// Matches reports whether name is the spec's ID or one of its aliases (case-insensitive).
func (s *Spec) Matches(name string) bool {
	if strings.EqualFold(name, s.ID) {
		return true
	}
	for _, a := range s.Aliases {
		if strings.EqualFold(name, a) {
			return true
		}
	}
	return false
}

// Validate checks the spec's internal consistency; the error names the file's ID and the check.
func (s *Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("grade: checks %q: %s", s.ID, fmt.Sprintf(format, args...))
	}
	if s.ID == "" {
		return errors.New("grade: checks file without an id")
	}
	finetune := s.Task == TaskFinetune
	if s.Task != "" && s.Task != TaskPredict && !finetune {
		return bad("task must be %s or %s, got %q", TaskPredict, TaskFinetune, s.Task)
	}
	if finetune && s.Model != "vgg16" {
		return bad("fine-tuning exercises use vgg16, got %q", s.Model)
	}
	if s.Model != "vgg16" && s.Model != "resnet50" {
		return bad("model must be vgg16 or resnet50, got %q", s.Model)
	}
	if s.Image == "" || path.Base(s.Image) != s.Image {
		return bad("image must be a file name in datasets/prediction, got %q", s.Image)
	}
	if s.TargetSize[0] <= 0 || s.TargetSize[1] <= 0 {
		return bad("target_size must be positive, got %v", s.TargetSize)
	}
	if s.Top < 1 && !finetune {
		return bad("top must be at least 1, got %d", s.Top)
	}
	if l := s.Limits; l != nil {
		for _, v := range []string{l.Memory, l.FileSize} {
			if v == "" {
				continue
			}
			if _, err := ParseBytes(v); err != nil {
				return bad("limits: %v", err)
			}
		}
	}
	if len(s.Checks) == 0 {
		return bad("no checks")
	}
	ids := map[string]bool{}
	for i, c := range s.Checks {
		where := fmt.Sprintf("check %d (%q)", i+1, c.ID)
		if !idPattern.MatchString(c.ID) {
			return bad("%s: id must be lower-case letters, digits and dashes", where)
		}
		if ids[c.ID] {
			return bad("%s: duplicate id", where)
		}
		ids[c.ID] = true
		if c.Name == "" {
			return bad("%s: no name", where)
		}
		if c.Points <= 0 {
			return bad("%s: points must be positive", where)
		}
		if c.Feedback == "" {
			return bad("%s: no feedback text", where)
		}
		if c.RTol < 0 || c.ATol < 0 {
			return bad("%s: negative tolerance", where)
		}
		needRef := func(allowed ...string) error {
			for _, a := range allowed {
				if c.Reference == a {
					return nil
				}
			}
			return bad("%s: %s needs reference %s, got %q", where, c.Kind, strings.Join(allowed, " or "), c.Reference)
		}
		arrays := []string{RefPreprocessed, RefProbabilities}
		if finetune {
			arrays = []string{RefResult}
		}
		if (finetune && c.Reference != "" && !c.NeedsTraining()) || (!finetune && c.NeedsTraining()) {
			return bad("%s: reference %q does not exist for task %q", where, c.Reference, s.Task)
		}
		if c.Kind != KindOutputContains && c.Variable == "" {
			return bad("%s: %s needs a variable", where, c.Kind)
		}
		switch c.Kind {
		case KindShapeEqual:
			if len(c.Shape) == 0 {
				return bad("%s: shape-equal needs a shape", where)
			}
		case KindArrayEqual:
			if err := needRef(arrays...); err != nil {
				return err
			}
		case KindAllClose:
			if err := needRef(arrays...); err != nil {
				return err
			}
			if c.RTol == 0 && c.ATol == 0 {
				return bad("%s: allclose with zero tolerances is array-equal; say so", where)
			}
		case KindTopEqual:
			if finetune {
				return bad("%s: top5-equal is for prediction exercises", where)
			}
			if err := needRef(RefTop); err != nil {
				return err
			}
		case KindHistoryKeys:
			if !finetune || len(c.Keys) == 0 {
				return bad("%s: history-keys needs a fine-tuning exercise and keys", where)
			}
			if err := needRef(RefHistory); err != nil {
				return err
			}
		case KindSignificant:
			if err := needRef(RefHistory); err != nil {
				return err
			}
			if c.Metric == "" || c.Epoch < 1 || c.Digits < 1 {
				return bad("%s: significant needs a metric, an epoch (from 1) and digits (from 1)", where)
			}
		case KindTextEqual:
			if err := needRef(RefPrediction); err != nil {
				return err
			}
		case KindTextOneOf:
			if len(c.Values) == 0 || c.Reference != "" {
				return bad("%s: text-one-of needs values and no reference", where)
			}
		case KindOutputContains:
			if c.Pattern == "" {
				return bad("%s: output-contains needs a pattern", where)
			}
			if c.Variable != "" {
				return bad("%s: output-contains reads printed output, not a variable", where)
			}
			for _, t := range []string{c.Pattern, c.Example} {
				if _, err := parsePattern(t); err != nil {
					return bad("%s: %v", where, err)
				}
			}
		default:
			return bad("%s: unknown kind %q", where, c.Kind)
		}
	}
	if e := s.BookExpectation; e != nil && finetune {
		if len(e.Top) > 0 || (len(e.ValAccuracy) == 0 && e.Prediction == "") {
			return bad("book_expectation of a fine-tuning exercise lists val_accuracy or a prediction, not top classes")
		}
		for _, v := range e.ValAccuracy {
			if v.Epoch < 1 || v.ATol <= 0 {
				return bad("book_expectation val_accuracy %+v needs an epoch (from 1) and atol", v)
			}
		}
	} else if e != nil {
		if len(e.Top) == 0 || len(e.Top) > s.Top {
			return bad("book_expectation lists %d classes; want 1 to %d", len(e.Top), s.Top)
		}
		for _, p := range e.Top {
			if p.WNID == "" || p.Label == "" || (p.MinScore == 0 && p.ATol == 0) {
				return bad("book_expectation entry %+v needs wnid, label and atol or min_score", p)
			}
		}
	}
	return nil
}

// ParseSpec decodes and validates one checks file; unknown fields are errors, so a typo in a
// field name does not silently drop a tolerance.
func ParseSpec(b []byte) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("grade: checks file: %v", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadSpecs reads every *.json file at the top of fsys, sorted by ID. IDs and aliases must be
// unique across files.
func LoadSpecs(fsys fs.FS) ([]*Spec, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("grade: %v", err)
	}
	var specs []*Spec
	owner := map[string]string{}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("grade: %v", err)
		}
		s, err := ParseSpec(b)
		if err != nil {
			return nil, fmt.Errorf("%v (in %s)", err, n)
		}
		for _, name := range append([]string{s.ID}, s.Aliases...) {
			key := strings.ToLower(name)
			if other, dup := owner[key]; dup {
				return nil, fmt.Errorf("grade: exercise name %q is used by both %s and %s", name, other, n)
			}
			owner[key] = n
		}
		specs = append(specs, s)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].ID < specs[j].ID })
	return specs, nil
}

// FindSpec returns the spec whose ID or alias is name; the error lists the known IDs.
func FindSpec(specs []*Spec, name string) (*Spec, error) {
	var ids []string
	for _, s := range specs {
		if s.Matches(name) {
			return s, nil
		}
		ids = append(ids, s.ID)
	}
	return nil, fmt.Errorf("grade: no checks for exercise %q (known: %s)", name, strings.Join(ids, ", "))
}

var bytesRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?\s*$`)

// ParseBytes reads a size such as "4GiB", "512MiB", "1.5G" or "1048576" (K, M, G and T are
// powers of 1024).
func ParseBytes(s string) (int64, error) {
	m := bytesRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (e.g. 4GiB, 512MiB)", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %v", s, err)
	}
	mult := map[byte]float64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
	if m[2] != "" && m[2] != "B" {
		v *= mult[m[2][0]]
	}
	if v >= 1<<62 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// MinMemory and MinFileSize are the spec's Limits in bytes (0 when not set).
func (s *Spec) MinMemory() int64 {
	if s.Limits == nil {
		return 0
	}
	return sizeOrZero(s.Limits.Memory)
}

func (s *Spec) MinFileSize() int64 {
	if s.Limits == nil {
		return 0
	}
	return sizeOrZero(s.Limits.FileSize)
}

// sizeOrZero is ParseBytes for a size Validate has accepted ("" is 0).
func sizeOrZero(v string) int64 {
	n, _ := ParseBytes(v)
	return n
}
