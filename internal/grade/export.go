package grade

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/training"
)

// ExportEnv names the environment variable that tells the export cells where to write.
const ExportEnv = "WORKBOOK_GRADE_EXPORT"

// MaxExportBytes bounds an export file the grader reads: the largest legitimate one, a
// (1, 224, 224, 3) float32 batch in base64, is about 800 kB (a History or a string is far
// smaller).
const MaxExportBytes = 64 << 20

// exportCellTemplate is the grader's cell appended to a submission: it writes the variables it
// names (EXPORTS). Everything it declares or imports carries a "wbgrade" prefix so it cannot
// collide with the student's names; it declares the writer again in every cell (GoNB keeps the
// last declaration), so each cell stands alone. Values are written bit-exact (float32 bits,
// base64) and NaN-safe.
const exportCellTemplate = `import (
	wbgradeB64 "encoding/base64"
	wbgradeBin "encoding/binary"
	wbgradeJSON "encoding/json"
	wbgradeFmt "fmt"
	wbgradeMath "math"
	wbgradeOS "os"
	wbgradeFP "path/filepath"
	wbgradeReflect "reflect"

	wbgradeKX "github.com/transfer-learning-go/workbook/kernelext"
)

func wbgradeExport(name string, v any) {
	dir := wbgradeOS.Getenv("` + ExportEnv + `")
	if dir == "" {
		panic("grader: ` + ExportEnv + ` is not set")
	}
	rec := map[string]any{"name": name, "type": wbgradeFmt.Sprintf("%T", v)}
	putArray := func(a *wbgradeKX.Array) {
		if a == nil {
			return
		}
		b := make([]byte, 4*len(a.Data))
		for i, x := range a.Data {
			wbgradeBin.LittleEndian.PutUint32(b[4*i:], wbgradeMath.Float32bits(x))
		}
		rec["shape"] = a.Shape
		rec["f32le"] = wbgradeB64.StdEncoding.EncodeToString(b)
	}
	switch x := v.(type) {
	case *wbgradeKX.Array:
		putArray(x)
	case wbgradeKX.Array:
		putArray(&x)
	case [][]wbgradeKX.Prediction:
		rows := [][]map[string]any{}
		for _, r := range x {
			row := []map[string]any{}
			for _, p := range r {
				row = append(row, map[string]any{"wnid": p.WNID, "label": p.Label, "score_bits": wbgradeMath.Float32bits(p.Score)})
			}
			rows = append(rows, row)
		}
		rec["predictions"] = rows
	case string:
		rec["text"] = x
	case interface {
		Get(string) []float64
		MarshalJSON() ([]byte, error)
	}: // *training.History, without importing its package here
		if rv := wbgradeReflect.ValueOf(x); rv.Kind() == wbgradeReflect.Pointer && rv.IsNil() {
			break // a nil *training.History
		}
		if h, err := x.MarshalJSON(); err == nil {
			rec["history"] = wbgradeJSON.RawMessage(h)
		}
	}
	b, err := wbgradeJSON.Marshal(rec)
	if err != nil {
		panic(err)
	}
	tmp := wbgradeFP.Join(dir, "."+name+".tmp")
	if err := wbgradeOS.WriteFile(tmp, b, 0o600); err != nil {
		panic(err)
	}
	if err := wbgradeOS.Rename(tmp, wbgradeFP.Join(dir, name+".json")); err != nil {
		panic(err)
	}
}

%%
EXPORTS`

var identRE = regexp.MustCompile(`^[\p{L}_][\p{L}\p{Nd}_]*$`)

// ExportCell returns the code cell that records the variables in the export folder. A variable
// the notebook does not declare makes the whole cell fail to build, so the grader also keeps one
// cell per variable for that case.
func ExportCell(variables ...string) (string, error) {
	if len(variables) == 0 {
		return "", errors.New("grade: an export cell needs a variable")
	}
	var calls strings.Builder
	for _, v := range variables {
		if !identRE.MatchString(v) {
			return "", fmt.Errorf("grade: %q is not a Go identifier", v)
		}
		fmt.Fprintf(&calls, "wbgradeExport(%q, %s)\n", v, v)
	}
	return strings.Replace(exportCellTemplate, "EXPORTS", calls.String(), 1), nil
}

type exportRecord struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Shape       []int  `json:"shape"`
	F32LE       string `json:"f32le"`
	Predictions [][]struct {
		WNID      string `json:"wnid"`
		Label     string `json:"label"`
		ScoreBits uint32 `json:"score_bits"`
	} `json:"predictions"`
	Text    *string         `json:"text"`
	History json.RawMessage `json:"history"`
}

// ErrNotExported means the export cell did not write the variable's file.
var ErrNotExported = errors.New("grade: variable not exported")

// ReadExport reads what the export cell wrote for name in dir. The file comes from untrusted code:
// its size is bounded and every field is checked.
func ReadExport(dir, name string) (*Value, error) {
	p := filepath.Join(dir, name+".json")
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotExported
	}
	if err != nil {
		return nil, fmt.Errorf("grade: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("grade: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("grade: %s is not a regular file", p)
	}
	return DecodeExport(f, p, name)
}

// DecodeExport decodes an export file's content (what ReadExport reads from path) for the
// variable name.
func DecodeExport(r io.Reader, path, name string) (*Value, error) {
	p := path
	b, err := io.ReadAll(io.LimitReader(r, MaxExportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("grade: %v", err)
	}
	if len(b) > MaxExportBytes {
		return nil, fmt.Errorf("grade: %s is larger than %d bytes", p, MaxExportBytes)
	}
	var rec exportRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("grade: %s: %v", p, err)
	}
	if rec.Name != name {
		return nil, fmt.Errorf("grade: %s records %q, not %q", p, rec.Name, name)
	}
	v := &Value{Name: name, Type: rec.Type}
	switch rec.Type {
	case TypeArrayPtr, TypeArray:
		if rec.Shape == nil && rec.F32LE == "" {
			return v, nil // a nil *kernelext.Array
		}
		raw, err := base64.StdEncoding.DecodeString(rec.F32LE)
		if err != nil || len(raw)%4 != 0 {
			return nil, fmt.Errorf("grade: %s: bad array data", p)
		}
		a := &kernelext.Array{Shape: rec.Shape, Data: make([]float32, len(raw)/4)}
		for i := range a.Data {
			a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		for _, d := range a.Shape {
			if d < 0 {
				return nil, fmt.Errorf("grade: %s: negative dimension in shape %v", p, a.Shape)
			}
		}
		v.Array = a
	case TypePredictions:
		v.Predictions = make([][]kernelext.Prediction, len(rec.Predictions))
		for i, row := range rec.Predictions {
			v.Predictions[i] = make([]kernelext.Prediction, len(row))
			for j, q := range row {
				v.Predictions[i][j] = kernelext.Prediction{WNID: q.WNID, Label: q.Label, Score: math.Float32frombits(q.ScoreBits)}
			}
		}
	case TypeString:
		if rec.Text == nil {
			return nil, fmt.Errorf("grade: %s: a string without its text", p)
		}
		v.Text = *rec.Text
	case TypeHistory:
		if len(rec.History) == 0 {
			return v, nil // a nil *training.History
		}
		h := new(training.History)
		if err := json.Unmarshal(rec.History, h); err != nil {
			return nil, fmt.Errorf("grade: %s: bad history: %v", p, err)
		}
		v.History = h
	}
	return v, nil
}
