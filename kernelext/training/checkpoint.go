package training

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/transfer-learning-go/workbook/internal/atomicfile"
)

// Checkpoint file layout (all integers little-endian):
//
//	"GOKXCKPT"  magic, 8 bytes
//	uint32      format version (1)
//	uint32      header length H
//	H bytes     header, JSON (checkpointHeader)
//	…           each variable's raw bytes, in header order
//	uint32      CRC-32C of everything before it
//
// GoMLX's own checkpoints package writes its files in place (a crash or a full disk leaves a
// truncated checkpoint that is then the "latest") and spreads a checkpoint over two files; this
// format is one file written to a temporary name and renamed, so the path always holds either
// the previous complete checkpoint or the new one.
const (
	checkpointMagic   = "GOKXCKPT"
	checkpointVersion = 1
)

type checkpointHeader struct {
	Model      string          `json:"model"`
	Optimizer  string          `json:"optimizer,omitempty"`
	Iterations int64           `json:"optimizer_iterations"`
	EpochsDone int             `json:"epochs_done,omitempty"`
	History    *History        `json:"history,omitempty"`
	Variables  []checkpointVar `json:"variables"`
}

type checkpointVar struct {
	Scope     string `json:"scope"`
	Name      string `json:"name"`
	DType     string `json:"dtype"`
	Shape     []int  `json:"shape"`
	Trainable bool   `json:"trainable"`
	Bytes     int    `json:"bytes"`
}

// trainingState is what Fit adds to a checkpoint to resume from it.
type trainingState struct {
	EpochsDone int
	History    *History
}

// CheckpointInfo describes a loaded checkpoint.
type CheckpointInfo struct {
	Model      string   // Model.Name at save time
	Optimizer  string   // the optimizer the state belongs to ("" if the model was not compiled)
	Iterations int64    // the optimizer's step count
	EpochsDone int      // epochs completed, for checkpoints written by Fit
	History    *History // the history so far, for checkpoints written by Fit
	Variables  int      // variables restored
	// SkippedOptimizerState is true when the file's optimizer state was left out because the
	// model is compiled with a different optimizer.
	SkippedOptimizerState bool
}

// Save writes every variable of the model's context — weights, frozen or not, and the optimizer
// state — with the optimizer's description, to path, the way Keras' model.save keeps
// "the architecture, the weights, the optimizer state" (the architecture here is the Go code
// that built the model). The file is written to a temporary file in the same folder, synced,
// and renamed over path: an error (a full disk) leaves any previous file at path intact.
func (m *Model) Save(path string) error { return m.save(path, nil) }

// MustSave is Save for notebook cells: it panics on error.
func (m *Model) MustSave(path string) {
	if err := m.Save(path); err != nil {
		panic(err)
	}
}

func (m *Model) save(path string, st *trainingState) (err error) {
	hdr := checkpointHeader{Model: m.Name, Iterations: OptimizerIterations(m.ctx)}
	if m.opt != nil {
		hdr.Optimizer = m.opt.String()
	}
	if st != nil {
		hdr.EpochsDone, hdr.History = st.EpochsDone, st.History
	}
	var vars []*context.Variable
	for v := range m.ctx.IterVariables() {
		sh := v.Shape()
		hdr.Variables = append(hdr.Variables, checkpointVar{Scope: v.Scope(), Name: v.Name(),
			DType: sh.DType.String(), Shape: sh.Dimensions, Trainable: v.Trainable, Bytes: int(sh.Memory())})
		vars = append(vars, v)
	}
	header, err := json.Marshal(&hdr)
	if err != nil {
		return fmt.Errorf("training: save %q: %w", path, err)
	}

	err = atomicfile.Write(path, func(f atomicfile.File) error {
		crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		bw := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
		var pre [16]byte
		copy(pre[:8], checkpointMagic)
		binary.LittleEndian.PutUint32(pre[8:], checkpointVersion)
		binary.LittleEndian.PutUint32(pre[12:], uint32(len(header)))
		if _, err := bw.Write(pre[:]); err != nil {
			return err
		}
		if _, err := bw.Write(header); err != nil {
			return err
		}
		for i, v := range vars {
			t, err := v.Value()
			if err != nil {
				return err
			}
			var werr error
			if err := t.ConstBytes(func(raw []byte) {
				if len(raw) != hdr.Variables[i].Bytes {
					werr = fmt.Errorf("variable %s has %d bytes, expected %d", v.ScopeAndName(), len(raw), hdr.Variables[i].Bytes)
					return
				}
				_, werr = bw.Write(raw)
			}); err != nil {
				return err
			}
			if werr != nil {
				return werr
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
		_, err := f.Write(sum[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("training: save: %w", err)
	}
	return nil
}

// Load restores the variables saved in path into the model's context: existing variables take
// the saved values (their shape and dtype must match; their trainable flags stay as the current
// freeze settings say), missing ones are created with the saved trainable flag. Optimizer state
// is restored when the model is compiled with an optimizer of the same description, or not yet
// compiled (a later Compile with that optimizer keeps it); otherwise it is skipped and
// CheckpointInfo.SkippedOptimizerState says so. Nothing is changed unless the whole file reads
// back intact (CRC-32C checked).
func (m *Model) Load(path string) (*CheckpointInfo, error) {
	hdr, values, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	info := &CheckpointInfo{Model: hdr.Model, Optimizer: hdr.Optimizer, Iterations: hdr.Iterations,
		EpochsDone: hdr.EpochsDone, History: hdr.History}
	loadOpt := true
	if m.compiled && (m.opt == nil || m.opt.String() != hdr.Optimizer) {
		loadOpt = false
	}
	// Check everything before changing anything.
	for i, cv := range hdr.Variables {
		if inOptimizerScope(cv.Scope) && !loadOpt {
			continue
		}
		if v := m.ctx.GetVariableByScopeAndName(cv.Scope, cv.Name); v != nil && !v.Shape().Equal(values[i].Shape()) {
			return nil, fmt.Errorf("training: load %q: variable %s/%s has shape %s in the model, %s in the file",
				path, cv.Scope, cv.Name, v.Shape(), values[i].Shape())
		}
	}
	if !loadOpt {
		info.SkippedOptimizerState = true
	} else if err := ClearOptimizerState(m.ctx); err != nil {
		return nil, err
	}
	for i, cv := range hdr.Variables {
		if inOptimizerScope(cv.Scope) && !loadOpt {
			continue
		}
		if v := m.ctx.GetVariableByScopeAndName(cv.Scope, cv.Name); v != nil {
			if err := v.SetValue(values[i]); err != nil {
				return nil, fmt.Errorf("training: load %q: %s/%s: %w", path, cv.Scope, cv.Name, err)
			}
		} else {
			m.ctx.InAbsPath(cv.Scope).Checked(false).VariableWithValue(cv.Name, values[i]).SetTrainable(cv.Trainable)
		}
		info.Variables++
	}
	if loadOpt && !m.compiled {
		m.restoredOpt = hdr.Optimizer
	}
	// Compiled graphs hold no values, but a graph built before may lack newly created variables.
	m.resetExecs()
	return info, nil
}

// MustLoad is Load for notebook cells: it panics on error.
func (m *Model) MustLoad(path string) *CheckpointInfo {
	info, err := m.Load(path)
	if err != nil {
		panic(err)
	}
	return info
}

// resumeFrom loads path for Fit's Resume, if it exists. The optimizer must match.
func (m *Model) resumeFrom(path string) (*trainingState, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	hdr, err := readCheckpointHeader(path)
	if err != nil {
		return nil, err
	}
	if hdr.Optimizer != m.opt.String() {
		return nil, fmt.Errorf("training: resume from %q: it was trained with %s, the model is compiled with %s",
			path, hdr.Optimizer, m.opt.String())
	}
	info, err := m.Load(path)
	if err != nil {
		return nil, err
	}
	return &trainingState{EpochsDone: info.EpochsDone, History: info.History}, nil
}

// ReadCheckpointInfo reads a checkpoint's description (its header: the data and checksum are
// not read) without loading it into a model.
func ReadCheckpointInfo(path string) (*CheckpointInfo, error) {
	hdr, err := readCheckpointHeader(path)
	if err != nil {
		return nil, err
	}
	return &CheckpointInfo{Model: hdr.Model, Optimizer: hdr.Optimizer, Iterations: hdr.Iterations,
		EpochsDone: hdr.EpochsDone, History: hdr.History, Variables: len(hdr.Variables)}, nil
}

// readCheckpointHeader reads and checks a checkpoint's header and size, not its data.
func readCheckpointHeader(path string) (*checkpointHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("training: load: %w", err)
	}
	defer f.Close()
	hdr, _, err := readHeader(path, f, nil)
	return hdr, err
}

// readHeader reads the fixed prefix and the JSON header from r (hashing them into crc when not
// nil) and checks that the file size matches.
func readHeader(path string, f *os.File, crc hash.Hash32) (*checkpointHeader, io.Reader, error) {
	fail := func(format string, args ...any) (*checkpointHeader, io.Reader, error) {
		return nil, nil, fmt.Errorf("training: load %q: "+format, append([]any{path}, args...)...)
	}
	st, err := f.Stat()
	if err != nil {
		return fail("%v", err)
	}
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	if crc != nil {
		r = &crcReader{r: r, h: crc}
	}
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return fail("not a checkpoint (too short)")
	}
	if string(pre[:8]) != checkpointMagic {
		return fail("not a checkpoint written by this package (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != checkpointVersion {
		return fail("unsupported checkpoint version %d", v)
	}
	hlen := int64(binary.LittleEndian.Uint32(pre[12:]))
	if hlen > st.Size() {
		return fail("truncated file (header of %d bytes in a %d-byte file)", hlen, st.Size())
	}
	hbuf := make([]byte, hlen)
	if _, err := io.ReadFull(r, hbuf); err != nil {
		return fail("truncated header")
	}
	var hdr checkpointHeader
	if err := json.NewDecoder(bytes.NewReader(hbuf)).Decode(&hdr); err != nil {
		return fail("corrupt header: %v", err)
	}
	total := int64(16) + hlen + 4
	for _, cv := range hdr.Variables {
		total += int64(cv.Bytes)
	}
	if total != st.Size() {
		return fail("size %d bytes, the header describes %d (truncated or corrupt)", st.Size(), total)
	}
	return &hdr, r, nil
}

func readCheckpoint(path string) (*checkpointHeader, []*tensors.Tensor, error) {
	fail := func(format string, args ...any) (*checkpointHeader, []*tensors.Tensor, error) {
		return nil, nil, fmt.Errorf("training: load %q: "+format, append([]any{path}, args...)...)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("training: load: %w", err)
	}
	defer f.Close()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	hdr, hr, err := readHeader(path, f, crc)
	if err != nil {
		return nil, nil, err
	}
	r := hr.(*crcReader)
	values := make([]*tensors.Tensor, len(hdr.Variables))
	cleanup := func() {
		for _, t := range values {
			if t != nil {
				_ = t.FinalizeAll()
			}
		}
	}
	for i, cv := range hdr.Variables {
		dt, err := dtypes.DTypeString(cv.DType)
		if err != nil {
			cleanup()
			return fail("variable %s/%s: unknown dtype %q", cv.Scope, cv.Name, cv.DType)
		}
		t := tensors.FromShape(shapes.Make(dt, cv.Shape...))
		values[i] = t
		var rerr error
		err = t.MutableBytes(func(raw []byte) {
			if len(raw) != cv.Bytes {
				rerr = fmt.Errorf("variable %s/%s: %d bytes for shape %v, the header says %d", cv.Scope, cv.Name, len(raw), cv.Shape, cv.Bytes)
				return
			}
			_, rerr = io.ReadFull(r, raw)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			cleanup()
			return fail("%v", err)
		}
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(r.r, sum[:]); err != nil {
		cleanup()
		return fail("truncated file (no checksum)")
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		cleanup()
		return fail("checksum mismatch: the file is corrupt")
	}
	return hdr, values, nil
}

type crcReader struct {
	r io.Reader
	h hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	return n, err
}
